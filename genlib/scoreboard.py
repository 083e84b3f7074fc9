"""The scoreboard: each family's book-profile model on digits, over seeds, measured by one protocol (chapter 9).

The command is ``benchmarks/scoreboard.py`` (or ``python -m genlib.scoreboard``); chapter 9 imports
this module to read the classes and renders the file it writes.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/scoreboard.py [--seeds 0 1 2] [--families gmm,vae]
                                                                      [--out results/scoreboard.json]
                                                                      [--checkpoints checkpoints/]

Every family trains its book-profile model with each seed on the book's split of the 8x8 digits (train
1000, validation 350 for model choice and early stopping, test 447 for the numbers) and every row is
measured by the same code (:data:`PROTOCOL`): test NLL in nats per image and bits/dim on the discrete
17-level scale where the family defines one (and what kind of number it is: exact, a bound, an
estimate), training wall time and budget, sampling time per image, and — on 447 samples per seed,
quantised to the 17 grey levels and on the test images' scale — the Fréchet distance, the kernel
distance (KID) and precision/recall on the features of :func:`genlib.metrics.classifier`, next to the
floor at the same N (:func:`genlib.metrics.quality_floor_runs`), a linear probe's test accuracy on the
model's latent features where it has them, and its capabilities read off its class. Iterative
samplers get one budget of network evaluations; the DDPM's full chain is a second line
(:data:`SECOND_LINES`). The file keeps every seed's numbers (chapter 9 shows median and range) with the
machine, versions, seeds and date, and is rewritten after every family, so an interrupted run keeps
what it finished. A subset of ``--families`` is merged into an existing ``--out`` with the same seeds.

The families are those of :data:`genlib.family.REGISTRY`; every row is made by the same code
(:func:`trained`, then :func:`measure`) from the family's declaration. With ``--checkpoints DIR``, a
family whose ``DIR/<family>-seed<S>.pt`` (or, with one seed, ``DIR/<family>.pt``) exists (written by
``python -m genlib.train_family <family>``, e.g. on a GPU) is loaded from it instead of trained here;
its training time is then the one recorded in the file, on the machine that trained it. A family
missing from the folder is announced and trained here.
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
from dataclasses import dataclass, field, replace
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
    n_samples: int | None = None       # samples per seed; None: as many as the test images (the protocol)


def model_class(key: str) -> type:
    """The genlib class of family ``key``'s model (what chapter 9 reads the capabilities off); a second line
    (:data:`SECOND_LINES`) has its family's class."""
    return family.get(LINE_OF.get(key, key)).model


def _ancestral(trained: Trained) -> Trained:
    """The DDPM's second line: the same trained model and bound, sampled by the full ancestral chain (on
    ``diffusion.ANCESTRAL_IMAGES`` images per seed: T network passes each)."""
    from genlib import diffusion as dm

    T, n = trained.model.T, dm.ANCESTRAL_IMAGES
    return replace(trained, name=trained.name.replace(f"DDIM, {dm.SAMPLE_STEPS} steps", f"ancestral, {T} steps"),
                   sample=lambda n, g: dm.from_unit_range(trained.model.sample(n, generator=g)), n_samples=n,
                   notes=[n for n in trained.notes if not n.startswith("samples: DDIM")] + [
                       f"samples: the full ancestral chain over all T = {T} steps ({T} U-Net passes per image), the "
                       "chapter's default sampler; the same trained model and bound as the DDIM line",
                       f"only {n} samples per seed (the chain costs minutes per seed at 447): KID is unbiased at any N "
                       f"and compares with the other rows; FD, precision and recall of {n} samples against the 447 test "
                       "images do not (FD grows as N falls)"])


# A family measured a second way: (the row's key, a function of the family's trained row). The protocol gives
# every iterative sampler one budget of network evaluations; these lines show what a longer chain changes.
SECOND_LINES: dict[str, tuple[str, Callable[[Trained], Trained]]] = {"diffusion": ("diffusion_ancestral", _ancestral)}
LINE_OF = {line: key for key, (line, _) in SECOND_LINES.items()}


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
    return (model.eval() if hasattr(model, "eval") else model), values, seconds, [budget(values, chosen.budget)]


