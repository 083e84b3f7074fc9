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

FORMAT = "genlib.scoreboard/2"
ROW_KEYS = ("key", "family", "chapter", "capabilities", "density", "runs")
RUN_KEYS = ("seed", "test_nll_nats", "bits_per_dim", "train_seconds", "sample_ms_per_image", "frechet", "kid",
            "precision", "recall", "probe_accuracy")


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
    missing = sorted({k for row in board.get("rows", []) for k in ROW_KEYS if k not in row}
                     | {k for row in board.get("rows", []) for run in row.get("runs", []) for k in RUN_KEYS
                        if k not in run})
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


# ----------------------------------------------------------------------------- summaries over seeds


def values(row: dict, key: str) -> list[float] | None:
    """The per-seed values of ``key`` in a scoreboard row (or the floor's dict of lists); None where the
    row has no such number (no density, no latents)."""
    runs = row.get("runs")
    found = [run.get(key) for run in runs] if runs is not None else row.get(key)
    if found is None or any(v is None for v in found):
        return None
    return [float(v) for v in found]


def summary_cell(vals: list[float] | None, digits: int) -> str:
    """``median (min–max)`` of per-seed values, one value alone, '-' for none (see :func:`genlib.bench.fmt`)."""
    from genlib import bench

    return "-" if vals is None else bench.fmt(vals, f".{digits}f")


def html_table(rows: list[dict], columns: list[tuple[str, str, int]], caption: str = "") -> str:
    """An HTML table of ``rows`` (median and range over seeds in each numeric cell): ``columns`` are
    (heading, key, decimals); a key found in ``row`` itself (text) is shown as it is."""
    import html

    head = "".join(f"<th>{html.escape(h)}</th>" for h, _, _ in columns)
    body = []
    for row in rows:
        cells = []
        for _, key, digits in columns:
            if key in row and not isinstance(row[key], list):
                text = _cell(row[key], digits)
            else:
                text = summary_cell(values(row, key), digits)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<table class="scoreboard">{cap}<thead><tr>{head}</tr></thead><tbody>' + "".join(body)
            + "</tbody></table>")


def ranked(rows: list[dict], key: str, lower_is_better: bool = True) -> list[list[str]]:
    """Rows grouped into ranks by ``key`` over seeds: a row ranks above another only when their ranges
    do not overlap (:func:`genlib.bench.overlap`); rows without the number are left out. Returns groups of
    row keys, best first; rows in one group are indistinguishable at this budget."""
    from genlib import bench

    scored = [(r["key"], values(r, key)) for r in rows if values(r, key) is not None]
    scored.sort(key=lambda kv: bench.summary(kv[1])[0] * (1 if lower_is_better else -1))
    groups: list[list[tuple[str, list[float]]]] = []
    for item in scored:
        if groups and any(bench.overlap(item[1], other) for _, other in groups[-1]):
            groups[-1].append(item)
        else:
            groups.append([item])
    return [[k for k, _ in group] for group in groups]
