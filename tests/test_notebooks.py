"""Every chapter keeps the book's contracts: paired, executed, parameterised, checked, in the TOC."""
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from genlib import run

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = run.chapters(ROOT / "book")
REQUIRED = {"device", "dataset", "seed"}


def test_the_book_has_chapters():
    assert len(CHAPTERS) >= 3


@pytest.fixture(params=CHAPTERS, ids=lambda c: c.stem)
def chapter(request):
    return request.param


def committed(chapter):
    return nbformat.read(chapter.path.with_suffix(".ipynb"), as_version=4)


def test_source_and_notebook_are_in_sync(chapter):
    source, stored = jupytext.read(chapter.path), committed(chapter)
    strip = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells
                        if "injected-parameters" not in c.metadata.get("tags", [])]
    assert strip(source) == strip(stored), f"run `jupytext --to ipynb --update {chapter.path.name}`"


def test_committed_notebook_is_executed_in_the_book_profile(chapter):
    nb = committed(chapter)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "some cells were never executed: run `make notebooks`"
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors


# Chapter 9 trains nothing: it renders results/scoreboard.json, which benchmarks/scoreboard.py writes.
TRAINS_NOTHING = {"09_comparison"}


def test_one_parameters_cell_with_the_book_knobs(chapter):
    declared = run.declared_parameters(run.notebook(chapter))
    assert REQUIRED <= set(declared), f"missing {REQUIRED - set(declared)}"
    assert declared["device"] == "cpu"
    if chapter.stem in TRAINS_NOTHING:  # it renders a results file: its knob is the file, not a budget
        assert "results" in declared
    else:
        assert {"epochs", "steps"} & set(declared)


def test_some_outputs_are_compared_by_nbval(chapter):
    tagged = [c for c in committed(chapter).cells if "nbval-check-output" in c.metadata.get("tags", [])]
    assert tagged and all(c.outputs for c in tagged)


def test_every_chapter_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    listed = yaml.safe_load(toc)
    files = [listed["root"]] + [c["file"] for p in listed["parts"] for c in p["chapters"]]
    assert {f"book/{c.stem}" for c in CHAPTERS} <= set(files)
