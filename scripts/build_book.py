"""Build the HTML book from executed chapters, without touching the committed notebooks.

    python scripts/build_book.py --executed _build/executed          # -> _build/html
    python scripts/build_book.py --executed _build/executed --update-committed --no-html

The book's sources are staged in ``_build/src`` (configuration, table of contents, bibliography,
the offline JavaScript in ``_vendor`` and the executed notebooks in place of the committed ones), then
Jupyter Book renders them with warnings as errors into ``_build/html``. ``--update-committed`` copies
the executed notebooks over ``book/*.ipynb``: allowed only for a book-profile run, one whose
notebooks carry no injected parameters.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_files(toc: Path) -> list[str]:
    """Every ``file:`` (and the root) named in ``_toc.yml``, e.g. ``book/01_generative_models``."""
    data = yaml.safe_load(toc.read_text())
    files = [data["root"]]
    for part in data.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


def stage(executed: Path, stage_dir: Path) -> list[str]:
    """Fill ``stage_dir`` with the book sources and executed notebooks; return missing chapters."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    (stage_dir / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "book/references.bib"):
        shutil.copy(ROOT / name, stage_dir / name)
    if not (ROOT / "_vendor").is_dir():
        sys.exit("build_book: _vendor/ is missing; run `make setup` first")
    shutil.copytree(ROOT / "_vendor", stage_dir / "_vendor")
    missing = []
    for file in toc_files(ROOT / "_toc.yml"):
        page = ROOT / f"{file}.md"
        notebook = executed / f"{Path(file).name}.ipynb"
        if page.exists():
            shutil.copy(page, stage_dir / f"{file}.md")
        elif notebook.exists():
            shutil.copy(notebook, stage_dir / f"{file}.ipynb")
        else:
            missing.append(file)
    return missing


def injected(notebook: Path) -> bool:
    nb = nbformat.read(notebook, as_version=4)
    return any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)


def update_committed(executed: Path) -> None:
    for notebook in sorted(executed.glob("[0-9][0-9]_*.ipynb")):
        if injected(notebook):
            sys.exit(f"build_book: {notebook} was run with overrides; only a book-profile run may "
                     f"replace the committed notebooks")
        target = ROOT / "book" / notebook.name
        if not target.with_suffix(".py").exists():
            continue
        shutil.copy(notebook, target)
        print(f"updated {target.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executed", type=Path, required=True, help="folder of executed chapters")
    parser.add_argument("--update-committed", action="store_true",
                        help="copy the executed notebooks over book/*.ipynb")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML build")
    parser.add_argument("--output", type=Path, default=ROOT,
                        help="the book goes to OUTPUT/_build/html, its sources to OUTPUT/_build/src")
    args = parser.parse_args(argv)
    if args.update_committed:
        update_committed(args.executed)
    if args.no_html:
        return 0
    staged = args.output / "_build" / "src"
    missing = stage(args.executed, staged)
    if missing:
        print(f"build_book: no executed notebook for {', '.join(missing)}", file=sys.stderr)
        return 1
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(staged),
               "--path-output", str(args.output), "-W", "-n", "--keep-going", "--all"]
    print(" ".join(command), flush=True)
    done = subprocess.run(command)
    if done.returncode == 0:
        print(f"book: {args.output / '_build' / 'html' / 'index.html'}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
