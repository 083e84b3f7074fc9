"""Benchmark: training throughput of genlib.train.fit in one process vs data-parallel under torchrun.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ddp_throughput.py [--nproc 2] [--repeats 3]

Trains the chapter-4 VAE with the conv networks on 28x28 images (``mnist5k``: 3,500 training images,
offline) for a few epochs at a global batch of 64, first in one process, then under
``torchrun --nproc_per_node=N`` (Gloo on CPU, NCCL on CUDA), and reports images per second (median
and min-max over repeats) and the speed-up. On a CPU the processes share the same cores, so the
speed-up can be below 1: each process does 1/N of every batch but pays the gradient all-reduce, and
small batches use the cores less well than one process with all threads.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def train_once(epochs: int, out: str) -> None:
    """One timed training run (in this process, or in each torchrun process)."""
    import genlib
    from genlib import data, vae
    from genlib.train import fit

    generator = genlib.seed_everything(0)
    config = vae.VAEConfig.for_dataset("mnist5k", arch="conv", latent_dim=32)
    x = vae.model_inputs(data.images("mnist5k", "train").x, config, generator)
    model = vae.VAE(config)
    fit(model, vae.batch_loss, x, epochs=1, batch_size=64, generator=generator, progress=False)  # warm-up
    tic = time.perf_counter()
    fit(model, vae.batch_loss, x, epochs=epochs, batch_size=64, generator=generator, progress=False)
    seconds = time.perf_counter() - tic
    if int(os.environ.get("RANK", "0")) == 0:
        Path(out).write_text(json.dumps({"images_per_s": epochs * len(x) / seconds}))


def measure(nproc: int, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "result.json")
        me = [str(Path(__file__).resolve()), "--worker", "--epochs", str(epochs), "--out", out]
        command = [sys.executable, *me] if nproc == 1 else [
            str(Path(sys.executable).with_name("torchrun")), "--standalone", f"--nproc_per_node={nproc}", *me]
        subprocess.run(command, check=True, capture_output=True)
        return json.loads(Path(out).read_text())["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return train_once(args.epochs, args.out)
    print(f"machine: {platform.platform()}, cpu_count={os.cpu_count()}, torch {torch.__version__}, "
          f"cuda={torch.cuda.is_available()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    rates = {}
    for nproc in (1, args.nproc):
        rates[nproc] = [measure(nproc, args.epochs) for _ in range(args.repeats)]
        r = rates[nproc]
        print(f"{nproc} process{'es' if nproc > 1 else ''}: {statistics.median(r):.0f} images/s "
              f"({min(r):.0f}-{max(r):.0f}) over {args.repeats} runs", flush=True)
    speedup = statistics.median(rates[args.nproc]) / statistics.median(rates[1])
    print(f"speed-up with {args.nproc} processes: {speedup:.2f}x")


if __name__ == "__main__":
    main()