def budget(values, declared: tuple[str, ...] = ()) -> str:
    """The training budget of a row, as the chapter's parameters state it (a confounder of every comparison):
    the ``declared`` parameters (the family's ``budget``), or every epoch- or step-like one."""
    import dataclasses

    params = dataclasses.asdict(values) if dataclasses.is_dataclass(values) else dict(values)
    if declared:
        return "training budget (the chapter's book profile, CPU): " + ", ".join(f"{k} = {params[k]}" for k in declared)
    keys = [k for k in params if any(w in k for w in ("epoch", "steps", "iterations", "patience", "restarts"))
            and isinstance(params[k], int) and not isinstance(params[k], bool) and not k.startswith(("toy", "ring"))]
    return "training budget (the chapter's book profile, CPU): " + ", ".join(f"{k} = {params[k]}" for k in keys)


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


PROTOCOL = (
    "every row: the chapter's book-profile model, trained with each seed (or loaded), on the book's digits split",
    "samples: 447 per row and seed (the test set's size), quantised to the data's 17 grey levels "
    "(round(16 x) / 16, the test images' scale x / 16) before any measure",
    "iterative ODE/SDE samplers at one budget of network evaluations (NFE) per image: flow matching's Euler steps; "
    "the DDPM with DDIM at the same NFE, its full ancestral chain as a second line",
    "features: a small CNN trained on the training and validation digits (test accuracy recorded); "
    "Fréchet distance (FD), kernel distance (KID, unbiased) and k-NN precision/recall (k = 3) against the 447 test images",
    "the floor: disjoint 447-image subsets of the training and validation images against the test images, "
    "at the same N as the models",
    "NLL: nats per image of the integer test images on the 17-level scale; bounds over all 447 test images",
    "summaries: median and range (min-max) over the seeds; a ranking only where ranges do not overlap",
)


def quantise(x: torch.Tensor, levels: int = LEVELS) -> torch.Tensor:
    """Images in [0, 1] -> the nearest of the data's ``levels`` grey levels, still in [0, 1] (``l / (levels-1)``):
    every row's samples are post-processed this way, the scale of the test images ``x / 16``."""
    return torch.round(x.detach().float().clamp(0, 1) * (levels - 1)) / (levels - 1)


@torch.no_grad()
def measure(trained: Trained, seed: int) -> dict:
    """One seed of one row: the common measurements of ``trained`` (its samples quantised, on the test
    images' scale, as many as the test images)."""
    test = data.digits("test")
    gen = torch.Generator().manual_seed(seed + 1000)
    tic = time.perf_counter()
    n = trained.n_samples or len(test)
    raw = trained.sample(n, gen)  # (n, 64) in [0, 1]; n = 447 but for a line that says otherwise
    sample_seconds = (time.perf_counter() - tic) / n
    samples = quantise(raw)
    quality = metrics.sample_quality(samples, test.x.float() / (LEVELS - 1))
    nll = trained.test_nll
    return {"seed": seed, "family": trained.name,
            "test_nll_nats": None if nll is None else round(nll, 3),
            "bits_per_dim": None if nll is None else round(metrics.nats_to_bpd(nll, D), 4),
            "train_seconds": round(trained.train_seconds, 2), "sample_ms_per_image": round(1000 * sample_seconds, 4),
            "frechet": round(quality["frechet"], 3), "kid": round(quality["kid"], 5),
            "precision": round(quality["precision"], 3), "recall": round(quality["recall"], 3),
            "probe_accuracy": None if trained.features is None else round(linear_probe(trained.features), 4),
            "capabilities": capabilities(trained.model), "density": trained.density, "chapter": trained.chapter,
            "notes": trained.notes, "n_samples": n,
            "samples": (samples[:16] * (LEVELS - 1)).round().to(torch.int64).tolist()}  # 16 x 64 grey levels


