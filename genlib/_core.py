"""Devices and seeding, each defined once for the whole book."""
from __future__ import annotations

import random

import numpy as np
import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def _available() -> list[str]:
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def device(name: str | torch.device = "auto") -> torch.device:
    """The torch device for ``name``: "auto" picks cuda, then mps, then cpu.

    An unknown name, or an accelerator this machine lacks, raises a one-line ``ValueError``
    that names the bad value and the choices available here.
    """
    if isinstance(name, torch.device):
        name = str(name)
    base = str(name).split(":")[0]
    if base not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    available = _available()
    if base == "auto":
        for candidate in ("cuda", "mps"):
            if candidate in available:
                return torch.device(candidate)
        return torch.device("cpu")
    if base not in available:
        raise ValueError(
            f"device {name!r} is not available on this machine; choose one of: {', '.join(available)}"
        )
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) with ``seed``; return a CPU generator seeded alike.

    The returned generator is what stochastic genlib functions take as ``generator=``, so a chapter
    can draw reproducible noise without touching the global state again.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
