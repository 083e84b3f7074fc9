"""Devices, seeding and random draws, each defined once for the whole book."""
from __future__ import annotations

import math
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
LOG_2PI = math.log(2 * math.pi)


def randn(shape, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise of ``shape`` with ``like``'s dtype, on ``like``'s device, drawn from
    ``generator`` (on the generator's device, then moved) or, without one, from the global stream."""
    if generator is None:
        return torch.randn(shape, dtype=like.dtype, device=like.device)
    return torch.randn(shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def rand(shape, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform [0, 1) noise of ``shape``, as :func:`randn`."""
    if generator is None:
        return torch.rand(shape, dtype=like.dtype, device=like.device)
    return torch.rand(shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


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


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(file)`` into a temporary file in ``path``'s folder, then a rename onto ``path``: the file
    holds either its old content or the whole new one, never a partial write (Ctrl-C, a full disk)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 would hide the file from the user's group
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def show_source(fn) -> None:
    """Print the source of a genlib function or class, to read next to its equation (the chapters' ``show``)."""
    import inspect

    print(inspect.getsource(fn))
