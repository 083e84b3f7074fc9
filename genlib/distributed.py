"""Data-parallel training under ``torchrun``: the process group, each process's share of a batch, sums.

:func:`genlib.train.fit` calls these; in a single process (no ``WORLD_SIZE`` > 1) every function is the
identity, so the book's CPU runs never touch :mod:`torch.distributed`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from genlib._core import device as _device


def rank_and_world() -> tuple[int, int]:
    """(this process's rank, the number of processes); (0, 1) outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init(device) -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1) once; (rank, world)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        cuda = str(device).startswith(("cuda", "auto")) and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return rank_and_world()


def local_device(device, world: int) -> torch.device:
    """``genlib.device(device)``; under torchrun on CUDA, this process's GPU (``LOCAL_RANK``)."""
    chosen = _device(device)
    if world > 1 and chosen.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return chosen


def wrap(module: nn.Module, device: torch.device, world: int) -> nn.Module:
    """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` when there are several processes."""
    if world == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def share(batch: Sequence[torch.Tensor], rank: int, world: int) -> tuple[torch.Tensor, ...]:
    """Process ``rank``'s contiguous share of a global batch (all of it when ``world`` is 1)."""
    if world == 1:
        return tuple(batch)
    return tuple(t.tensor_split(world)[rank] for t in batch)


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """A CPU tensor ``t`` summed over the processes (``t`` itself in a single process)."""
    import torch.distributed as dist

    if rank_and_world()[1] == 1:
        return t
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else t.device
    reduced = t.to(on, copy=True)
    dist.all_reduce(reduced)
    return reduced.cpu()
