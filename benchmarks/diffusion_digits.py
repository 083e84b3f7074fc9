"""Benchmark: Chapter 8's diffusion bound (naive vs lattice-matched schedule) and samplers on digits.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/diffusion_digits.py [--seeds 0 1 2] [--epochs 30]
        [--guided-epochs 10] [--guidance 0 0.5 1 2 4] [--ode-images 16 --ode-steps 40]

Per seed, three models with the book's digits U-Net (``DiffusionConfig.for_dataset("digits")``, width
``--width``, T = 1000), each trained for ``--epochs`` epochs at lr 2e-3 and a quarter as many more at
lr 2e-4 (batch 64, train split only, ``diffusion.fit_with_cooldown``):

* ``naive``: noise prediction (L_simple) with DDPM's linear schedule (σ_1 = 0.01, built for 256 levels);
* ``fixed``: the same with the lattice-matched ``snr`` schedule (log-SNR linear from σ_1 = half a bin
  of the 17 levels to the linear schedule's end), for which L_simple is the bound's own weighting;
* ``flow``: flow matching with the same network;
* ``guided``: the ``fixed`` model with labels (``classes=10``, label dropout 0.1) trained for ``--guided-epochs``,
  for classifier-free guidance.

Reported per seed: the variational bound in nats per image on the whole test split (447 images) on the
discrete 17-level data (``Diffusion.bound``: L_T + the sum over t = 2..T of L_{t−1}, estimated with one
draw per log-spaced stratum, ``--strata`` strata, + L_0 with a discretised Gaussian decoder), its
standard error over images and its terms, for ``naive`` and ``fixed``; the classifier-feature Fréchet
distance (``metrics.sample_quality`` against the training images) of ``--n-quality`` samples at each
of ``--steps`` for ancestral and DDIM sampling of both diffusion models and Euler steps of flow matching
(one network evaluation per step for all), and Heun's second-order solver of DDIM's ODE on both models
at the same number of network evaluations (``steps // 2`` Heun steps, two evaluations each); the
guidance sweep: at each scale of ``--guidance`` (classifier-free, DDIM in 20 steps, the same number of
samples of each class) the Fréchet distance, k-NN precision and recall, and the label accuracy of the
feature network's classifier (``fd_/precision_/recall_/accuracy_guided_<scale>``); optionally
(``--ode-images`` > 0) the probability-flow ODE's bound (``Diffusion.ode_bound``, ``--ode-steps`` Heun steps)
of the ``fixed`` model beside its variational bound on the same first test images; training CPU seconds
of each model. Medians and min–max over seeds at the end (``genlib.bench``).
"""
from __future__ import annotations

import math
import time

import torch

from genlib import bench, data, metrics, seed_everything
from genlib import diffusion as dm


def train(model, x, epochs, gen) -> float:
    tic = time.process_time()
    dm.fit_with_cooldown(model, x, None, dm.TrainConfig(epochs=epochs), generator=gen, progress=False)
    return time.process_time() - tic


