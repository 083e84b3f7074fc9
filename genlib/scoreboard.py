"""The scoreboard: each family's book-profile model on digits, measured the same way (chapter 9).

The command is ``benchmarks/scoreboard.py`` (or ``python -m genlib.scoreboard``); chapter 9 imports
this module to read the classes and to re-measure a row.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/scoreboard.py [--families gmm,vae] [--seed 0]
                                                                      [--out results/scoreboard.json]
                                                                      [--checkpoints checkpoints/]

Every family trains its book-profile model on the book's split of the 8x8 digits (train 1000,
validation 350 for model choice and early stopping, test 447 for the numbers) and is measured by the
same code: test NLL in nats per image and bits/dim on the discrete 17-level scale where the family
defines one (and what kind of number it is: exact, a bound, an estimate), training wall time,
sampling time per image, the classifier-feature Fréchet distance and precision/recall of 447 samples
against the test images (next to the train-vs-test floor), a linear probe's test accuracy on the
model's latent features where it has them, and its capabilities read off its class (``log_prob``,
``sample``, ``encode``). The results go to one JSON file with the machine, versions, seed and date;
chapter 9 renders it. The families are those of :data:`genlib.family.REGISTRY`; every row is made by
the same code (:func:`trained`, then :func:`measure`) from the family's declaration. With
``--checkpoints DIR``, a family whose ``DIR/<family>.pt``
exists (written by ``python -m genlib.train_family <family>``, e.g. on a GPU) is loaded from it instead
of trained here; its training time is then the one recorded in the file, on the machine that trained it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import genlib
from genlib import data, family, metrics, params
from genlib._core import atomic_write
from genlib.compare import FORMAT, capabilities

D, LEVELS = 64, 17


@dataclass
class Trained:
    """What a family hands to the common measurements."""

    model: object                      # the trained model (its class's methods are the capabilities)
    name: str                          # e.g. "Gaussian mixture (diag, K = 15)"
    chapter: int
    density: str                       # "exact", "bound", "estimate", "energy only" or "none"
    test_nll: float | None             # nats per image on the discrete scale, or None
    train_seconds: float
    sample: Callable[[int, torch.Generator], torch.Tensor]  # n -> (n, 64) images scaled to [0, 1]
    features: Callable[[torch.Tensor], torch.Tensor] | None = None  # integer images -> (N, F)
    notes: list[str] = field(default_factory=list)


def model_class(key: str) -> type:
    """The genlib class of family ``key``'s model (what chapter 9 reads the capabilities off)."""
    return family.get(key).model


# ----------------------------------------------------------------------------- the rows: one protocol


def chapter_model(key: str, seed: int, checkpoint: Path | None = None,
                  overrides: dict | None = None) -> tuple[object, object, float, list[str]]:
    """Family ``key``'s chapter model (:mod:`genlib.family`): loaded from ``checkpoint`` (a
    :mod:`genlib.train_family` file), or built and trained here with the chapter's book-profile
    parameters, ``seed`` and ``overrides``.

    Returns the model (CPU, eval mode), its parameters (the chapter's dataclass), the training seconds
    and notes. A checkpoint trained on another data set than the digits is a one-line ``ValueError``."""
    from genlib import train_family

    chosen = family.get(key)
    if checkpoint is not None:
        if not chosen.checkpoint:
            raise ValueError(f"{key} is fitted here in seconds; it has no checkpoint ({checkpoint})")
        model, values = train_family.load(checkpoint, key)
        train_family.check_params(checkpoint, values, **{chosen.dataset_key: "digits"})
        history = train_family.load_history(checkpoint)
        return model, chosen.parameters(values), sum(history.seconds), [
            f"loaded from {checkpoint} ({history.epochs} epochs, seed {values['seed']}); the training time is "
            f"the one recorded there, on the machine that trained it"]
    values = chosen.parameters(params.resolve(chosen.chapter, "book", {**(overrides or {}), "seed": seed}))
    gen = genlib.seed_everything(seed)
    model = chosen.build(values)
    options = {"device": "cpu", "progress": False, "precision": "fp32", "compile": False}
    tic = time.perf_counter()
    chosen.train(model, values, gen, options)
    seconds = time.perf_counter() - tic
    return (model.eval() if hasattr(model, "eval") else model), values, seconds, []


def trained(key: str, seed: int, checkpoint: Path | None = None, **overrides) -> Trained:
    """Family ``key``'s row before the common measurements: its model trained (or loaded), and its test
    NLL on the digits, measured with a generator seeded by ``seed`` (the same for every family).
    ``overrides`` are the chapter's parameters (e.g. ``epochs=`` for the mixture's EM iterations)."""
    chosen = family.get(key)
    model, values, seconds, notes = chapter_model(key, seed, checkpoint, overrides)
    nll = None
    if chosen.nll is not None:
        gen = genlib.seed_everything(seed)
        nll = chosen.nll(model, data.digits("test").x, gen)
    features = None if chosen.features is None else (lambda x: chosen.features(model, x))
    return Trained(model, chosen.describe(model, values), chosen.chapter_number,
                   chosen.density if nll is None else nll.kind, None if nll is None else nll.nats, seconds,
                   lambda n, g: chosen.samples(model, n, g), features,
                   [*notes, *([nll.note] if nll is not None and nll.note else []),
                    *chosen.remarks(model, values, seed)])


