"""Notation check: every chapter's math follows the glossary in chapter 0, one meaning per symbol.

The glossary is the table under "## Notation" in ``book/00_preface.py``. Each row gives a symbol, its
meaning, its name in genlib and **where** it is used: ``all`` or a list of chapters (``1, 3``).

The rule (what this test enforces):

1. **One row per symbol.** A row *defines* the symbols written in its first cell before an ``=``,
   ``\\in`` or ``\\sim`` (``$\\alpha_t = 1-\\beta_t$`` defines ``\\alpha``; ``$n = 1, \\dots, N$`` defines
   ``n``). A checked symbol is defined by exactly one row. A symbol is its base letter together with an
   accent: ``\\hat N``, ``\\bar\\alpha`` and ``N``, ``\\alpha`` are different symbols; subscripts and
   superscripts are indices and do not make a new symbol (``\\sigma_t`` is ``\\sigma``).
2. **Used only where declared.** Every occurrence of a checked symbol in a chapter's markdown math
   (``$…$`` and ``$$…$$`` in markdown cells of ``book/NN_*.py``; code cells and code spans are not
   read) must be in a chapter listed in its row's *where* column. A symbol that a chapter uses with
   another meaning therefore fails here, with the chapter, the line and the row it clashes with.
3. **Indices.** A bracketed superscript indexes a member of a set of points: ``x^{(n)}`` a data point
   (``n = 1, …, N``), ``\\hat x^{(m)}``/``z^{(m)}`` a drawn sample (``m = 1, …, \\hat N``); any other
   bracketed letter (``z^{(i)}``) fails. A data point is never indexed by a subscript: ``x_n``, ``z_n``,
   ``q_n`` fail (subscripts index coordinates, components and chain time).

The checked symbols are ``CHECKED`` below: the letters that carried several meanings before (issue 23)
plus the ones the glossary introduced with them. Letters used only as bound indices (``i, j, d, t``…)
are not checked. ``test_the_check_fails_on_a_planted_clash`` plants clashes and checks they fail.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PREFACE = ROOT / "book" / "00_preface.py"
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.py"))

CHECKED = {
    "M", "S", "N", r"\hat N", "h", "H", "k", "K",
    r"\lambda", r"\eta", r"\alpha", r"\bar\alpha", r"\rho", r"\delta", r"\Lambda", r"\nu", r"\kappa",
    r"\omega", r"\zeta", r"\xi",
}

_ACCENT = r"\\(?:hat|bar|tilde|widehat|widetilde|overline|mathbf|boldsymbol)"  # \mathbf k (a key) is not k
_TOKEN = re.compile(rf"({_ACCENT})\s*\{{?\s*(\\[A-Za-z]+|[A-Za-z])\s*\}}?|\\[A-Za-z]+|[A-Za-z]")
_DROP = re.compile(r"\\(?:text|mathrm|operatorname|textrm|mathtt|texttt|mathcal|mathbb|mathsf|textbf|"
                   r"textit|mbox|begin|end|label|tag)\s*\{[^{}]*\}|\\(?:mathcal|mathbb)\s*[A-Za-z]")
_CODE = re.compile(r"``[^\n]*?``|`[^`\n]*`")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\{[\w:-]+\})?\s*(\w*)")
_CODE_DIRECTIVES = {"{code-block}", "{code}", "{code-cell}", "{literalinclude}", "{raw}", "{mermaid}"}
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$", re.S)
_BRACKET_SUP = re.compile(r"\^\{?\(\s*([A-Za-z])\s*\)")
_DATA_SUBSCRIPT = re.compile(r"(?<![A-Za-z\\])([xzq])_\{?n\b(?![A-Za-z])")
_ALLOWED_BRACKET = {"n": "a data point", "m": "a drawn sample", "N": "the last data point"}
_INDEX = re.compile(r"[_^](?:\{[^{}]*\}|\\[A-Za-z]+|[A-Za-z0-9*])|\([^()]*\)")  # x_{nk}, m_l(k): indices, arguments


def tokens(math: str) -> list[str]:
    """The symbols of a piece of LaTeX math: accented letters as one token, text and fonts dropped."""
    math = _DROP.sub(" ", math)
    out = []
    for m in _TOKEN.finditer(math):
        if m.group(1):
            out.append(f"{m.group(1)} {m.group(2)}" if m.group(2)[0] != "\\" else m.group(1) + m.group(2))
        else:
            out.append(m.group(0))
    return out


def markdown_cells(path: Path):
    """(first line number, text) of each markdown cell of a jupytext percent file."""
    cells, cur, start, kind = [], [], 0, None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("# %%"):
            if kind == "md":
                cells.append((start, "\n".join(cur)))
            kind, cur, start = ("md" if "[markdown]" in line else "code"), [], n + 1
        elif kind == "md":
            cur.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    if kind == "md":
        cells.append((start, "\n".join(cur)))
    return cells


def _blank_code_fences(text: str) -> str:
    """Blank fence lines and the body of code fences; keep the body of directives ({admonition}, {math})."""
    out, stack = [], []  # stack of (fence, is_code)
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if m and stack and m.group(1)[0] == stack[-1][0][0] and len(m.group(1)) >= len(stack[-1][0]) \
                and not m.group(2) and not m.group(3):
            stack.pop()
            out.append("")
        elif m and not (stack and stack[-1][1]):
            is_code = m.group(2) in _CODE_DIRECTIVES or (not m.group(2))
            stack.append((m.group(1), is_code))
            out.append("")
        else:
            out.append("" if stack and stack[-1][1] else line)
    return "\n".join(out)


def math_spans(path: Path):
    """(line, math) for every ``$…$``/``$$…$$`` in the markdown cells of ``path``."""
    for start, text in markdown_cells(path):
        text = _CODE.sub(lambda m: " " * len(m.group(0)), _blank_code_fences(text))
        for m in _MATH.finditer(text):
            yield start + text.count("\n", 0, m.start()), (m.group(1) or m.group(2))


def parse_glossary(source: str):
    """rows: list of (line, defined symbols, meaning, where) from the Notation table."""
    lines = source.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "# ## Notation")
    rows, header = [], None
    for i in range(start + 1, len(lines)):
        line = lines[i][2:] if lines[i].startswith("# ") else ""
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            if header is not None and rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set(cells[0]) <= {"-", " ", ":"}:
            continue
        row = dict(zip(header, cells))
        defined = set()
        for m in _MATH.finditer(row["symbol"]):
            lhs = re.split(r"=|\\in\b|\\sim\b|\\le\b", m.group(2) or m.group(1))[0]
            lhs = _DROP.sub(" ", lhs)
            while _INDEX.search(lhs):  # r_{nk} defines r, not k; m_l(k) defines m
                lhs = _INDEX.sub(" ", lhs)
            defined.update(tokens(lhs))
        where = row.get("where", "")
        chapters = "all" if where.strip() == "all" else {int(c) for c in re.findall(r"\d+", where)}
        rows.append((i + 1, defined, row["meaning"], chapters))
    return header, rows


def symbol_table(rows):
    table, problems = {}, []
    for line, defined, meaning, where in rows:
        for sym in defined & CHECKED:
            if sym in table:
                problems.append(f"00_preface.py:{line}: ${sym}$ has a second meaning in the glossary "
                                f"({meaning!r}; first: {table[sym][1]!r} at line {table[sym][0]})")
            else:
                table[sym] = (line, meaning, where)
    return table, problems


def clashes(path: Path, table) -> list[str]:
    chapter = int(path.name[:2])
    out = []
    for line, math in math_spans(path):
        for sym in sorted(set(tokens(math)) & CHECKED):
            if sym not in table:
                out.append(f"{path.name}:{line}: ${sym}$ is checked but not in the glossary (in ${math.strip()[:60]}$)")
                continue
            gl_line, meaning, where = table[sym]
            if where != "all" and chapter not in where and chapter != 0:
                out.append(f"{path.name}:{line}: ${sym}$ in ${math.strip()[:60]}$ — the glossary gives ${sym}$ "
                           f"one meaning, {meaning!r}, in chapters {sorted(where)} (00_preface.py:{gl_line})")
        for m in _BRACKET_SUP.finditer(math):
            if m.group(1) not in _ALLOWED_BRACKET:
                out.append(f"{path.name}:{line}: bracketed superscript ({m.group(1)}) in ${math.strip()[:60]}$ — "
                           "brackets index data points (n) and drawn samples (m) only")
        for m in _DATA_SUBSCRIPT.finditer(math):
            out.append(f"{path.name}:{line}: {m.group(0)} in ${math.strip()[:60]}$ — a data point is "
                       "indexed by a bracketed superscript, x^{(n)}, not a subscript")
    return out


def _glossary():
    header, rows = parse_glossary(PREFACE.read_text(encoding="utf-8"))
    return header, rows


def test_glossary_has_a_where_column_and_one_row_per_symbol():
    header, rows = _glossary()
    assert header[:4] == ["symbol", "meaning", "in `genlib`", "where"], header
    table, problems = symbol_table(rows)
    assert not problems, "\n".join(problems)
    missing = CHECKED - set(table)
    assert not missing, f"checked symbols missing from the glossary: {sorted(missing)}"
    for line, defined, meaning, where in rows:
        assert where == "all" or where, f"00_preface.py:{line}: row without a 'where' ({meaning!r})"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_follows_the_glossary(path):
    table, _ = symbol_table(_glossary()[1])
    problems = clashes(path, table)
    assert not problems, f"{len(problems)} notation clashes:\n" + "\n".join(problems)


def test_the_check_fails_on_a_planted_clash(tmp_path):
    table, _ = symbol_table(_glossary()[1])
    planted = tmp_path / "05_planted.py"
    planted.write_text(
        "# %% [markdown]\n"
        "# The mixture $M = \\tfrac12(p_{\\text{data}} + p_g)$ and a bandwidth $h$.\n"
        "#\n"
        "# $$\\frac1k\\sum_i w(z^{(i)}) + \\log q_n(x)$$\n"
        "# %%\n"
        "M = 3  # code is not read\n"
        "# %% [markdown]\n"
        "# Fine: $x^{(n)}$, $\\hat x^{(m)}$, `$M$` in a code span, $\\mathcal N(0, I)$, $N$ points.\n")
    problems = clashes(planted, table)
    text = "\n".join(problems)
    assert "05_planted.py:2: $M$" in text and "05_planted.py:2: $h$" in text, text
    assert "05_planted.py:4: bracketed superscript (i)" in text, text
    assert "05_planted.py:4: q_n" in text, text
    assert "05_planted.py:4: $k$" in text, text  # k is an index over K things; importance samples are \hat N
    assert len(problems) == 5, text

    source = PREFACE.read_text(encoding="utf-8")
    row = next(l for l in source.splitlines() if l.startswith("# | $\\eta$"))
    doubled = source.replace(row, row + "\n" + row.replace("step size", "second meaning"), 1)
    _, problems = symbol_table(parse_glossary(doubled)[1])
    assert any("$\\eta$ has a second meaning" in p for p in problems), problems


def test_tokens():
    assert tokens(r"\hat N + \bar\alpha_t \mathcal N(0, I) \text{data} \hat{x}^{(m)}") == [
        r"\hat N", r"\bar\alpha", "t", "I", r"\hat x", "m"]
