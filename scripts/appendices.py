"""Write the generated parts of the appendices from their single sources.

    .venv/bin/python scripts/appendices.py           # rewrite them
    .venv/bin/python scripts/appendices.py --check   # exit 1 if one is out of date (a test runs this)

* ``book/appendix_exercises.md``: each chapter's exercises are written once, in the chapter
  (``## Exercises`` up to the next ``## `` heading); the appendix copies them under a heading that
  links back to the chapter.
* ``book/appendix_gpu.md``: the table of the paper profile, between its two marker comments, from
  ``genlib/profiles.yml``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import jupytext
import yaml

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "book" / "appendix_exercises.md"
GPU = ROOT / "book" / "appendix_gpu.md"
START, END = "<!-- paper-profile:start", "<!-- paper-profile:end -->"

INTRO = """# Appendix: exercises

Every chapter ends with exercises; this appendix collects them in one place, with their solutions
(click a solution to open it). Section numbers refer to the chapter the exercise comes from, which
the heading links to. The exercises are written in the chapters and copied here by
`scripts/appendices.py`, so the two never disagree.
"""


def title(source: str) -> str:
    """The chapter's title: its first ``# `` heading."""
    return next(line[2:].strip() for line in source.splitlines() if line.startswith("# "))


def exercises(chapter: Path) -> str | None:
    """The markdown of the chapter's ``## Exercises`` section, without its heading; None if it has none."""
    nb = jupytext.read(chapter)
    lines, inside = [], False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            if inside:
                break  # the section ends at the first code cell after it
            continue
        for line in cell.source.splitlines():
            if line.startswith("## "):
                if inside:
                    return "\n".join(lines).strip()
                inside = line.strip() == "## Exercises"
                continue
            if inside:
                lines.append(line)
        if inside:
            lines.append("")
    return "\n".join(lines).strip() if lines else None


GLUE = re.compile(r"\{glue(:\w+)?\}`(?![^`]*::)([^`]+)")  # a glue role whose key names no document


def from_chapter(text: str, stem: str) -> str:
    """``text`` with each glue role pointing at the chapter's notebook (``{glue:text}`02_x.ipynb::key:.1f```):
    a glued number is found only in its own document, so the appendix names where it was computed."""
    def point(m: re.Match) -> str:
        role, rest = m.group(1) or "", m.group(2)
        if role == ":md":  # MyST-NB pastes glued markdown from its own document only: paste it here
            return glued_markdown(stem, rest.split(":")[0])
        if role == ":text" and ":" not in rest:
            rest += ":s"  # with a document path, the format can no longer be left out
        return f"{{glue{role}}}`{stem}.ipynb::{rest}"

    return GLUE.sub(point, text)


def glued_markdown(stem: str, key: str) -> str:
    """The markdown the chapter's executed notebook glued as ``key``."""
    nb = json.loads((ROOT / "book" / f"{stem}.ipynb").read_text())
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook", {}).get("name") == key:
                data = output.get("data", {})
                text = next((v for k, v in data.items() if k.endswith("text/markdown")), None)
                if text is not None:
                    return "".join(text) if isinstance(text, list) else text
    raise SystemExit(f"appendices: {stem}.ipynb glues no markdown named {key!r}: execute the chapter first")


def appendix(book: Path = ROOT / "book") -> str:
    parts = [INTRO]
    for chapter in sorted(book.glob("[0-9][0-9]_*.py")):
        text = exercises(chapter)
        if text is None:
            continue
        number = int(chapter.stem[:2])
        heading = title(jupytext.read(chapter).cells[0].source)
        heading = heading if number == 0 else f"Chapter {number}: {heading}"
        parts.append(f"## {heading}\n\nFrom {{doc}}`{chapter.stem}`.\n\n{from_chapter(text, chapter.stem)}\n")
    return "\n".join(parts)


def profile_table(profiles: Path = ROOT / "genlib" / "profiles.yml", name: str = "paper") -> str:
    """A markdown table of one profile: chapter, parameter, value (every chapter first, the runner last)."""
    profile = yaml.safe_load(profiles.read_text())[name]
    lines = ["| chapter | parameter | value |", "| --- | --- | --- |"]
    for chapter, values in sorted(profile.items(), key=lambda kv: (kv[0] == "runner", kv[0] != "all", kv[0])):
        label = {"all": "every chapter", "runner": "the runner (seconds)"}.get(chapter, f"`{chapter}`")
        for key, value in values.items():
            lines.append(f"| {label} | `{key}` | `{value}` |")
            label = ""
    return "\n".join(lines)


def gpu_appendix(text: str) -> str:
    """``text`` (the GPU appendix) with the profile table between its markers replaced."""
    head, rest = text.split(START, 1)
    marker, _ = rest.split("\n", 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}{marker}\n{profile_table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the appendices are up to date")
    args = parser.parse_args(argv)
    wanted = {TARGET: appendix(), GPU: gpu_appendix(GPU.read_text())}
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run scripts/appendices.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