class _Rows(Mapping):
    """``FAMILIES[key](seed, checkpoint=None, **overrides) -> Trained`` for every registered family."""

    def __getitem__(self, key: str) -> Callable[..., Trained]:
        if key not in family.REGISTRY:
            raise KeyError(key)
        return functools.partial(trained, key)

    def __iter__(self):
        return iter(family.REGISTRY)

    def __len__(self) -> int:
        return len(family.REGISTRY)


FAMILIES: Mapping[str, Callable[..., Trained]] = _Rows()


# ----------------------------------------------------------------------------- measurements


def linear_probe(features: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Test accuracy of a logistic regression on the features of the training images."""
    from sklearn.linear_model import LogisticRegression

    train, test = data.digits("train"), data.digits("test")
    with torch.no_grad():
        f_train, f_test = (features(s.x).double().numpy() for s in (train, test))
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-8
    clf = LogisticRegression(max_iter=5000).fit((f_train - mu) / sd, train.y.numpy())
    return float(clf.score((f_test - mu) / sd, test.y.numpy()))


@torch.no_grad()
def measure(trained: Trained, seed: int) -> dict:
    test = data.digits("test")
    gen = torch.Generator().manual_seed(seed + 1000)
    tic = time.perf_counter()
    samples = trained.sample(len(test), gen)  # (447, 64) in [0, 1]
    sample_seconds = (time.perf_counter() - tic) / len(test)
    quality = metrics.sample_quality(samples, test.x.float() / (LEVELS - 1))
    row = {"family": trained.name, "chapter": trained.chapter, "capabilities": capabilities(trained.model),
           "density": trained.density,
           "test_nll_nats": None if trained.test_nll is None else round(trained.test_nll, 3),
           "bits_per_dim": None if trained.test_nll is None else round(metrics.nats_to_bpd(trained.test_nll, D), 4),
           "train_seconds": round(trained.train_seconds, 2), "sample_ms_per_image": round(1000 * sample_seconds, 4),
           "frechet": round(quality["frechet"], 3), "precision": round(quality["precision"], 3),
           "recall": round(quality["recall"], 3),
           "probe_accuracy": None if trained.features is None else round(linear_probe(trained.features), 4),
           "notes": trained.notes,
           "samples": (samples[:16] * (LEVELS - 1)).round().to(torch.int64).tolist()}  # 16 x 64 grey levels, for display
    return row


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "threads": torch.get_num_threads(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated: {', '.join(FAMILIES)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/scoreboard.json"))
    parser.add_argument("--checkpoints", type=Path, default=None,
                        help="folder of genlib.train_family files: DIR/<family>.pt is loaded instead of trained")
    args = parser.parse_args(argv)
    names = [n for n in args.families.split(",") if n]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        print(f"scoreboard: error: unknown family {', '.join(unknown)}; choose from {', '.join(FAMILIES)}",
              file=sys.stderr)
        return 2
    floor = metrics.quality_floor()
    result = {"format": FORMAT, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "seed": args.seed, "machine": machine(), "data": "digits (train 1000 / val 350 / test 447), 17 levels",
              "uniform_nats": round(metrics.uniform_nats(D, LEVELS), 3),
              "classifier_test_accuracy": round(metrics.classifier(verbose=False).test_accuracy, 4),
              "floor": {k: round(v, 3) for k, v in floor.items()}, "rows": []}
    for name in names:
        saved = None if args.checkpoints is None else args.checkpoints / f"{name}.pt"
        tic = time.perf_counter()
        try:
            trained = FAMILIES[name](args.seed, saved if saved is not None and saved.exists() else None)
        except ValueError as err:  # a checkpoint of another family or data set: one line
            print(f"scoreboard: error: {name}: {err}", file=sys.stderr)
            return 2
        row = {"key": name, **measure(trained, args.seed)}
        row["row_seconds"] = round(time.perf_counter() - tic, 1)  # training (or loading) and measuring
        result["rows"].append(row)
        nll = "-" if row["test_nll_nats"] is None else f"{row['test_nll_nats']:.1f}"
        print(f"{name:10s} NLL {nll:>7s} ({row['density']}), train {row['train_seconds']:.1f} s, "
              f"sample {row['sample_ms_per_image']:.3f} ms/img, FD {row['frechet']:.2f} (floor {floor['frechet']:.2f}), "
              f"P/R {row['precision']:.2f}/{row['recall']:.2f}, probe {row['probe_accuracy']}, "
              f"row {row['row_seconds']:.0f} s", flush=True)
    atomic_write(args.out, lambda out: out.write(json.dumps(result, indent=1).encode()))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
