"""Benchmark: a gated PixelCNN on digits (Chapter 6): exact test NLL, training time, sampling time.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/autoregressive_digits.py [--repeats 3] [--seed 0]

Trains ``PixelCNN(PixelCNNConfig(arch="gated", channels=48, n_layers=5))`` (categorical output over
the 17 grey levels) for a fixed number of epochs (Adam, lr 3e-3, batches of 64, the weights of the
best validation epoch kept) on the book split (train 1000 / validation 350 / test 447); the test
split is used only for the final numbers. Reported per run and as the median (min–max) over runs:
training wall time and process CPU time, the best epoch, and the exact test NLL in nats per image
and bits per dimension. Then the wall time to sample one image with the naive sampler (the whole
network on the whole image for every pixel) and the windowed fast sampler, at 8x8 and 28x28
(whole images, untrained networks of the same architecture; ``--sample-repeats`` timings each).

Reference: the autoregressive model of Tomczak's intro_dgm (causal 1-D convolutions over the
flattened image), our re-run of its code on the same digits and split: 86.5 nats (86.4–86.7 over
3 seeds) after about 99 s of training on this machine. Target: a lower NLL in at most half that time.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from genlib import autoregressive as ar
from genlib import data, metrics, seed_everything
from genlib.train import fit

CONFIG = dict(arch="gated", channels=48, n_layers=5)


def run(seed: int, epochs: int) -> dict[str, float]:
    gen = seed_everything(seed)
    train, val, test = (data.digits(split) for split in ("train", "val", "test"))
    model = ar.PixelCNN(ar.PixelCNNConfig(**CONFIG))
    tic, cpu = time.perf_counter(), time.process_time()
    history = fit(model, ar.batch_loss, train.x, val.x, epochs=epochs, batch_size=64, lr=3e-3,
                  patience=epochs, generator=gen, progress=False)
    seconds, cpu_seconds = time.perf_counter() - tic, time.process_time() - cpu
    nll = ar.evaluate_nll(model, test.x)
    return {"seconds": seconds, "cpu": cpu_seconds, "best_epoch": history.best_epoch + 1,
            "nats": nll["nats"], "bpd": nll["bpd"]}


def sampling(side: int, repeats: int) -> dict[str, list[float]]:
    torch.manual_seed(0)
    model = ar.PixelCNN(ar.PixelCNNConfig(shape=(side, side), **CONFIG)).eval()
    out = {}
    for fast in (False, True):
        times = [ar.sampling_seconds(model, 1, fast=fast, generator=torch.Generator().manual_seed(r))
                 for r in range(repeats)]
        out["fast" if fast else "naive"] = times
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="independent runs (seeds seed, seed+1, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--sample-repeats", type=int, default=3, help="timings per sampler and size")
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"cpu_count={os.cpu_count()}, torch {torch.__version__} threads={torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"model: {ar.PixelCNNConfig(**CONFIG)}; {args.epochs} epochs, Adam lr 3e-3, batch 64")
    print(f"uniform baseline: {metrics.uniform_nats(64, 17):.1f} nats per image")
    runs = []
    for r in range(args.repeats):
        result = run(args.seed + r, args.epochs)
        runs.append(result)
        print(f"run {r} (seed {args.seed + r}): train {result['seconds']:.1f} s wall, {result['cpu']:.1f} s CPU, "
              f"best epoch {result['best_epoch']}, test NLL {result['nats']:.2f} nats/image "
              f"({result['bpd']:.3f} bits/dim)", flush=True)

    def summary(values, fmt: str) -> str:
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"

    print(f"median (min-max) over {len(runs)} runs: train time {summary([r['seconds'] for r in runs], '.1f')} s wall, "
          f"{summary([r['cpu'] for r in runs], '.1f')} s CPU, test NLL {summary([r['nats'] for r in runs], '.2f')} "
          f"nats/image, {summary([r['bpd'] for r in runs], '.3f')} bits/dim")
    for side in (8, 28):
        times = sampling(side, args.sample_repeats)
        print(f"sampling one {side}x{side} image (median, min-max over {args.sample_repeats}): "
              f"naive {summary(times['naive'], '.2f')} s, fast {summary(times['fast'], '.2f')} s", flush=True)


if __name__ == "__main__":
    main()
