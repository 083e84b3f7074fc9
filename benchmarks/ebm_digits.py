"""Benchmark: the book profile's energy-based models (Chapter 3) on 2-D toys and on digits.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ebm_digits.py [--repeats 3] [--seed 0]

2-D toys (``--toys``, default moons and 8gaussians; 1000 training points drawn with the seed, 1000
held-out points with seed + 1): the EBM of ``EBMConfig.for_dataset(toy)`` trained by persistent CD
with the settings of ``TrainConfig.for_dataset(toy)``; its held-out log-likelihood, normalised by the
midpoint rule on a 200 x 200 grid over [-4.5, 4.5]^2, next to Chapter 2's mixture of K = 8 Gaussians
fitted by EM to the same points (continuous nats per point, both normalised); training CPU and wall time.

Digits (book split, pixels scaled to [0, 1]): the EBM of ``EBMConfig.for_dataset("digits")`` trained
for ``TrainConfig.for_dataset("digits")``; seconds per Langevin chain step (100 chains, median of 20
calls) and per finished sample (20 steps, as in training; 500 steps from noise); sample quality
(``genlib.metrics.sample_quality``: classifier-feature Fréchet distance and k-NN precision/recall
against the 447 test images, 300 samples) of the buffer's persistent chains and of 20-step chains
from noise, next to the floor (training vs test images). A grid of buffer samples is written to
``--out``. Reported per run and as the median (min-max) over runs.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from genlib import data, ebm, metrics, seed_everything
from genlib.density import GaussianMixture, mean_log_prob
from genlib.train import fit

BOX = (-4.5, 4.5, -4.5, 4.5)


def train(config: ebm.EBMConfig, train_config: ebm.TrainConfig, x: torch.Tensor, gen) -> tuple[ebm.EBM, float, float]:
    model = ebm.EBM(config, gen)
    cpu, wall = time.process_time(), time.perf_counter()
    fit(model, ebm.ContrastiveDivergence(gen), x, epochs=train_config.epochs, batch_size=train_config.batch_size,
        lr=train_config.lr, generator=gen, progress=False)
    return model, time.process_time() - cpu, time.perf_counter() - wall


def run_toy(name: str, seed: int) -> dict[str, float]:
    gen = seed_everything(seed)
    x_train, x_val = data.toy(name, n=1000, seed=seed), data.toy(name, n=1000, seed=seed + 1)
    model, cpu, wall = train(ebm.EBMConfig.for_dataset(name), ebm.TrainConfig.for_dataset(name), x_train, gen)
    with torch.no_grad():
        ebm_ll = float(ebm.GridDensity(model.energy, BOX, 200).log_prob(x_val).mean())
    tic = time.process_time()
    gmm_ll = mean_log_prob(GaussianMixture(K=8).fit_em(x_train, generator=gen), x_val)
    return {"ebm": ebm_ll, "gmm": gmm_ll, "cpu": cpu, "wall": wall, "gmm_cpu": time.process_time() - tic}


def median_seconds(fn, repeats: int = 20) -> float:
    fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return float(np.median(times))


def run_digits(seed: int, out: Path | None) -> dict[str, float]:
    gen = seed_everything(seed)
    x, x_test = data.digits("train").scaled(), data.digits("test").scaled()
    config = ebm.EBMConfig.for_dataset("digits")
    model, cpu, wall = train(config, ebm.TrainConfig.for_dataset("digits"), x, gen)
    x0 = model.noise(100, gen)
    step = median_seconds(lambda: model.langevin(x0, gen, n_steps=1))
    buffer_samples = model.sample(300, generator=gen, from_buffer=True)
    noise_samples = model.sample(300, generator=gen)
    q_buffer = metrics.sample_quality(buffer_samples, x_test)
    q_noise = metrics.sample_quality(noise_samples, x_test)
    if out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from genlib import plot

        out.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(5, 5.3))
        plot.image_grid(buffer_samples[:100], (8, 8), nrow=10, ax=ax, vmax=1,
                        title=f"EBM buffer samples, seed {seed}\nFréchet {q_buffer['frechet']:.1f}")
        fig.savefig(out / f"ebm_digits_seed{seed}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
    return {"cpu": cpu, "wall": wall, "step_us": 1e6 * step / 100,
            "sample20_ms": 1e3 * config.n_steps * step / 100, "sample500_ms": 1e3 * 500 * step / 100,
            "fd_buffer": q_buffer["frechet"], "p_buffer": q_buffer["precision"], "r_buffer": q_buffer["recall"],
            "fd_noise": q_noise["frechet"], "p_noise": q_noise["precision"], "r_noise": q_noise["recall"]}


def summary(runs: list[dict], key: str, fmt: str) -> str:
    values = [r[key] for r in runs]
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="independent runs (seeds seed, seed+1, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--toys", nargs="*", default=["moons", "8gaussians"], choices=data.TOYS)
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("_build/bench_ebm"), help="where the sample grids go")
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"cpu_count={os.cpu_count()}, torch {torch.__version__} threads={torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    seeds = [args.seed + r for r in range(args.repeats)]
    for name in args.toys:
        print(f"{name}: {ebm.EBMConfig.for_dataset(name)}, {ebm.TrainConfig.for_dataset(name)}")
        runs = []
        for seed in seeds:
            r = run_toy(name, seed)
            runs.append(r)
            print(f"  seed {seed}: held-out log-lik EBM {r['ebm']:.3f}, GMM(K=8) {r['gmm']:.3f} nats/point; "
                  f"EBM training {r['cpu']:.1f} s CPU ({r['wall']:.1f} s wall), GMM {r['gmm_cpu']:.2f} s CPU", flush=True)
        print(f"{name}, median (min-max) over {len(runs)} seeds: EBM {summary(runs, 'ebm', '.3f')}, "
              f"GMM {summary(runs, 'gmm', '.3f')} nats/point; EBM training {summary(runs, 'cpu', '.1f')} s CPU, "
              f"{summary(runs, 'wall', '.1f')} s wall")
    if args.no_digits:
        return
    floor = metrics.quality_floor("digits")
    print(f"digits: {ebm.EBMConfig.for_dataset('digits')}, {ebm.TrainConfig.for_dataset('digits')}")
    print(f"  floor (train vs test images): Fréchet {floor['frechet']:.2f}, precision {floor['precision']:.3f}, "
          f"recall {floor['recall']:.3f}")
    runs = []
    for seed in seeds:
        r = run_digits(seed, args.out)
        runs.append(r)
        print(f"  seed {seed}: training {r['cpu']:.1f} s CPU ({r['wall']:.1f} s wall); Langevin {r['step_us']:.1f} µs "
              f"per chain step, {r['sample20_ms']:.3f} ms per 20-step sample, {r['sample500_ms']:.2f} ms per "
              f"500-step sample; buffer: Fréchet {r['fd_buffer']:.2f}, precision {r['p_buffer']:.3f}, recall "
              f"{r['r_buffer']:.3f}; noise, 20 steps: Fréchet {r['fd_noise']:.1f}, precision {r['p_noise']:.3f}, "
              f"recall {r['r_noise']:.3f}", flush=True)
    print(f"digits, median (min-max) over {len(runs)} seeds: training {summary(runs, 'cpu', '.1f')} s CPU; "
          f"{summary(runs, 'step_us', '.1f')} µs per chain step; {summary(runs, 'sample20_ms', '.3f')} ms per "
          f"20-step sample; buffer Fréchet {summary(runs, 'fd_buffer', '.2f')}, precision "
          f"{summary(runs, 'p_buffer', '.3f')}, recall {summary(runs, 'r_buffer', '.3f')}; noise-20 Fréchet "
          f"{summary(runs, 'fd_noise', '.1f')}; sample grids in {args.out}/")


if __name__ == "__main__":
    main()