RUN_KEYS = ("seed", "test_nll_nats", "bits_per_dim", "train_seconds", "sample_ms_per_image", "frechet", "kid",
            "precision", "recall", "probe_accuracy")


def row_of(key: str, measured: list[dict], seconds: float) -> dict:
    """A row of the file from one :func:`measure` per seed: per-seed numbers under ``runs`` (chapter 9
    summarises them as median and range), the rest from the first seed."""
    first = measured[0]
    return {"key": key, "family": first["family"], "chapter": first["chapter"], "capabilities": first["capabilities"],
            "density": first["density"],
            "conditional": bool(getattr(family.get(LINE_OF.get(key, key)), "labels", False)),
            "runs": [{k: m[k] for k in RUN_KEYS} for m in measured],
            "notes": first["notes"], "n_samples": first["n_samples"], "samples": first["samples"],
            "samples_by_seed": {str(m["seed"]): m["samples"] for m in measured}, "row_seconds": round(seconds, 1)}


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "threads": torch.get_num_threads(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset")}


def _fail(message: str) -> int:
    print(f"scoreboard: error: {message}", file=sys.stderr)
    return 2


def _writable(out: Path) -> str | None:
    """Why ``out`` cannot be written (checked before any work), or None."""
    if out.is_dir():
        return f"--out {out} is a folder; give a file name"
    parent = out.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                return f"--out {out}: {folder} is a file, not a folder"
            if not os.access(folder, os.W_OK | os.X_OK):
                return f"--out {out}: {folder} is not writable"
            break
    if out.exists() and not os.access(out, os.W_OK):
        return f"--out {out} is not writable"
    return None


def _previous(out: Path, seeds: list[int], names: list[str]) -> tuple[list[dict], str | None]:
    """Rows of an existing file at ``out`` that a subset run keeps (merged with the new rows), or why not."""
    from genlib import compare

    if set(names) == set(FAMILIES) or not out.exists():
        return [], None
    try:
        old = compare.load_scoreboard(out)
    except ValueError as err:
        return [], f"{err}; a subset run merges into --out: give another --out or run every family"
    if old.get("seeds") != seeds:
        return [], (f"{out} holds seeds {old.get('seeds')}, this run {seeds}: a subset run merges into the file only "
                    f"with the same seeds; give another --out")
    replaced = {*names, *(SECOND_LINES[n][0] for n in names if n in SECOND_LINES)}
    return [row for row in old["rows"] if row["key"] not in replaced], None


def _checkpoint(folder: Path | None, name: str, seed: int, single: bool) -> Path | None:
    """``DIR/<family>-seed<S>.pt``, or ``DIR/<family>.pt`` when one seed is run; None (and a line) when missing."""
    if folder is None:
        return None
    candidates = [folder / f"{name}-seed{seed}.pt"] + ([folder / f"{name}.pt"] if single else [])
    for path in candidates:
        if path.exists():
            return path
    if family.get(name).checkpoint:  # the mixture is fitted here in seconds and never saved
        print(f"scoreboard: {name}, seed {seed}: no {' or '.join(str(c) for c in candidates)}; training it here",
              flush=True)
    return None


def main(argv: list[str] | None = None) -> int:
    from genlib import bench

    parser = bench.parser(__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated: {', '.join(FAMILIES)}")
    parser.add_argument("--seed", type=int, default=None, help="one seed (the same as --seeds S)")
    parser.add_argument("--out", type=Path, default=Path("results/scoreboard.json"),
                        help="the file to write; a subset of families is merged into it (same seeds)")
    parser.add_argument("--checkpoints", type=Path, default=None,
                        help="folder of genlib.train_family files: DIR/<family>-seed<S>.pt (or DIR/<family>.pt with "
                             "one seed) is loaded instead of trained")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else list(dict.fromkeys(args.seeds))
    names = list(dict.fromkeys(n.strip() for n in args.families.split(",") if n.strip()))
    if not names:
        return _fail(f"--families names no family; choose from {', '.join(FAMILIES)}")
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        return _fail(f"unknown family {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    if args.checkpoints is not None and not args.checkpoints.is_dir():
        return _fail(f"--checkpoints {args.checkpoints} is not a folder")
    problem = _writable(args.out)
    kept, why = _previous(args.out, seeds, names)
    if problem or why:
        return _fail(problem or why)
    print(bench.machine(), flush=True)
    tic_all = time.perf_counter()
    floor = metrics.quality_floor_runs()
    result = {"format": FORMAT, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "seeds": seeds, "machine": machine(), "data": "digits (train 1000 / val 350 / test 447), 17 levels",
              "n_samples": len(data.digits("test")), "protocol": list(PROTOCOL),
              "uniform_nats": round(metrics.uniform_nats(D, LEVELS), 3),
              "classifier_test_accuracy": round(metrics.classifier(verbose=False).test_accuracy, 4),
              "floor": {k: [round(r[k], 5) for r in floor] for k in floor[0]}, "rows": []}
    rows = {}
    order = [k for f in FAMILIES for k in (f, *([SECOND_LINES[f][0]] if f in SECOND_LINES else []))]
    for i, name in enumerate(names):
        tic = time.perf_counter()
        line, second = SECOND_LINES.get(name, (None, None))
        measured = {name: [], **({line: []} if line else {})}
        for seed in seeds:
            saved = _checkpoint(args.checkpoints, name, seed, len(seeds) == 1)
            try:
                trained = FAMILIES[name](seed, saved)
            except ValueError as err:  # a checkpoint of another family or data set: one line
                return _fail(f"{name}: {err}")
            for key, one in ((name, trained), *([(line, second(trained))] if line else [])):
                measured[key].append(measure(one, seed))
                m = measured[key][-1]
                nll = "-" if m["test_nll_nats"] is None else f"{m['test_nll_nats']:.1f}"
                print(f"{key:19s} seed {seed}: NLL {nll:>7s} ({m['density']}), train {m['train_seconds']:.1f} s, "
                      f"sample {m['sample_ms_per_image']:.3f} ms/img, FD {m['frechet']:.2f}, KID {m['kid']:.4f}, "
                      f"P/R {m['precision']:.2f}/{m['recall']:.2f}, probe {m['probe_accuracy']}", flush=True)
        for key, runs in measured.items():
            rows[key] = row_of(key, runs, time.perf_counter() - tic)
        # written after every family, so that an interrupted run keeps the rows it finished
        result["rows"] = sorted([*kept, *rows.values()], key=lambda r: order.index(r["key"]) if r["key"] in order else 99)
        result["wall_seconds"] = round(time.perf_counter() - tic_all, 1)
        result["complete"] = i == len(names) - 1
        result["rows_seconds"] = round(sum(r.get("row_seconds", 0) for r in result["rows"]), 1)  # every row's own time
        if kept:  # a subset run: say which rows are this run's and which were kept from the file
            result["note"] = (f"this run measured {', '.join(k for k in order if k in rows)} "
                              f"(wall_seconds is its time); rows {', '.join(r['key'] for r in kept)} were kept from "
                              f"{args.out} as they were (the same seeds; each row's row_seconds is its own time); "
                              f"all rows together: {sum(r.get('row_seconds', 0) for r in result['rows']):.0f} s")
        problem = _write(args.out, result)
        if problem:
            return _fail(problem)
    print(f"-> {args.out} ({len(result['rows'])} rows, seeds {' '.join(map(str, seeds))}, "
          f"{result['wall_seconds']:.0f} s)")
    return 0


def _write(out: Path, result: dict) -> str | None:
    """Write ``result`` to ``out`` atomically (a temporary file renamed over it, never left behind)."""
    try:
        atomic_write(out, lambda f: f.write(json.dumps(result, indent=1).encode()))
    except OSError as err:
        return f"cannot write {out}: {err.strerror or err}"
    return None


if __name__ == "__main__":
    sys.exit(main())
