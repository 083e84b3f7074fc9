"""The rendered book builds from the committed notebooks with warnings as errors, and works offline."""
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(built_book):
    return built_book  # built once per session (tests/conftest.py)


def test_every_chapter_is_rendered_with_its_figures(built):
    for source in sorted((ROOT / "book").glob("[0-9][0-9]_*.py")):
        page = (built / "book" / f"{source.stem}.html").read_text()
        assert "<h1>" in page and page.count("<img") >= 1, source.stem
        assert "encountered an exception" not in page.lower(), source.stem


def test_math_loads_from_a_local_copy_and_nothing_from_the_network(built):
    for source in sorted((ROOT / "book").glob("[0-9][0-9]_*.py")):
        page = (built / "book" / f"{source.stem}.html").read_text()
        scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
        assert any("_static/mathjax/tex-chtml.js" in s for s in scripts), source.stem
        assert not [s for s in scripts if s.startswith("http")], "a script would load from the network"
        links = [tag for tag in re.findall(r"<link\b[^>]*>", page) if "stylesheet" in tag]
        assert not [t for t in links if re.search(r'href="(?:https?:)?//', t)], f"{source.stem}: CSS from the network"
    assert (built / "_static" / "mathjax" / "tex-chtml.js").exists()


def test_widgets_are_replaced_by_their_static_form(built):
    """No page carries a widget snapshot (controls that move and redraw nothing without a kernel)."""
    for source in sorted((ROOT / "book").glob("[0-9][0-9]_*.py")):
        page = (built / "book" / f"{source.stem}.html").read_text()
        assert "application/vnd.jupyter.widget-view+json" not in page, source.stem
        assert "application/vnd.jupyter.widget-state+json" not in page, source.stem
        assert "embed-amd.js" not in page, f"{source.stem}: the widget manager loads with nothing to show"
        nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
        lives = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                    for c in nb.cells if c.cell_type == "code" and "widgets.live(" in c.source
                    for o in c.get("outputs", []))
        assert page.count('class="genlib-live-note"') == lives, source.stem
        assert page.count('<div class="animation">') >= lives, source.stem


def test_each_inline_script_appears_once(built):
    page = (built / "book" / "04_vae.html").read_text()
    inline = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(inline) == len(set(inline)), "an inline script is repeated (THEBE_JS_URL redeclared)"
    assert page.count("const THEBE_JS_URL") <= 1


def test_solutions_are_hidden_and_citations_resolve(built):
    page = (built / "book" / "02_density_models.html").read_text()
    assert "dropdown" in page and "Solution" in page
    refs = (built / "book" / "references.html").read_text()
    assert "Dempster" in refs
