"""Benchmark: training throughput of genlib.train.fit in one process vs data-parallel under torchrun.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ddp_throughput.py [--model vae|unet] [--nproc 2]
                                                                          [--seeds 0 1 2] [--variants]

Trains the chapter-4 VAE with the conv networks, or chapter 8's diffusion U-Net (the paper
profile's width 64), on 28x28 images (``mnist5k``: 3,500 training images, offline) for a few epochs
at a global batch of 64, first in one process, then under ``torchrun --nproc_per_node=N`` (Gloo on
CPU, NCCL on CUDA), and reports images per second, one run per seed (``--seeds``; median and min–max over
them, ``genlib.bench``), and the speed-up of the medians. ``--variants`` (for a GPU) times one process in fp32, bf16 autocast and compiled. On a CPU the processes share the same cores, so the
speed-up can be below 1: each process does 1/N of every batch but pays the gradient all-reduce, and
small batches use the cores less well than one process with all threads.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def model_and_data(name: str, generator, images: int):
    """(model, loss, the first ``images`` training inputs) of the chapter's model at 28x28."""
    from genlib import data
    from genlib import diffusion as dm
    from genlib import vae

    train = data.images("mnist5k", "train")
    x = train.x[:images]
    if name == "vae":
        config = vae.VAEConfig.for_dataset("mnist5k", arch="conv", latent_dim=32)
        return vae.VAE(config), vae.batch_loss, vae.model_inputs(x, config, generator)
    config = dm.DiffusionConfig.for_dataset("mnist5k", width=64)
    return dm.Diffusion(config), dm.batch_loss, dm.to_unit_range(x, train.levels).flatten(1)


def train_once(name: str, epochs: int, images: int, out: str, precision: str = "fp32", compile: bool = False,
               seed: int = 0) -> None:
    """One timed training run (in this process, or in each torchrun process)."""
    import genlib
    from genlib.train import fit

    generator = genlib.seed_everything(seed)
    model, loss, x = model_and_data(name, generator, images)
    options = dict(batch_size=64, generator=generator, progress=False, device=genlib.device("auto"),
                   precision=precision, compile=compile)
    fit(model, loss, x, epochs=1, **options)  # warm-up (and compilation)
    tic = time.perf_counter()
    fit(model, loss, x, epochs=epochs, **options)
    seconds = time.perf_counter() - tic
    if int(os.environ.get("RANK", "0")) == 0:
        Path(out).write_text(json.dumps({"images_per_s": epochs * len(x) / seconds}))


def measure(name: str, nproc: int, epochs: int, images: int, precision: str = "fp32", compile: bool = False,
            seed: int = 0) -> float:
    """Images per second of one training run with ``seed`` in ``nproc`` processes (a subprocess each time)."""
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "result.json")
        me = [str(Path(__file__).resolve()), "--worker", "--model", name, "--epochs", str(epochs), "--images", str(images), "--out", out,
              "--precision", precision, "--seeds", str(seed)] + (["--compile"] if compile else [])
        command = [sys.executable, *me] if nproc == 1 else [
            str(Path(sys.executable).with_name("torchrun")), "--standalone", f"--nproc_per_node={nproc}", *me]
        subprocess.run(command, check=True, capture_output=True)
        return json.loads(Path(out).read_text())["images_per_s"]


def main() -> None:
    from genlib import bench

    parser = bench.parser(__doc__)
    parser.add_argument("--model", choices=("vae", "unet"), default="vae")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--images", type=int, default=3500, help="training images per epoch (mnist5k has 3500)")
    parser.add_argument("--variants", action="store_true", help="one process: fp32, bf16, compiled")
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return train_once(args.model, args.epochs, args.images, args.out, args.precision, args.compile, args.seeds[0])
    print(f"{bench.machine()}, cuda={torch.cuda.is_available()}")
    print(f"model: {args.model} at 28x28, {args.images} images, global batch 64, {args.epochs} epochs per run; "
          f"seeds {args.seeds}")
    if args.variants:
        for label, precision, compile in (("fp32", "fp32", False), ("bf16", "bf16", False),
                                          ("fp32 compiled", "fp32", True), ("bf16 compiled", "bf16", True)):
            r = [measure(args.model, 1, args.epochs, args.images, precision, compile, seed) for seed in args.seeds]
            print(f"{label}: {bench.fmt(r, '.0f')} images/s, median (min–max) over {len(r)} seeds", flush=True)
        return None
    rates = {}
    for nproc in (1, args.nproc):
        rates[nproc] = [measure(args.model, nproc, args.epochs, args.images, seed=seed) for seed in args.seeds]
        print(f"{nproc} process{'es' if nproc > 1 else ''}: {bench.fmt(rates[nproc], '.0f')} images/s, "
              f"median (min–max) over {len(args.seeds)} seeds", flush=True)
    speedup = statistics.median(rates[args.nproc]) / statistics.median(rates[1])
    print(f"speed-up with {args.nproc} processes (ratio of the medians): {speedup:.2f}x")


if __name__ == "__main__":
    main()
