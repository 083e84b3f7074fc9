"""Benchmark: Chapter 5's GANs — mode collapse on the ring, and DCGAN sample quality on digits.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gan_digits.py --ring [--seeds 5]
    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gan_digits.py --digits [--seeds 3]

``--ring`` trains the book profile's plain GAN, the same GAN with the minibatch-std feature (the
chapter's fix) and, with ``--pack M``, PacGAN-M, on the ring of 8 Gaussians
(``gan.RingExperiment()``, the chapter's settings) from seeds 0, 1, ... and reports, per
seed and as the median (min–max), the modes covered and the fraction of high-quality samples (within
3σ of a mode) among 2,500 samples at the end of training, and the CPU time per run. For scale, the
papers on this protocol report the plain GAN covering about 1 of 8 modes and PacGAN4 7.8 (Lin et al.
2018, their Table 3 with their networks and a longer run; not re-run here).

``--digits`` trains the chapter's DCGAN, unconditional (``--epochs``, default 60; the book profile trains 40) on the 1,000
training digits and reports the classifier-feature Fréchet distance and precision/recall of 447
samples against the 447 test images, next to the floor (training images vs test images), and the
training time. These are not Inception FIDs: see ``genlib.metrics``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from genlib import data, gan, metrics, seed_everything


def machine() -> str:
    return (f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
            f"cpu_count={os.cpu_count()}, torch {torch.__version__} threads={torch.get_num_threads()}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")


def summary(values, fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def ring(seeds: int, pack: int) -> None:
    experiment = gan.RingExperiment()
    print(f"ring: {experiment}")
    variants = [("plain GAN", {}), ("minibatch std", {"minibatch_std": True})]
    if pack > 1:
        variants.append((f"PacGAN{pack}", {"pack": pack}))
    for name, options in variants:
        rows = []
        for seed in range(seeds):
            tic = time.process_time()
            final = experiment.run(seed, **options)["final"]
            rows.append((final["modes"], final["high_quality"], time.process_time() - tic))
            print(f"{name}, seed {seed}: {final['modes']}/8 modes, high quality {final['high_quality']:.3f}, "
                  f"{rows[-1][2]:.1f} s CPU", flush=True)
        modes, quality, cpu = zip(*rows)
        print(f"{name}: median (min-max) over {seeds} seeds: modes {summary(modes, '.0f')}, "
              f"high quality {summary(quality, '.3f')}, CPU {summary(cpu, '.1f')} s; "
              f"seeds with 8/8 modes and >= 95% high quality: {sum(m == 8 and q >= 0.95 for m, q in zip(modes, quality))}"
              f"/{seeds}", flush=True)


def digits(seeds: int, epochs: int) -> None:
    train, test = data.digits("train"), data.digits("test")
    x_train, x_test = train.scaled(), test.scaled()
    floor = metrics.quality_floor("digits")
    print(f"floor (training vs test images): Fréchet {floor['frechet']:.1f}, precision {floor['precision']:.3f}, "
          f"recall {floor['recall']:.3f}")
    config = gan.GANConfig.for_dataset("digits", arch="conv", latent_dim=16, hidden=32)
    train_config = gan.TrainConfig(lr_g=1e-3, lr_d=1e-3)
    print(f"model: {config}\ntraining: {train_config}, {epochs} epochs, batch 64")
    rows = []
    for seed in range(seeds):
        gen = seed_everything(seed)
        model = gan.GAN(config)
        tic = time.perf_counter()
        gan.fit_gan(model, x_train, epochs=epochs, batch_size=64, config=train_config, generator=gen)
        seconds = time.perf_counter() - tic
        q = metrics.sample_quality(model.sample(len(x_test), generator=gen), x_test)
        rows.append((q["frechet"], q["precision"], q["recall"], seconds))
        print(f"seed {seed}: Fréchet {q['frechet']:.1f}, precision {q['precision']:.3f}, recall {q['recall']:.3f}, "
              f"train {seconds:.1f} s", flush=True)
    fd, precision, recall, seconds = zip(*rows)
    print(f"DCGAN: median (min-max) over {seeds} seeds: Fréchet {summary(fd, '.1f')}, precision "
          f"{summary(precision, '.3f')}, recall {summary(recall, '.3f')}, train {summary(seconds, '.1f')} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ring", action="store_true", help="plain GAN vs PacGAN on the ring of Gaussians")
    parser.add_argument("--digits", action="store_true", help="DCGAN sample quality on digits")
    parser.add_argument("--seeds", type=int, default=5, help="runs (seeds 0, 1, ...)")
    parser.add_argument("--pack", type=int, default=1, help="also run PacGAN with this pack (> 1)")
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    if not (args.ring or args.digits):
        parser.error("choose --ring and/or --digits")
    print(machine())
    if args.ring:
        ring(args.seeds, args.pack)
    if args.digits:
        digits(args.seeds, args.epochs)


if __name__ == "__main__":
    main()
