"""Benchmark: a RealNVP-style flow on digits (Chapter 7), in nats per image on the test split.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 .venv/bin/python benchmarks/flows_digits.py [--repeats 3] [--seed 0]

Trains ``Flow(FlowConfig(hidden=256))`` — logit, then 8 × [ActNorm, affine coupling with a
checkerboard mask], each coupling network a 2-hidden-layer MLP of 256 units with dropout 0.2 —
with the settings of ``TrainConfig()`` (Adam, lr 1e-3, weight decay 1e-5, batch 64, early stopping
on the validation bound with patience 20, at most 150 epochs) on the book split (train 1000 /
validation 350 / test 447). The test split is used only for the final numbers.

The number reported is on the *discrete* scale of every chapter: the dequantisation bound
−(E_u[log p((x + u)/17)] − 64 log 17) nats per integer image, where log p includes the logit's
log-determinant, averaged over 10 draws of u per test image. Reported per run and as the median
(min–max) over runs: training wall time (and CPU time, the fairer measure on a shared machine), epochs, test bound in nats and bits per dimension, and the
time to draw one sample (a batch of 1,000, one inverse pass). References on the same split and
scale: chapter 2's best Gaussian mixture 127.7; IDF 142.7 (our re-run of Tomczak's intro_dgm code,
about 139 s of training); intro_dgm's RealNVP 122.8 on its continuous scale (noise on (0, 0.5]),
about 167 as a discrete bound (+ 64 log 2).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from genlib import data, flows, metrics, seed_everything
from genlib.train import fit


def run(seed: int, config: flows.FlowConfig, train_config: flows.TrainConfig) -> dict[str, float]:
    gen = seed_everything(seed)
    train, val, test = (data.digits(split) for split in ("train", "val", "test"))
    model = flows.Flow(config)
    tic, cpu = time.perf_counter(), time.process_time()
    history = fit(model, flows.batch_loss, train.x, val.x, epochs=train_config.epochs,
                  batch_size=train_config.batch_size, lr=train_config.lr,
                  weight_decay=train_config.weight_decay, patience=train_config.patience,
                  generator=gen, progress=False)
    seconds, cpu_seconds = time.perf_counter() - tic, time.process_time() - cpu
    nll = flows.evaluate_nll(model, test.x, draws=10, generator=gen)
    tic = time.perf_counter()
    model.sample(1000, generator=gen)
    sample_ms = time.perf_counter() - tic  # seconds per 1,000 images = milliseconds per image
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "epochs": history.epochs,
            "best_epoch": history.best_epoch + 1, "nll": nll, "bpd": metrics.nats_to_bpd(nll, test.dims), "sample_ms": sample_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="independent runs (seeds seed, seed+1, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=256, help="width of the coupling networks")
    parser.add_argument("--layers", type=int, default=8, help="coupling layers K")
    args = parser.parse_args()
    config = flows.FlowConfig(hidden=args.hidden, n_layers=args.layers)
    train_config = flows.TrainConfig()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"cpu_count={os.cpu_count()}, torch {torch.__version__} threads={torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"model: {config}")
    print(f"training: {train_config}")
    print(f"uniform baseline: {metrics.uniform_nats(64, 17):.1f} nats per image")
    runs = []
    for r in range(args.repeats):
        result = run(args.seed + r, config, train_config)
        runs.append(result)
        print(f"run {r} (seed {args.seed + r}): train {result['seconds']:.1f} s ({result['cpu_seconds']:.1f} s CPU), "
              f"{result['epochs']} epochs "
              f"(best {result['best_epoch']}), test bound {result['nll']:.2f} nats/image "
              f"({result['bpd']:.3f} bits/dim), sampling {result['sample_ms']:.3f} ms/image", flush=True)

    def summary(key: str, fmt: str) -> str:
        values = [r[key] for r in runs]
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"

    print(f"median (min-max) over {len(runs)} runs: train time {summary('seconds', '.1f')} s "
          f"(CPU {summary('cpu_seconds', '.1f')} s), "
          f"epochs {summary('epochs', '.0f')}, test NLL bound {summary('nll', '.2f')} nats, "
          f"{summary('bpd', '.3f')} bits/dim, sampling {summary('sample_ms', '.3f')} ms/image")


if __name__ == "__main__":
    main()
