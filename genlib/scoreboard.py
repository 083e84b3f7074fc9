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
           "diffusion": ("diffusion", "Diffusion"), "flow_matching": ("diffusion", "FlowMatching")}


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
    return model.eval(), params, time.perf_counter() - tic, []


def gmm(seed: int, checkpoint: Path | None = None, *, iterations: int = 100) -> Trained:
    """Chapter 2: a Gaussian mixture by EM (at most ``iterations`` steps) on dequantised digits;
    covariance and K by validation."""
    from genlib.density import GaussianMixture

    if checkpoint is not None:
        raise ValueError(f"the Gaussian mixture is fitted here by EM in seconds; it has no checkpoint ({checkpoint})")
    gen = genlib.seed_everything(seed)
    splits = {s: data.digits(s) for s in data.SPLITS}
    y = {s: data.dequantize(splits[s].x, LEVELS, generator=gen).double() for s in data.SPLITS}
    nll = lambda model, s: -float(metrics.discrete_log_prob(model.log_prob(y[s]), D, LEVELS).mean())  # noqa: E731
    tic = time.perf_counter()
    grid = [("diag", K) for K in (5, 10, 15, 20)] + [("full", K) for K in (1, 2, 3)]
    fits = {key: GaussianMixture(key[1], key[0]).fit_em(y["train"], iterations=iterations, tol=1e-4, generator=gen)
            for key in grid}
    best = min(fits, key=lambda key: nll(fits[key], "val"))
    seconds = time.perf_counter() - tic
    model = fits[best]
    return Trained(model, f"Gaussian mixture ({best[0]}, K = {best[1]})", 2, "bound", nll(model, "test"),
                   seconds, lambda n, g: model.sample(n, generator=g).clamp(0, 1),
                   lambda x: model.responsibilities(data.dequantize(x, LEVELS).double()).float(),
                   [f"chosen among {len(grid)} mixtures by validation NLL; the time is the whole search",
                    "NLL: the dequantisation bound E_u[log p((x+u)/17)] - 64 log 17, one draw of u per image"])


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


def diffusion(seed: int, checkpoint: Path | None = None, *, bound_images: int = 100) -> Trained:
    """Chapter 8: the DDPM U-Net (noise prediction), sampled with its default ancestral chain of T steps.

    The variational bound uses every t = 2..T (one draw of x_t each) on the first ``bound_images``
    test images: per compute far less noisy than a few random t on every image."""
    from genlib import diffusion as dm

    model, params, seconds, notes = chapter_model("diffusion", seed, checkpoint)
    gen = genlib.seed_everything(seed)
    test = data.digits("test").x[:bound_images]
    total = model.bound(test, LEVELS, generator=gen)["total"]  # (bound_images,) nats, every t
    error = float(total.std()) / math.sqrt(len(total))
    T, width = params["T"], params["width"]
    return Trained(model, f"DDPM (U-Net width {width}, T = {T}, {params['schedule']}; ancestral, {T} steps)", 8,
                   "bound", float(total.mean()), seconds,
                   lambda n, g: dm.from_unit_range(model.sample(n, generator=g)), None,
                   [*notes, f"NLL: the variational bound L_T + sum of all L_(t-1), t = 2..{T} (one x_t each) + L_0 "
                         f"with the discretised Gaussian decoder on the 17 levels (Diffusion.bound), on the first "
                         f"{len(total)} of the {len(data.digits('test'))} test images only; standard error over those "
                         f"images {error:.1f} nats",
                    f"samples: the chapter's default sampler, ancestral over all T = {T} steps ({T} U-Net passes "
                    f"per image); x_0 in [-1, 1] mapped to [0, 1], not quantised (as the chapter scores them)",
                    "no log_prob (only the bound) and no latent features: no encoder (running DDIM backwards would "
                    "give a deterministic x_T, not measured here)"])


def flow_matching(seed: int, checkpoint: Path | None = None, *, steps: int = 100) -> Trained:
    """Chapter 8: flow matching with the chapter's digits U-Net, sampled by ``steps`` Euler steps."""
    from genlib import diffusion as dm

    model, params, seconds, notes = chapter_model("flow_matching", seed, checkpoint)
    return Trained(model, f"Flow matching (U-Net width {params['width']}; Euler, {steps} steps)", 8, "none", None,
                   seconds, lambda n, g: dm.from_unit_range(model.sample(n, steps=steps, generator=g)), None,
                   [*notes, "the chapter trains it on the digits with the DDPM's U-Net and recipe",
                    f"samples: Euler integration of dx/dt = v(x, t) from t = 1 to 0 in {steps} steps "
                    "(FlowMatching.sample's default; the chapter's section 10 also tries 5-20); x_0 mapped to [0, 1], "
                    "not quantised",
                    "NLL: none. The chapter computes no likelihood; the ODE gives one by the instantaneous change of "
                    "variables (log p(x_0) = log N(x_1) + integral of div v dt) with dequantisation, not computed here",
                    "no latent features: no encoder (integrating the ODE forwards gives a deterministic z, "
                    "not measured)"])


FAMILIES: dict[str, Callable[..., Trained]] = {
    "gmm": gmm, "vae": vae, "ebm": ebm, "gan": gan, "pixelcnn": pixelcnn, "flow": flow, "diffusion": diffusion,
    "flow_matching": flow_matching}


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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.part")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, args.out)
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
