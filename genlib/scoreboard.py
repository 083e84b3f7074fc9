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
chapter 9 renders it. Families are registered in ``FAMILIES``; each entry is one short function
``name(seed, checkpoint=None) -> Trained``. With ``--checkpoints DIR``, a family whose ``DIR/<family>.pt``
exists (written by ``python -m genlib.train_family <family>``, e.g. on a GPU) is loaded from it instead
of trained here; its training time is then the one recorded in the file, on the machine that trained it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import genlib
from genlib import data, metrics
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


CLASSES = {"gmm": ("density", "GaussianMixture"), "vae": ("vae", "VAE"), "ebm": ("ebm", "EBM"),
           "gan": ("gan", "GAN"), "pixelcnn": ("autoregressive", "PixelCNN"), "flow": ("flows", "Flow"),
           "diffusion": ("diffusion", "Diffusion"), "diffusion_ancestral": ("diffusion", "Diffusion"),
           "flow_matching": ("diffusion", "FlowMatching")}


def model_class(key: str) -> type:
    """The genlib class of family ``key``'s model (what chapter 9 reads the capabilities off)."""
    import importlib

    module, name = CLASSES[key]
    return getattr(importlib.import_module(f"genlib.{module}"), name)


# ----------------------------------------------------------------------------- families


def chapter_model(family: str, seed: int, checkpoint: Path | None,
                  dataset_key: str = "dataset") -> tuple[torch.nn.Module, dict, float, list[str]]:
    """The chapter's main model of ``family`` (:mod:`genlib.train_family`): loaded from ``checkpoint``, or
    built and trained here with the chapter's book-profile parameters and ``seed``.

    Returns the model (CPU, eval mode), its parameters, the training seconds and notes. A checkpoint
    trained on another data set than the digits is a one-line ``ValueError``."""
    from genlib import train_family

    if checkpoint is not None:
        model, params = train_family.load(checkpoint, family)
        train_family.check_params(checkpoint, params, **{dataset_key: "digits"})
        history = train_family.load_history(checkpoint)
        return model, params, sum(history.seconds), [
            f"loaded from {checkpoint} ({history.epochs} epochs, seed {params['seed']}); the training time is "
            f"the one recorded there, on the machine that trained it"]
    params = train_family.parameters(family, "book", {"seed": seed})
    gen = genlib.seed_everything(seed)
    model = train_family.FAMILIES[family].build(params)
    options = {"device": "cpu", "progress": False, "precision": "fp32", "compile": False}
    tic = time.perf_counter()
    train_family.FAMILIES[family].train(model, params, gen, options)
    return model.eval(), params, time.perf_counter() - tic, [budget(params)]


def budget(params: dict) -> str:
    """The training budget of a row, as the chapter's parameters state it (a confounder of every comparison)."""
    keys = [k for k in params if any(w in k for w in ("epoch", "steps", "iterations", "patience"))
            and isinstance(params[k], int) and not k.startswith(("toy", "ring"))]
    return "training budget (the chapter's book profile, CPU): " + ", ".join(f"{k} = {params[k]}" for k in keys)


GMM_GRID = tuple((c, K) for c in ("diag", "full") for K in (1, 2, 3, 5, 8, 10, 15, 20))  # chapter 2's search
GMM_RESTARTS = 4  # chapter 2's n_restarts


