"""Build the HTML book from executed chapters, without touching the committed notebooks.

    python scripts/build_book.py --executed _build/executed          # -> _build/html
    python scripts/build_book.py --executed _build/executed --update-committed --no-html

The book's sources are staged in ``_build/src`` (configuration, table of contents, bibliography,
the offline JavaScript in ``_vendor`` and the executed notebooks in place of the committed ones), then
Jupyter Book renders them with warnings as errors into ``_build/html``. The staged copies show no
ipywidgets: without a kernel a widget's controls move and redraw nothing, so each widget view is
replaced by a note pointing at the static form (``widgets.animate``) in the next cell, and the saved
widget state is dropped. The book's Sphinx extension (``scripts/book_ext``) is staged with them.
``--update-committed`` copies the executed notebooks over ``book/*.ipynb``: allowed only for a
book-profile run, one whose notebooks carry no injected parameters.
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


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LIVE_NOTE = ('<p class="genlib-live-note"><em>Live controls: run this notebook in JupyterLab to move '
             'them. Without a kernel, the animation below shows the same figure.</em></p>')


def static_widgets(nb: nbformat.NotebookNode) -> int:
    """Replace every widget view of a ``widgets.live`` cell in ``nb`` by a note, drop any other widget
    view (a progress bar: nothing to read once the run is over) and the saved widget state (in place);
    return how many live views were replaced. A live cell keeps nothing else: the figure its widget
    drew at the initial values (an ordinary output once the runner executes it) is what the
    ``animate`` cell after it shows, frame by frame."""
    replaced = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        live = "widgets.live(" in cell.source
        outputs = []
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                if not live:
                    continue
                replaced += 1
                output = nbformat.v4.new_output("display_data", data={"text/html": LIVE_NOTE})
            elif live:
                continue
            outputs.append(output)
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)
    return replaced


def stage_notebook(source: Path, target: Path) -> None:
    nb = nbformat.read(source, as_version=4)
    static_widgets(nb)
    nbformat.write(nb, target)


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
    shutil.copytree(ROOT / "scripts" / "book_ext", stage_dir / "scripts" / "book_ext",
                    ignore=shutil.ignore_patterns("__pycache__"))
    missing = []
    for file in toc_files(ROOT / "_toc.yml"):
        page = ROOT / f"{file}.md"
        notebook = executed / f"{Path(file).name}.ipynb"
        if page.exists():
            shutil.copy(page, stage_dir / f"{file}.md")
        elif notebook.exists():
            stage_notebook(notebook, stage_dir / f"{file}.ipynb")
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
