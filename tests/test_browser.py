"""The rendered book in a real browser (headless Chromium over the DevTools protocol, offline).

Builds the book from the committed notebooks (the session's ``built_book``), serves it on loopback
and visits every page: see ``scripts/browser_check.py`` for the list of what fails it. A screenshot
of each page is saved in ``_build/browser-check/`` (an artifact for CI).
"""
import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from cdp import find_chromium  # noqa: E402

SCREENSHOTS = ROOT / "_build" / "browser-check"

# scripts/setup.sh installs Chromium; without it these tests fail unless explicitly skipped.
# Marked book_build: slow, so the quick loop `pytest tests -k "not book_build"` leaves them out.
NO_BROWSER = find_chromium() is None and os.environ.get("GENLIB_SKIP_BROWSER") == "1"
pytestmark = [pytest.mark.book_build,
              pytest.mark.skipif(NO_BROWSER, reason="no Chromium and GENLIB_SKIP_BROWSER=1")]


def _browser_check():
    spec = importlib.util.spec_from_file_location("browser_check", ROOT / "scripts" / "browser_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_page_works_in_a_browser(built_book):
    check = _browser_check()
    start = time.monotonic()
    report = check.check_book(built_book, SCREENSHOTS)
    pages = check.pages_of(built_book)
    print(f"browser check: {len(pages)} pages in {time.monotonic() - start:.0f} s")
    visited = [p for p in pages if check.redirect_target(p) is None]  # redirects are not visited
    assert len(visited) >= len(pages) - 1
    assert len(list(SCREENSHOTS.glob("*.png"))) >= len(visited)
    assert report == {}, "\n".join(f"{page}: {p}" for page, problems in report.items() for p in problems)


def test_every_chapter_is_visited(built_book):
    pages = {p.relative_to(built_book).as_posix() for p in _browser_check().pages_of(built_book)}
    for source in sorted((ROOT / "book").glob("[0-9][0-9]_*.py")):
        assert f"book/{source.stem}.html" in pages


def _break(page: Path, old: str, new: str, count: int = 1) -> None:
    text = page.read_text()
    assert old in text, f"cannot break {page.name}: {old[:60]!r} not found"
    page.write_text(text.replace(old, new, count))


def test_the_check_fails_on_a_broken_page(built_book, tmp_path):
    """Each kind of break is reported; the unbroken book passes (test_every_page_works_in_a_browser)."""
    import re
    import shutil

    check = _browser_check()
    broken = tmp_path / "html"
    shutil.copytree(built_book, broken)
    page = broken / "book" / "00_preface.html"
    text = page.read_text()
    # remove a figure
    figure = re.search(r'<img[^>]*src="(\.\./_images/[^"]+)"', text).group(1)
    (page.parent / figure).unlink()
    # break a formula (MathJax cannot typeset it) and leave raw TeX where MathJax does not look
    maths = re.findall(r'<span class="math notranslate nohighlight">(\\\(.*?\\\))</span>', text)
    _break(page, maths[0], r"\(\frac{1}{\)")  # unbalanced: stays raw TeX
    _break(page, maths[1], r"\(x^1^2\)")  # parsed, but MathJax reports an error
    # a stylesheet from a CDN, a repeated inline script (SyntaxError), a wide equation, broken links,
    # an animation that does not step, a widget snapshot
    _break(page, "</head>", '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/x@1/x.css">\n'
                            '<script>const GENLIB_TWICE = 1;</script><script>const GENLIB_TWICE = 1;</script>\n</head>')
    wide = " + ".join(f"x_{{{i}}}^{{2}}" for i in range(160))
    long_line = "genlib.some_function(" + ", ".join(f"argument_{i}=value_{i}" for i in range(30)) + ")"
    body = (f'<div class="math notranslate nohighlight">\\[{wide}\\]</div>'
            '<p><a href="01_generative_models.html#no-such-section">a</a> <a href="no_such_page.html">b</a></p>'
            '<div class="output"><script type="application/vnd.jupyter.widget-view+json">'
            '{"model_id": "0", "version_major": 2, "version_minor": 0}</script></div>'
            # a code line too long for the column: wrapped by the book's CSS (not reported), and the same
            # line where the wrapping is switched off (reported: it is cut off behind a scrollbar)
            f'<div class="cell_input"><div class="highlight"><pre>wrapped = {long_line}</pre></div></div>'
            f'<div class="highlight"><pre style="white-space: pre">cut_off = {long_line}</pre></div>')
    _break(page, '<section id="', body + '<section id="')
    _break(page, ".next_frame()", ".pause_animation()")
    report = check.check_book(broken, None, pages=["book/00_preface.html"], search=False)
    found = "\n".join(report.get("book/00_preface.html", []))
    for expected in ("image did not load", "raw TeX: …\\(\\frac{1}{\\)", "MathJax could not typeset",
                     "request off the machine",
                     "uncaught exception: SyntaxError", "display equation wider than its column",
                     "broken link (no anchor): book/01_generative_models.html#no-such-section",
                     "broken link (no file): book/no_such_page.html", "the frame does not change when stepped",
                     "widget snapshot", "HTTP 404", "code line cut off at the column: "):
        assert expected in found, f"not reported: {expected}\n{found}"
    assert found.count("code line cut off at the column") == 1 and "cut_off = genlib" in found, found


def test_a_redirect_is_checked_by_its_target(built_book, tmp_path):
    """index.html only redirects (the browser would leave it mid-check): its target must exist."""
    import shutil

    check = _browser_check()
    assert check.redirect_target(built_book / "index.html") == "book/00_preface.html"
    assert check.redirect_target(built_book / "book" / "00_preface.html") is None
    broken = tmp_path / "html"
    shutil.copytree(built_book, broken)
    _break(broken / "index.html", "book/00_preface.html", "book/no_such_page.html")
    report = check.check_book(broken, None, pages=["index.html"], search=False)
    assert report == {"index.html": ["broken link (no file): book/no_such_page.html"]}, report


def test_the_check_fails_without_the_vendored_mathjax(built_book, tmp_path):
    import shutil

    check = _browser_check()
    broken = tmp_path / "html"
    shutil.copytree(built_book, broken, ignore=shutil.ignore_patterns("mathjax"))
    report = check.check_book(broken, None, pages=["book/00_preface.html"], search=True)
    found = "\n".join(p for problems in report.values() for p in problems)
    assert "raw TeX: " in found and "HTTP 404" in found and "tex-chtml.js" in found, found
    assert "raw TeX in a snippet" in found, found