def gmm(seed: int, checkpoint: Path | None = None, *, iterations: int = 100) -> Trained:
    """Chapter 2's chosen mixture: the best of ``GMM_RESTARTS`` EM runs (at most ``iterations`` steps) for every
    covariance type and K of chapter 2's grid, on dequantised digits; the one with the best validation NLL."""
    from genlib.density import fit_em_restarts

    if checkpoint is not None:
        raise ValueError(f"the Gaussian mixture is fitted here by EM in seconds; it has no checkpoint ({checkpoint})")
    gen = genlib.seed_everything(seed)
    splits = {s: data.digits(s) for s in data.SPLITS}
    y = {s: data.dequantize(splits[s].x, LEVELS, generator=gen).double() for s in data.SPLITS}
    nll = lambda model, s: -float(metrics.discrete_log_prob(model.log_prob(y[s]), D, LEVELS).mean())  # noqa: E731
    tic = time.perf_counter()
    fits = {key: fit_em_restarts(y["train"], key[1], restarts=GMM_RESTARTS, covariance=key[0], iterations=iterations,
                                 tol=1e-4, generator=gen)[0] for key in GMM_GRID}
    best = min(fits, key=lambda key: nll(fits[key], "val"))
    seconds = time.perf_counter() - tic
    model = fits[best]

    def sample(n: int, g: torch.Generator) -> torch.Tensor:
        x = torch.floor(model.sample(n, generator=g) * LEVELS).clamp(0, LEVELS - 1)  # y = (x + u)/17 -> level x
        return x / (LEVELS - 1)                                                       # the test images' scale x/16

    return Trained(model, f"Gaussian mixture ({best[0]}, K = {best[1]})", 2, "bound", nll(model, "test"),
                   seconds, sample, lambda x: model.responsibilities(data.dequantize(x, LEVELS).double()).float(),
                   [f"training budget (chapter 2's book profile, CPU): at most {iterations} EM iterations per run",
                    f"chapter 2's choice: the best of {GMM_RESTARTS} EM restarts for each of {len(GMM_GRID)} mixtures "
                    "(diagonal and full covariance, K in 1-20), chosen by validation NLL; the time is the whole search",
                    "NLL: the dequantisation bound E_u[log p((x+u)/17)] - 64 log 17, one draw of u per image",
                    "samples: y ~ p, then the grey level floor(17 y) (the inverse of the dequantisation)"])


def vae(seed: int, checkpoint: Path | None = None) -> Trained:
    """Chapter 4: the chapter's main VAE (section 7), early stopping on validation."""
    from genlib import vae as family

    model, _, seconds, notes = chapter_model("vae", seed, checkpoint)
    config = model.config
    test = data.digits("test")
    gen = genlib.seed_everything(seed)
    nll = family.evaluate_nll(model, test.x, k=1000, batch_size=64, generator=gen)
    return Trained(model, f"VAE ({config.arch.upper()}, L = {config.latent_dim}, {config.likelihood} decoder)", 4,
                   "estimate", nll["iwae"], seconds,
                   lambda n, g: model.sample(n, generator=g).float() / (LEVELS - 1),
                   lambda x: model.encode(x)[0],
                   [f"NLL: -IWAE with k = 1000 (a bound in expectation); -ELBO = {nll['elbo']:.1f}", *notes])


def ebm(seed: int, checkpoint: Path | None = None) -> Trained:
    """Chapter 3: the image EBM (MLP energy, persistent CD with a replay buffer); no normalised likelihood.
    Its samples are fresh short-run Langevin chains from uniform noise, T = the training chain length."""
    model, params, seconds, notes = chapter_model("ebm", seed, checkpoint, "image_dataset")
    T = model.config.n_steps
    train, test = (data.digits(s).scaled() for s in ("train", "test"))
    gen = torch.Generator().manual_seed(seed + 2000)
    buffer = model.sample(len(test), generator=gen, from_buffer=True)  # the persistent chains, T more steps
    noise = model.sample(len(test), generator=gen)                     # the row's sampler: T steps from noise
    q = metrics.sample_quality(buffer, test)
    with torch.no_grad():
        energy = {name: float(model.energy(x).mean()) for name, x in
                  (("training images", train), ("test images", test), ("chains from noise", noise),
                   ("buffer chains", buffer))}
    return Trained(model, f"EBM (MLP energy, persistent CD, T = {T})", 3, "energy only", None, seconds,
                   lambda n, g: model.sample(n, generator=g),
                   None,
                   [f"samples: Langevin chains from uniform noise, T = {T} steps (the training chain length); "
                    f"the replay buffer's chains (what training saw; 5% restarted from noise, as in training), advanced "
                    f"T steps, score instead "
                    f"FD {q['frechet']:.2f}, P/R {q['precision']:.2f}/{q['recall']:.2f}",
                    "no likelihood: Z(θ) is unknown; mean energy E_θ (nats, up to the unknown log Z): "
                    + ", ".join(f"{k} {v:.3f}" for k, v in energy.items()),
                    "no latent features: the energy network maps an image to one number", *notes])


