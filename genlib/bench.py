"""The benchmark harness: the machine, seeds, timing and the median (min–max) summary, written once.

Every ``benchmarks/*.py`` command (and a chapter that times something) uses these, so each benchmark
takes ``--seeds`` and prints its machine and its numbers the same way::

    parser = bench.parser(__doc__)                 # adds --seeds 0 1 2
    args = parser.parse_args()
    print(bench.machine())
    runs = [run(seed) for seed in args.seeds]       # one dict of numbers per seed
    print(bench.report(runs, {"nll": ".1f", "seconds": ".1f"}))

A claim in the book that ranks two models rests on such a summary over at least three seeds.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch

DEFAULT_SEEDS = (0, 1, 2)


def machine() -> str:
    """One line naming what a measurement ran on (timings mean nothing without it)."""
    return (f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
            f"cpu_count={os.cpu_count()}, torch {torch.__version__} threads={torch.get_num_threads()}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")


def parser(doc: str | None = None, seeds: Sequence[int] = DEFAULT_SEEDS) -> argparse.ArgumentParser:
    """An argument parser with ``--seeds`` (at least one non-negative integer; default 0 1 2)."""
    p = argparse.ArgumentParser(description=(doc or "").strip().split("\n\n")[0] or None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=_seed, nargs="+", default=list(seeds),
                   help=f"seeds to run, one run each (default: {' '.join(map(str, seeds))})")
    return p


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, got {text!r}")
    return value


def summary(values: Iterable[float]) -> tuple[float, float, float]:
    """(median, min, max) of ``values``; a ValueError for no values or a NaN among them."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("summary of no values")
    if any(v != v for v in values):
        raise ValueError(f"summary of values with a NaN: {values}")
    return statistics.median(values), min(values), max(values)


def fmt(values: Iterable[float], spec: str = ".2f") -> str:
    """``median (min–max)``, e.g. ``'91.7 (91.2–92.4)'``; one value prints alone."""
    values = list(values)
    med, lo, hi = summary(values)
    if len(values) == 1:
        return f"{med:{spec}}"
    return f"{med:{spec}} ({lo:{spec}}–{hi:{spec}})"


def report(runs: Sequence[Mapping[str, float]], specs: Mapping[str, str], label: str = "") -> str:
    """One line: each key's median (min–max) over ``runs`` (a dict of numbers per seed)."""
    head = f"{label}: " if label else ""
    parts = [f"{key} {fmt([r[key] for r in runs], spec)}" for key, spec in specs.items()]
    return f"{head}median (min–max) over {len(runs)} runs: " + ", ".join(parts)


def overlap(a: Iterable[float], b: Iterable[float]) -> bool:
    """Whether the ranges [min, max] of two sets of runs overlap: then neither ranks above the other."""
    _, lo_a, hi_a = summary(a)
    _, lo_b, hi_b = summary(b)
    return lo_a <= hi_b and lo_b <= hi_a


def seconds(fn: Callable[[], object], repeats: int = 20, warmup: int = 1) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    if repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``: wall time of a block."""

    def __enter__(self) -> "Timer":
        self._tic = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._tic
