"""Comparing the families (chapter 9): what a model can do, read off its class, and the scoreboard file.

The scoreboard (``benchmarks/scoreboard.py``) measures every family's book-profile model on the same
digits and writes one JSON file; chapter 9 reads it with :func:`load_scoreboard` and renders it with
:func:`table`. What a model *can* do is not typed into a table by hand: :func:`capabilities` looks at
the methods its class defines.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

FORMAT = "genlib.scoreboard/1"
ROW_KEYS = ("key", "family", "chapter", "capabilities", "density", "test_nll_nats", "bits_per_dim",
            "train_seconds", "sample_ms_per_image", "frechet", "precision", "recall", "probe_accuracy")


def capabilities(model) -> dict[str, bool]:
    """What a model (or its class) offers: a density to score with, a sampler, latent features.

    ``log_prob``: a (possibly bounded or estimated) log-likelihood of an image; ``sample``: draws new
    images; ``latent features``: maps an image to a code (``encode``, or a mixture's
    ``responsibilities``)."""
    has = lambda name: callable(getattr(model, name, None))  # noqa: E731
    return {"log_prob": has("log_prob"), "sample": has("sample"),
            "latent features": has("encode") or has("responsibilities")}


def registered() -> list[dict]:
    """Every family of :data:`genlib.family.REGISTRY`: its key, chapter, model class, the kind of its
    likelihood (exact, bound, estimate, or none) and the capabilities of its class."""
    from genlib import family

    return [{"key": key, "chapter": f.chapter_number, "model": f.model.__name__, "density": f.density,
             **capabilities(f.model)} for key, f in family.FAMILIES.items()]


def load_scoreboard(path: str | Path) -> dict:
    """The scoreboard file at ``path``; a missing or malformed file is a one-line ``ValueError``."""
    path = Path(path)
    hint = "write it with: python benchmarks/scoreboard.py"
    if not path.is_file():
        raise ValueError(f"no scoreboard at {path}; {hint}")
    try:
        board = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a scoreboard file ({type(err).__name__}); {hint}") from None
    if not isinstance(board, dict) or board.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file; {hint}")
    missing = sorted({k for row in board.get("rows", []) for k in ROW_KEYS if k not in row})
    if not board.get("rows") or missing:
        raise ValueError(f"{path} has no rows or rows without {', '.join(missing) or 'anything'}; {hint}")
    return board


def _cell(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict], columns: list[tuple[str, str, int]]) -> str:
    """A plain-text table: ``columns`` are (heading, key, decimals); a missing value prints as '-'."""
    cells = [[heading for heading, _, _ in columns]]
    for row in rows:
        cells.append([_cell(row.get(key), digits) for _, key, digits in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def iterative_sampler(rows: list[dict], factor: float = 20.0) -> dict[str, bool]:
    """Which families sample *slowly*: more than ``factor`` times the fastest family's time per image
    (a measured reading of "one network pass" vs "a chain of them")."""
    fastest = min(r["sample_ms_per_image"] for r in rows)
    return {r["key"]: r["sample_ms_per_image"] > factor * fastest for r in rows}