def gan(seed: int, checkpoint: Path | None = None) -> Trained:
    """Chapter 5: the chapter's image GAN, a conditional DCGAN, sampled with labels drawn at the
    training set's class frequencies (which makes it a sampler of p(x))."""
    model, params, seconds, notes = chapter_model("gan", seed, checkpoint)
    y_train = data.digits("train").y

    def sample(n: int, g: torch.Generator) -> torch.Tensor:
        y = y_train[torch.randint(len(y_train), (n,), generator=g)]  # (n,) labels as often as in training
        return model.sample(n, y=y, generator=g)                       # (n, 64) in [0, 1] from a sigmoid

    c = model.config
    return Trained(model, f"conditional DCGAN (L = {c.latent_dim}, {c.hidden} channels)", 5, "none", None, seconds,
                   sample, None,
                   ["class-conditional (chapter 5 trains one image GAN, conditional): trained on (image, label) "
                    "pairs, sampled with random labels at the training frequencies - a sampler of p(x), but it "
                    "used the labels, which the unconditional rows did not",
                    "no density: G pushes z forward and p_g has no likelihood",
                    "no latent features: the GAN has no encoder (the discriminator's features are not its latents)",
                    *notes])


def pixelcnn(seed: int, checkpoint: Path | None = None) -> Trained:
    """Chapter 6: the gated PixelCNN; exact NLL of the integer images (17 levels), one pixel at a time."""
    from genlib import autoregressive as ar

    model, params, seconds, notes = chapter_model("pixelcnn", seed, checkpoint)
    c = model.config
    if c.levels != LEVELS:
        raise ValueError(f"the PixelCNN models {c.levels} grey levels, the scoreboard's digits have {LEVELS}")
    nll = ar.evaluate_nll(model, data.digits("test").x)
    return Trained(model, f"gated PixelCNN ({c.channels} channels, {c.n_layers} layers)", 6, "exact", nll["nats"],
                   seconds, lambda n, g: model.sample(n, generator=g, fast=True).float() / (LEVELS - 1), None,
                   ["NLL: exact, -sum_i log p(x_i | x_<i) of the integer images over the 17 levels (the "
                    "discrete scale of every row)",
                    "samples: 64 sequential network passes (one per pixel, the windowed fast sampler)",
                    "no latent features: an autoregressive model has none", *notes])


def flow(seed: int, checkpoint: Path | None = None) -> Trained:
    """Chapter 7: the coupling flow on dequantised digits, early stopping on the validation bound."""
    from genlib import flows

    model, params, seconds, notes = chapter_model("flow", seed, checkpoint)
    gen = genlib.seed_everything(seed)
    nll = flows.evaluate_nll(model, data.digits("test").x, draws=10, generator=gen)
    kind = {"affine": "RealNVP, affine", "additive": "NICE, additive"}[params["coupling"]]
    return Trained(model, f"Flow ({kind} couplings, M = {params['n_layers']}, hidden {params['hidden']})", 7,
                   "bound", nll, seconds, lambda n, g: model.sample(n, generator=g).float() / (LEVELS - 1),
                   model.encode,
                   [*notes, "NLL: the dequantisation bound -E_u[log p((x+u)/17)] + 64 log 17 of the flow's exact density "
                         "of dequantised images, 10 draws of u per test image (flows.evaluate_nll, as the chapter)",
                    "samples: one inverse pass, z ~ N(0, I), floored to the 17 levels",
                    "probe features: z = f((x + 1/2)/17), the forward map at the pixel centres (Flow.encode; "
                    "the chapter's latents of section 6), D = 64 numbers"])


_DDPM: dict = {}  # the last trained DDPM and its bound, for its second line
NFE = 100  # network evaluations per sample for the iterative ODE/SDE samplers (flow matching's Euler steps)


