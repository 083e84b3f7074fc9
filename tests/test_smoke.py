"""The paper profile's code paths, run small on a CPU before anyone pays for a GPU: the ``smoke`` profile.

``genlib/profiles.yml``'s ``smoke`` entry keeps the paper profile's data sets (mnist5k where the paper
downloads MNIST), architectures and code paths, with epochs, steps and sizes cut. Here:

* every ``genlib.train_family`` family is trained with ``--profile smoke`` and loaded back;
* every chapter the paper profile changes runs end to end with ``--profile smoke``, and a chapter that
  can load a trained model (``checkpoint=``) loads its family's smoke file instead of training its main
  model: one execution checks both the paper path and the checkpoint route (the chapter must say it
  loaded the file, and must not train).

Each chapter's wall time is printed at the end of the test run (``tests/conftest.py``); the budget is
``SMOKE_BUDGET_S`` on a quiet 2-core machine (timed, not asserted: a loaded machine would fail it).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
import torch
import yaml

from genlib import data, run, train_family

ROOT = Path(__file__).resolve().parent.parent
PROFILES = yaml.safe_load((ROOT / "genlib" / "profiles.yml").read_text())
SMOKE, PAPER = PROFILES["smoke"], PROFILES["paper"]
PAPER_CHAPTERS = sorted(k for k in PAPER if k not in ("all", "runner"))
SMOKE_BUDGET_S = 60
# The chapter that loads each family's file with checkpoint= (its main model), and what it prints then.
CHECKPOINTS = {"03_energy_models": "ebm", "04_vae": "vae", "05_gans": "gan", "06_autoregressive": "pixelcnn",
               "07_flows": "flow", "08_diffusion": "diffusion"}
# A line the chapter prints only when it trains its main model itself.
TRAINED_LINE = {"07_flows": "trained: ", "08_diffusion": "Diffusion (unet, eps, snr schedule): trained"}
TIMES: dict[str, float] = {}  # chapter -> seconds, printed by tests/conftest.py


def test_smoke_keeps_the_paper_data_sets_and_architectures():
    """Same chapters, same keys; strings (data sets, architectures) equal the paper's, except that a
    download (mnist, binarized_mnist) becomes mnist5k; sizes may only shrink."""
    assert SMOKE["all"]["device"] == PAPER["all"]["device"]
    assert sorted(k for k in SMOKE if k not in ("all", "runner")) == PAPER_CHAPTERS
    for stem in PAPER_CHAPTERS:
        paper, smoke = PAPER[stem], SMOKE[stem]
        assert set(paper) <= set(smoke), f"{stem}: smoke leaves out {set(paper) - set(smoke)}"
        for key, value in paper.items():
            if isinstance(value, str):
                expected = "mnist5k" if value in data.DOWNLOADED else value
                assert smoke[key] == expected, f"{stem}: {key}={smoke[key]!r}, the paper's is {value!r}"
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                assert smoke[key] <= value, f"{stem}: {key}={smoke[key]} is larger than the paper's {value}"
            elif isinstance(value, list):
                assert len(smoke[key]) <= len(value), f"{stem}: {key} is longer than the paper's"
    assert not any(v in data.DOWNLOADED for entry in SMOKE.values() for v in (entry or {}).values()
                   if isinstance(v, str)), "smoke must run without network"


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """``<family>.pt`` trained with ``--profile smoke``, each once per session (on first use)."""
    folder = tmp_path_factory.mktemp("smoke-checkpoints")

    def get(family: str) -> Path:
        path = folder / f"{family}.pt"
        if not path.exists():
            assert train_family.main([family, "--profile", "smoke", "--out", str(folder)]) == 0
        return path

    return get


smoke = pytest.mark.book_build  # chapter runs: left out of the quick loop `pytest tests -k "not book_build"`


@smoke
@pytest.mark.parametrize("family", [n for n, f in train_family.FAMILIES.items() if f.checkpoint])  # the mixture is fitted where used
def test_every_family_trains_with_the_smoke_profile_and_loads(family, checkpoints):
    path = checkpoints(family)
    params = train_family.parameters(family, "smoke")
    model, saved = train_family.load(path, family, expect={k: params[k] for k in ("dataset", "image_dataset")
                                                           if k in params})
    assert saved == params
    shapes = {k: v.shape for k, v in torch.load(path, weights_only=True)["model"].items()}
    assert shapes == {k: v.shape for k, v in model.state_dict().items()}
    assert train_family.load_history(path).epochs >= 1


def _texts(nb) -> list[str]:
    return ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in nb.cells if c.cell_type == "code"]


@smoke
@pytest.mark.parametrize("stem", PAPER_CHAPTERS)
def test_every_chapter_runs_with_the_smoke_profile(stem, checkpoints, tmp_path):
    family = CHECKPOINTS.get(stem)
    overrides = [f"checkpoint={json.dumps(str(checkpoints(family)))}"] if family else []
    tic = time.perf_counter()
    status = run.main([stem, *overrides, "--profile", "smoke", "--out", str(tmp_path)])  # overrides right after the chapter
    TIMES[stem] = time.perf_counter() - tic
    failed = next(tmp_path.glob("*.failed.ipynb"), None)
    assert status == 0, f"{stem} failed in the smoke profile (see {failed})"
    nb = nbformat.read(tmp_path / f"{stem}.ipynb", as_version=4)
    texts = _texts(nb)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if family:
        path = checkpoints(family)
        epochs = train_family.load_history(path).epochs
        loaded = [t for t in texts if f"loaded {path}: " in t]
        assert len(loaded) == 1, f"{stem} did not say it loaded {path}"
        assert f"{epochs} epochs" in loaded[0], loaded[0]
        trained = TRAINED_LINE.get(stem)
        assert not (trained and any(trained in t for t in texts)), f"{stem} trained its main model anyway"
