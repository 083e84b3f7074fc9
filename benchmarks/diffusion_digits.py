"""Benchmark: diffusion and flow matching on digits (Chapter 8), with the U-Net's throughput at 28x28.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/diffusion_digits.py [--repeats 3] [--seed 0]

Per seed: trains the book's digits U-Net (``DiffusionConfig.for_dataset("digits")``, noise
prediction, T = 1000, linear schedule) and a flow-matching model with the same network, each for
``--epochs`` epochs at lr 2e-3 and a quarter as many more at lr 2e-4 (batch 64, train split only).
Then reports

* the variational bound in nats per image on the whole test split (447 images), on the discrete
  17-level data: pixels scaled to [-1, 1], L_T + sum over *every* t = 2..T of L_{t-1} (one draw of
  x_t per term) + L_0 with a discretised Gaussian decoder (Ho et al. 2020) — an upper bound on
  -log P(x) of the integer image, the same scale as the VAE's -IWAE of benchmarks/vae_digits.py;
* the classifier-feature Fréchet distance (genlib.metrics.sample_quality against the training
  images; floor = train vs test) of ``--n-quality`` samples for ancestral, DDIM and flow matching at
  each of ``--steps``, with the CPU time per image;
* training CPU time of each model.

Once (not per seed): training throughput of the U-Net at 28x28, batch 64, in images per second
(process CPU time, widths 16 and 64). Medians and min-max over seeds are printed at the end.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from genlib import data, metrics, seed_everything
from genlib import diffusion as dm
from genlib.train import fit


def train(model, x, epochs, gen) -> float:
    tic = time.process_time()
    fit(model, dm.batch_loss, x, epochs=epochs, batch_size=64, lr=2e-3, generator=gen, progress=False)
    fit(model, dm.batch_loss, x, epochs=max(1, epochs // 4), batch_size=64, lr=2e-4, generator=gen, progress=False)
    model.eval()
    return time.process_time() - tic


def run(seed: int, args) -> dict:
    gen = seed_everything(seed)
    tr, te = data.digits("train"), data.digits("test")
    x = dm.to_unit_range(tr.x, tr.levels)
    config = dm.DiffusionConfig.for_dataset("digits", width=args.width, T=args.T)
    model, flow = dm.Diffusion(config), dm.FlowMatching(config)
    out = {"train_diffusion_s": train(model, x, args.epochs, gen), "train_flow_s": train(flow, x, args.epochs, gen)}
    tic = time.process_time()
    terms = model.bound(te.x, te.levels, generator=gen)
    out["bound_s"] = time.process_time() - tic
    out.update({f"bound_{k}": v.mean().item() for k, v in terms.items()})
    reference = tr.scaled()
    for steps in args.steps:
        for name, draw in [("ancestral", lambda: model.sample(args.n_quality, steps=steps, eta=1.0, generator=gen)),
                           ("ddim", lambda: model.sample(args.n_quality, steps=steps, eta=0.0, generator=gen)),
                           ("flow", lambda: flow.sample(args.n_quality, steps=steps, generator=gen))]:
            tic = time.process_time()
            samples = dm.from_unit_range(draw())
            out[f"ms_{name}_{steps}"] = 1000 * (time.process_time() - tic) / args.n_quality
            out[f"fd_{name}_{steps}"] = metrics.sample_quality(samples, reference)["frechet"]
    return out


def throughput(width: int, batches: int = 10) -> float:
    """Training images per CPU second of the U-Net at 28x28, batch 64 (after 2 warm-up steps)."""
    torch.manual_seed(0)
    model = dm.Diffusion(dm.DiffusionConfig(dims=784, shape=(28, 28), width=width))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(64, 784) * 2 - 1
    for i in range(batches + 2):
        if i == 2:
            tic = time.process_time()
        loss = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return 64 * batches / (time.process_time() - tic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="independent runs (seeds seed, seed+1, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--T", type=int, default=1000)
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50, 100])
    parser.add_argument("--n-quality", type=int, default=500)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"cpu_count={os.cpu_count()}, torch {torch.__version__} threads={torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"settings: {vars(args)}")
    print(f"uniform baseline: {metrics.uniform_nats(64, 17):.1f} nats per image; "
          f"Fréchet floor (train vs test): {metrics.quality_floor()['frechet']:.2f}")
    for width in (16, 64):
        print(f"U-Net training throughput at 28x28, batch 64, width {width}: {throughput(width):.0f} images per CPU second",
              flush=True)
    runs = []
    for r in range(args.repeats):
        result = run(args.seed + r, args)
        runs.append(result)
        print(f"run {r} (seed {args.seed + r}): " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()), flush=True)

    def summary(key: str) -> str:
        values = [r[key] for r in runs]
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    print(f"median (min-max) over {len(runs)} runs:")
    for key in runs[0]:
        print(f"  {key}: {summary(key)}")


if __name__ == "__main__":
    main()