def _diffusion(seed: int, checkpoint: Path | None, steps: int | None) -> Trained:
    """Chapter 8: the DDPM U-Net (noise prediction), sampled with DDIM (η = 0) in ``steps`` steps, or with its
    ancestral chain over all T steps (``steps=None``). The variational bound uses every t = 2..T (one draw of
    x_t each) on all the test images."""
    from genlib import diffusion as dm

    key = (seed, None if checkpoint is None else str(checkpoint))
    if key not in _DDPM:  # the DDIM and the ancestral lines share one trained model and one bound
        model, params, seconds, notes = chapter_model("diffusion", seed, checkpoint)
        gen = genlib.seed_everything(seed)
        test = data.digits("test").x
        with torch.no_grad():
            total = torch.cat([model.bound(test[i:i + 150], LEVELS, generator=gen)["total"]
                               for i in range(0, len(test), 150)])  # (447,) nats, every t
        _DDPM[key] = model, params, seconds, notes, total
    model, params, seconds, notes, total = _DDPM[key]
    error = float(total.std()) / math.sqrt(len(total))
    T, width = params["T"], params["width"]
    how = f"DDIM, {steps} steps" if steps else f"ancestral, {T} steps"
    sampler = ((lambda n, g: dm.from_unit_range(model.sample(n, steps=steps, eta=0.0, generator=g))) if steps else
               (lambda n, g: dm.from_unit_range(model.sample(n, generator=g))))
    return Trained(model, f"DDPM (U-Net width {width}, T = {T}, {params['schedule']}; {how})", 8,
                   "bound", float(total.mean()), seconds, sampler, None,
                   [*notes, f"NLL: the variational bound L_T + sum of all L_(t-1), t = 2..{T} (one x_t each) + L_0 "
                         f"with the discretised Gaussian decoder on the 17 levels (Diffusion.bound), over all "
                         f"{len(total)} test images; standard error over the images {error:.1f} nats",
                    (f"samples: DDIM (eta = 0) in {steps} steps, {steps} U-Net passes per image, the same number of "
                     "network evaluations as flow matching's Euler steps" if steps else
                     f"samples: the full ancestral chain over all T = {T} steps ({T} U-Net passes per image), the "
                     "chapter's default sampler"),
                    "no log_prob (only the bound) and no latent features: no encoder (running DDIM backwards would "
                    "give a deterministic x_T, not measured here)"])


def diffusion(seed: int, checkpoint: Path | None = None) -> Trained:
    """The DDPM with DDIM at :data:`NFE` network evaluations per sample (flow matching's budget)."""
    return _diffusion(seed, checkpoint, NFE)


def diffusion_ancestral(seed: int, checkpoint: Path | None = None) -> Trained:
    """The same DDPM with its full ancestral chain (T network evaluations per sample): the second line."""
    return _diffusion(seed, checkpoint, None)


def flow_matching(seed: int, checkpoint: Path | None = None, *, steps: int = NFE) -> Trained:
    """Chapter 8: flow matching with the chapter's digits U-Net, sampled by ``steps`` Euler steps."""
    from genlib import diffusion as dm

    model, params, seconds, notes = chapter_model("flow_matching", seed, checkpoint)
    return Trained(model, f"Flow matching (U-Net width {params['width']}; Euler, {steps} steps)", 8, "none", None,
                   seconds, lambda n, g: dm.from_unit_range(model.sample(n, steps=steps, generator=g)), None,
                   [*notes, "the chapter trains it on the digits with the DDPM's U-Net and recipe",
                    f"samples: Euler integration of dx/dt = v(x, t) from t = 1 to 0 in {steps} steps "
                    "(FlowMatching.sample's default; the chapter's section 10 also tries 5-20); x_0 mapped to [0, 1]",
                    "NLL: none. The chapter computes no likelihood; the ODE gives one by the instantaneous change of "
                    "variables (log p(x_0) = log N(x_1) + integral of div v dt) with dequantisation, not computed here",
                    "no latent features: no encoder (integrating the ODE forwards gives a deterministic z, "
                    "not measured)"])


