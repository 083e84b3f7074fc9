"""The chapter runner: execute chapters through papermill with a profile and overrides.

    python -m genlib.run                                 # every chapter, book profile
    python -m genlib.run 02 device=cuda n_components=5   # one chapter, with overrides
    python -m genlib.run --all --profile paper --out runs/paper

Chapters are the jupytext sources ``book/NN_*.py``; a chapter may be named by its number (``02``),
its stem (``02_density_models``) or its slug (``density_models``). Each is converted in memory and
executed into ``--out`` (default ``_build/executed``), never in place on the committed notebooks.
Profiles are parameter sets kept in one file, ``book/profiles.yml``; ``key=value`` overrides go on top
(values are read as YAML, so ``epochs=50`` is an int and ``betas=[1,4]`` a list). A failing chapter is
reported with its error and the others still run; the exit status is 0 only if all passed.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHAPTER_PATTERN = re.compile(r"^(\d\d)_(\w+)\.py$")


@dataclass(frozen=True)
class Chapter:
    path: Path  # book/NN_slug.py

    @property
    def stem(self) -> str:
        return self.path.stem

    def matches(self, name: str) -> bool:
        number, slug = self.stem.split("_", 1)
        return name in (self.stem, number, slug, str(int(number)))


def chapters(book: Path = BOOK) -> list[Chapter]:
    """The chapters of the book, in order: every ``NN_slug.py`` under ``book``."""
    return [Chapter(p) for p in sorted(book.glob("*.py")) if CHAPTER_PATTERN.match(p.name)]


def select(names: list[str], book: Path = BOOK) -> list[Chapter]:
    """The chapters named (all of them if ``names`` is empty); an unknown name is a ValueError."""
    found = chapters(book)
    if not names:
        return found
    picked = []
    for name in names:
        hits = [c for c in found if c.matches(name)]
        if not hits:
            raise ValueError(f"unknown chapter {name!r}; choose one of: {', '.join(c.stem for c in found)}")
        picked += [c for c in hits if c not in picked]
    return picked


def parse_overrides(pairs: list[str]) -> dict:
    """``["epochs=50", "device=cuda"]`` -> ``{"epochs": 50, "device": "cuda"}`` (values parsed as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"override {pair!r} is not of the form name=value")
        out[key] = _value(value)
    return out


def _value(text: str):
    """A YAML value, with the numbers YAML 1.1 leaves as strings (``1e-3``) read as floats."""
    value = yaml.safe_load(text) if text else ""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def load_profile(name: str, book: Path = BOOK) -> dict[str, dict]:
    """Profile ``name`` from ``book/profiles.yml``: ``{"all": {...}, "<chapter stem>": {...}}``."""
    profiles = yaml.safe_load((book / "profiles.yml").read_text()) or {}
    if name not in profiles:
        raise ValueError(f"unknown profile {name!r}; choose one of: {', '.join(profiles)}")
    return profiles[name] or {}


def notebook(chapter: Chapter):
    """The chapter's jupytext source as an in-memory notebook (the committed files are untouched)."""
    import jupytext

    nb = jupytext.read(chapter.path)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    for i, cell in enumerate(nb.cells):  # stable ids (jupytext draws random ones): clean diffs
        cell.id = f"cell-{i:03d}"
    return nb


def declared_parameters(nb) -> dict:
    """Names and default values in the notebook's ``parameters`` cell."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"a chapter needs exactly one 'parameters' cell, found {len(cells)}")
    namespace: dict = {}
    exec(compile(cells[0].source, "<parameters>", "exec"), {}, namespace)  # plain assignments
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


def parameters_for(chapter: Chapter, declared: dict, profile: dict, overrides: dict) -> dict:
    """Profile values (``all`` then the chapter's own) plus overrides, limited to what it declares."""
    wanted = {**(profile.get("all") or {}), **(profile.get(chapter.stem) or {}), **overrides}
    return {k: v for k, v in wanted.items() if k in declared}


def clean(nb) -> None:
    """Drop run-specific metadata (papermill's timings, execution timestamps) to keep diffs clean."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)


def execute(chapter: Chapter, params: dict, out: Path, book: Path = BOOK) -> tuple[bool, str]:
    """Execute one chapter into ``out``; return (passed, one-line error or "")."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target, failed = out / f"{chapter.stem}.ipynb", out / f"{chapter.stem}.failed.ipynb"
    failed.unlink(missing_ok=True)
    try:
        # papermill saves after every cell, so a failed chapter leaves its partial notebook to read
        nb = papermill.execute_notebook(notebook(chapter), str(target), parameters=params,
                                        kernel_name="python3", cwd=str(book), progress_bar=False)
    except Exception as err:  # an error in a cell, a dead kernel...: report it, keep going
        if target.exists():  # kept for reading, under a name the book build will not pick up
            target.replace(failed)
        if isinstance(err, PapermillExecutionError):
            return False, f"{err.ename}: {err.evalue}".splitlines()[0]
        return False, f"{type(err).__name__}: {err}".splitlines()[0]
    clean(nb)
    nbformat.write(nb, target)
    return True, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genlib-run", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("items", nargs="*", help="chapters (02, density_models, ...) and name=value overrides")
    parser.add_argument("--all", action="store_true", help="every chapter (the default when none is named)")
    parser.add_argument("--profile", default="book", help="parameter set from book/profiles.yml (default: book)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "executed", help="output folder")
    parser.add_argument("--book", type=Path, default=BOOK, help=argparse.SUPPRESS)
    parser.add_argument("--list", action="store_true", help="list the chapters and their parameters")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # kernels inherit it before importing torch
    names = [i for i in args.items if "=" not in i]
    try:
        overrides = parse_overrides([i for i in args.items if "=" in i])
        picked = select([] if args.all else names, args.book)
        profile = load_profile(args.profile, args.book)
        if args.list:
            for chapter in picked:
                print(f"{chapter.stem}: {declared_parameters(notebook(chapter))}")
            return 0
        plan = [(c, declared_parameters(notebook(c))) for c in picked]
        unknown = set(overrides) - {k for _, declared in plan for k in declared}
        if unknown:
            raise ValueError(f"no chosen chapter has a parameter named {', '.join(sorted(unknown))}")
    except ValueError as err:
        print(f"genlib-run: error: {err}", file=sys.stderr)
        return 2
    if args.out.resolve() == args.book.resolve():
        print("genlib-run: error: --out must not be the book folder (never run in place)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed, start = [], time.perf_counter()
    for chapter, declared in plan:
        params = parameters_for(chapter, declared, profile, overrides)
        tic = time.perf_counter()
        passed, error = execute(chapter, params, args.out, args.book)
        seconds = time.perf_counter() - tic
        shown = " ".join(f"{k}={v}" for k, v in params.items())
        print(f"{'ok  ' if passed else 'FAIL'}  {chapter.stem:<28} {seconds:7.1f} s  {shown}"
              + (f"\n      {error}" if error else ""), flush=True)
        if not passed:
            failed.append(chapter.stem)
    total = time.perf_counter() - start
    print(f"{len(plan) - len(failed)} passed, {len(failed)} failed in {total:.1f} s -> {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
