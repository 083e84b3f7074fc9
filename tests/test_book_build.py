"""The rendered book builds from the committed notebooks with warnings as errors, and works offline."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    build_book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_book)
    out = tmp_path_factory.mktemp("book")
    assert build_book.main(["--executed", str(ROOT / "book"), "--output", str(out)]) == 0
    return out / "_build" / "html"


def test_every_chapter_is_rendered_with_its_figures(built):
    for source in sorted((ROOT / "book").glob("[0-9][0-9]_*.py")):
        page = (built / "book" / f"{source.stem}.html").read_text()
        assert "<h1>" in page and page.count("<img") >= 1, source.stem
        assert "encountered an exception" not in page.lower(), source.stem


def test_math_and_widgets_load_from_local_copies(built):
    page = (built / "book" / "04_vae.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert any("_static/mathjax/tex-chtml.js" in s for s in scripts)
    assert any("_static/embed-amd.js" in s for s in scripts) and any("_static/require.js" in s for s in scripts)
    assert not [s for s in scripts if s.startswith("http")], "a script would load from the network"
    assert (built / "_static" / "mathjax" / "tex-chtml.js").exists()


def test_solutions_are_hidden_and_citations_resolve(built):
    page = (built / "book" / "02_density_models.html").read_text()
    assert "dropdown" in page and "Solution" in page
    refs = (built / "book" / "references.html").read_text()
    assert "Dempster" in refs