def run(seed: int, args) -> dict:
    gen = seed_everything(seed)
    tr, te = data.digits("train"), data.digits("test")
    x = dm.to_unit_range(tr.x, tr.levels)
    base = dm.DiffusionConfig.for_dataset("digits", width=args.width, T=args.T)
    models = {"naive": dm.Diffusion(base), "fixed": dm.Diffusion(dm.DiffusionConfig.for_dataset(
        "digits", width=args.width, T=args.T, schedule="snr")), "flow": dm.FlowMatching(dm.FlowMatchingConfig.from_diffusion(base)),
        "guided": dm.Diffusion(dm.DiffusionConfig.for_dataset("digits", width=args.width, T=args.T, schedule="snr", classes=10))}
    out = {}
    for name, model in models.items():
        out[f"train_{name}_s"] = train(model, (x, tr.y) if name == "guided" else x,
                                       args.guided_epochs if name == "guided" else args.epochs, gen)
    for name in ("naive", "fixed"):
        terms = models[name].bound(te.x, te.levels, t_samples=args.strata, generator=gen)
        out[f"bound_{name}"] = terms["total"].mean().item()
        out[f"bound_{name}_se"] = terms["total"].std().item() / math.sqrt(len(te.x))
        out[f"L0_{name}"] = terms["decoder"].mean().item()
        out[f"sum_L_{name}"] = terms["diffusion"].mean().item()
    reference = tr.scaled()
    for steps in args.steps:
        for name, draw in [("naive_ancestral", lambda: models["naive"].sample(args.n_quality, steps=steps, generator=gen)),
                           ("naive_ddim", lambda: models["naive"].sample(args.n_quality, steps=steps, eta=0.0, generator=gen)),
                           ("fixed_ancestral", lambda: models["fixed"].sample(args.n_quality, steps=steps, generator=gen)),
                           ("fixed_ddim", lambda: models["fixed"].sample(args.n_quality, steps=steps, eta=0.0, generator=gen)),
                           ("flow_euler", lambda: models["flow"].sample(args.n_quality, steps=steps, generator=gen)),
                           ("naive_heun", lambda: models["naive"].sample_heun(args.n_quality, max(1, steps // 2), generator=gen)),
                           ("fixed_heun", lambda: models["fixed"].sample_heun(args.n_quality, max(1, steps // 2), generator=gen))]:
            out[f"fd_{name}_{steps}"] = metrics.sample_quality(dm.from_unit_range(draw()), reference)["frechet"]
    clf = metrics.classifier("digits", verbose=False)
    labels = torch.arange(args.n_quality) % 10
    for scale in args.guidance:
        s = dm.from_unit_range(models["guided"].sample(args.n_quality, y=labels, steps=min(20, args.T), eta=0.0,
                                                       guidance=scale, generator=gen))
        q = metrics.sample_quality(s, reference)
        with torch.no_grad():
            accuracy = (clf(s).argmax(1) == labels).float().mean().item()
        out.update({f"fd_guided_{scale:g}": q["frechet"], f"precision_guided_{scale:g}": q["precision"],
                    f"recall_guided_{scale:g}": q["recall"], f"accuracy_guided_{scale:g}": accuracy})
    if args.ode_images:
        tic = time.process_time()
        terms = models["fixed"].ode_bound(te.x[:args.ode_images], te.levels, steps=args.ode_steps, generator=gen)
        out["ode_fixed"] = terms["total"].mean().item()
        out["ode_fixed_se"] = terms["total"].std().item() / math.sqrt(args.ode_images)
        out["ode_fixed_s"] = time.process_time() - tic
        same = models["fixed"].bound(te.x[:args.ode_images], te.levels, t_samples=args.strata, generator=gen)["total"]
        out["bound_fixed_same_images"] = same.mean().item()
    return out


def main() -> None:
    parser = bench.parser(__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--T", type=int, default=1000)
    parser.add_argument("--strata", type=int, default=128, help="log-spaced strata of t for the bound")
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument("--n-quality", type=int, default=300)
    parser.add_argument("--guided-epochs", type=int, default=10, help="epochs of the label-conditional model")
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--ode-images", type=int, default=0, help="test images for the ODE likelihood (0: skip)")
    parser.add_argument("--ode-steps", type=int, default=40)
    args = parser.parse_args()
    print(bench.machine())
    print(f"settings: {vars(args)}")
    print(f"uniform baseline: {metrics.uniform_nats(64, 17):.1f} nats per image; "
          f"Fréchet floor (train vs test): {metrics.quality_floor()['frechet']:.2f}")
    runs = []
    for seed in args.seeds:
        result = run(seed, args)
        runs.append(result)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()), flush=True)
    print(f"median (min–max) over {len(runs)} seeds:")
    for key in runs[0]:
        print(f"  {key}: {bench.fmt([r[key] for r in runs])}")


if __name__ == "__main__":
    main()