FAMILIES: dict[str, Callable[..., Trained]] = {
    "gmm": gmm, "vae": vae, "ebm": ebm, "gan": gan, "pixelcnn": pixelcnn, "flow": flow, "diffusion": diffusion,
    "diffusion_ancestral": diffusion_ancestral, "flow_matching": flow_matching}


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
    raw = trained.sample(len(test), gen)  # (447, 64) in [0, 1]
    sample_seconds = (time.perf_counter() - tic) / len(test)
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
            "notes": trained.notes,
            "samples": (samples[:16] * (LEVELS - 1)).round().to(torch.int64).tolist()}  # 16 x 64 grey levels


RUN_KEYS = ("seed", "test_nll_nats", "bits_per_dim", "train_seconds", "sample_ms_per_image", "frechet", "kid",
            "precision", "recall", "probe_accuracy")


def row_of(key: str, measured: list[dict], seconds: float) -> dict:
    """A row of the file from one :func:`measure` per seed: per-seed numbers under ``runs`` (chapter 9
    summarises them as median and range), the rest from the first seed."""
    first = measured[0]
    return {"key": key, "family": first["family"], "chapter": first["chapter"], "capabilities": first["capabilities"],
            "density": first["density"], "conditional": "conditional" in first["family"].lower(),
            "runs": [{k: m[k] for k in RUN_KEYS} for m in measured],
            "notes": first["notes"], "samples": first["samples"],
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
    return [row for row in old["rows"] if row["key"] not in names], None


def _checkpoint(folder: Path | None, name: str, seed: int, single: bool) -> Path | None:
    """``DIR/<family>-seed<S>.pt``, or ``DIR/<family>.pt`` when one seed is run; None (and a line) when missing."""
    if folder is None:
        return None
    candidates = [folder / f"{name}-seed{seed}.pt"] + ([folder / f"{name}.pt"] if single else [])
    for path in candidates:
        if path.exists():
            return path
    if name != "gmm":  # the mixture is fitted here in seconds and never saved
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
    rows, order = {}, list(FAMILIES)
    for name in names:
        tic = time.perf_counter()
        measured = []
        for seed in seeds:
            saved = _checkpoint(args.checkpoints, name, seed, len(seeds) == 1)
            try:
                trained = FAMILIES[name](seed, saved)
            except ValueError as err:  # a checkpoint of another family or data set: one line
                return _fail(f"{name}: {err}")
            measured.append(measure(trained, seed))
            m = measured[-1]
            nll = "-" if m["test_nll_nats"] is None else f"{m['test_nll_nats']:.1f}"
            print(f"{name:14s} seed {seed}: NLL {nll:>7s} ({m['density']}), train {m['train_seconds']:.1f} s, "
                  f"sample {m['sample_ms_per_image']:.3f} ms/img, FD {m['frechet']:.2f}, KID {m['kid']:.4f}, "
                  f"P/R {m['precision']:.2f}/{m['recall']:.2f}, probe {m['probe_accuracy']}", flush=True)
        rows[name] = row_of(name, measured, time.perf_counter() - tic)
        # written after every row, so that an interrupted run keeps the rows it finished
        result["rows"] = sorted([*kept, *rows.values()], key=lambda r: order.index(r["key"]) if r["key"] in order else 99)
        result["wall_seconds"] = round(time.perf_counter() - tic_all, 1)
        result["complete"] = len(rows) == len(names)
        problem = _write(args.out, result)
        if problem:
            return _fail(problem)
    print(f"-> {args.out} ({len(result['rows'])} rows, seeds {' '.join(map(str, seeds))}, "
          f"{result['wall_seconds']:.0f} s)")
    return 0


def _write(out: Path, result: dict) -> str | None:
    """Write ``result`` to ``out`` atomically (a ``.part`` file renamed over it, never left behind)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    try:
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, out)
    except OSError as err:
        return f"cannot write {out}: {err.strerror or err}"
    finally:
        tmp.unlink(missing_ok=True)
    return None


if __name__ == "__main__":
    sys.exit(main())
