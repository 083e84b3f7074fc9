"""Numbers one chapter quotes from another, read from where that chapter's code put them.

A chapter publishes a measured number with MyST-NB's glue (``glue("gmm_best_nll", value,
display=False)``); the executed, committed notebook then holds it as a cell output. Another chapter
that needs the same number quotes it instead of retyping it::

    from genlib import results
    gmm_nll = results.quote("02_density_models", "gmm_best_nll")   # float, from book/02_density_models.ipynb

so the book states each quantity once. A test compares every quoted value with its source.
"""
from __future__ import annotations

import json
from pathlib import Path

BOOK = Path(__file__).resolve().parent.parent / "book"
GLUE_PREFIX = "application/papermill.record/"


def glued(notebook: str | Path) -> dict[str, str]:
    """Every glued ``key -> text/plain`` value in an executed notebook (the last one wins)."""
    path = Path(notebook)
    if not path.suffix:
        path = BOOK / f"{path}.ipynb"
    if not path.exists():
        raise FileNotFoundError(f"no executed notebook {path} to quote from (run the chapter first)")
    values = {}
    for cell in json.loads(path.read_text())["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = output.get("data", {})
            text = data.get(GLUE_PREFIX + "text/plain", data.get("text/plain"))
            if text is not None:
                values[name] = "".join(text) if isinstance(text, list) else text
    return values


def quote(chapter: str, key: str) -> float:
    """The number ``chapter`` (a notebook stem such as ``"02_density_models"``) glued as ``key``."""
    values = glued(chapter)
    if key not in values:
        raise KeyError(f"{chapter} glues no number named {key!r}; it glues: {', '.join(sorted(values)) or 'nothing'}")
    try:
        return float(values[key])
    except ValueError:
        raise ValueError(f"{chapter}'s {key!r} is not a number: {values[key][:60]!r}") from None
