"""Each chapter's parameters cell equals its dataclass in genlib.params (the package runs without the book)."""
from dataclasses import asdict

import pytest

from genlib import params, run


@pytest.mark.parametrize("chapter", run.chapters(), ids=lambda c: c.stem)
def test_the_parameters_cell_equals_the_dataclass_defaults(chapter):
    declared = run.declared_parameters(run.notebook(chapter))
    assert chapter.stem in params.CHAPTERS, f"add a parameters dataclass for {chapter.stem} to genlib/params.py"
    assert asdict(params.CHAPTERS[chapter.stem]()) == declared, (
        f"{chapter.stem}'s parameters cell and genlib.params.{params.CHAPTERS[chapter.stem].__name__} differ: "
        "change both together")


def test_profiles_resolve_defaults_then_profile_then_overrides():
    assert params.resolve("04_vae")["dataset"] == "digits"
    paper = params.resolve("04_vae", "paper", {"epochs": 3})
    assert paper["dataset"] == "binarized_mnist" and paper["device"] == "auto" and paper["epochs"] == 3
    with pytest.raises(ValueError, match="has no parameter named nope"):
        params.resolve("04_vae", overrides={"nope": 1})
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        params.resolve("04_vae", "fast")
    saved = {**params.defaults("07_flows"), "hidden": 8, "gone": 1}
    assert params.of("07_flows", saved).hidden == 8
