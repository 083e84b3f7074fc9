"""The book's own Sphinx extension (loaded through ``sphinx.local_extensions`` in ``_config.yml``).

* Adds ``static/genlib-book.js`` and ``.css`` to every page: display equations wider than their
  column are scaled down to fit instead of being cut off behind a scrollbar, and search results show
  typeset math (with the local MathJax) instead of raw TeX.
* Removes duplicate inline scripts from each page's head. Sphinx 7.4 adds an inline script registered
  after the builder starts twice (once with ``filename=None``, once with ``''``): sphinx-thebe's
  ``const THEBE_JS_URL = ...`` then throws ``SyntaxError: Identifier 'THEBE_JS_URL' has already been
  declared`` on every page.
"""
from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"


def _key(script):
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def add_static_path(app):
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    app.connect("builder-inited", add_static_path)
    app.add_js_file("genlib-book.js")
    app.add_css_file("genlib-book.css")
    # after every other html-page-context handler (sphinx-thebe adds its scripts at priority 500)
    app.connect("html-page-context", unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
