"""Validation at genlib's boundaries: one clear line for every bad input.

Every check raises a ``ValueError`` (or ``TypeError``) whose message names the bad value and says
what is allowed, in one line, e.g. ``latent_dim must be a positive integer, got 0``. Models call
these once, where data or settings enter (a config's ``__post_init__``, ``loss``, ``log_prob``);
they are cheap (a few reductions over the batch), so they run on every call.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import torch

__all__ = ["positive_int", "non_negative_int", "positive", "non_negative", "in_unit_interval",
           "choice", "finite_number", "short", "support", "images", "no_labels"]


def short(value, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters, so a long value is never echoed in full."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width - 3]}... ({len(text)} characters)"


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value) -> int:
    """``value`` if it is an integer ≥ 1."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer (1, 2, ...), got {short(value)}")
    return value


def non_negative_int(name: str, value) -> int:
    """``value`` if it is an integer ≥ 0."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (0, 1, ...), got {short(value)}")
    return value


def finite_number(name: str, value) -> float:
    """``value`` as a float if it is a finite real number (not a bool, NaN or ±inf)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {short(value)}")
    return float(value)


def positive(name: str, value) -> float:
    """``value`` if it is a finite number > 0."""
    if finite_number(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {short(value)}")
    return float(value)


def non_negative(name: str, value) -> float:
    """``value`` if it is a finite number ≥ 0."""
    if finite_number(name, value) < 0:
        raise ValueError(f"{name} must be >= 0, got {short(value)}")
    return float(value)


def in_unit_interval(name: str, value, closed_right: bool = False) -> float:
    """``value`` if it lies in [0, 1) (or [0, 1] with ``closed_right``)."""
    value = finite_number(name, value)
    if value < 0 or value > 1 or (value == 1 and not closed_right):
        raise ValueError(f"{name} must be in [0, 1{']' if closed_right else ')'}, got {short(value)}")
    return value


def choice(name: str, value, options: Iterable):
    """``value`` if it is one of ``options``."""
    options = tuple(options)
    if value not in options:
        raise ValueError(f"unknown {name} {short(value)}; choose one of: {', '.join(map(str, options))}")
    return value


def support(name: str, x: torch.Tensor, kind: str, levels: int | None = None) -> torch.Tensor:
    """``x`` if every entry lies in the support of a likelihood.

    ``kind`` is ``"binary"`` (values 0 or 1), ``"categorical"`` (integers 0..levels-1, any dtype
    holding whole numbers) or ``"real"`` (finite values). Anything else would give silent garbage:
    a Bernoulli log-probability of 0.5 or 17 is a number, but not a log-probability.
    """
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if kind == "real":
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} has NaN or infinite entries")
        return x
    if kind == "binary":
        bad = (x != 0) & (x != 1)
        allowed = "0 or 1"
    elif kind == "categorical":
        if levels is None:
            raise TypeError("support(kind='categorical') needs levels")
        bad = (x != torch.round(x)) | (x < 0) | (x > levels - 1) if x.is_floating_point() \
            else (x < 0) | (x > levels - 1)
        allowed = f"integers 0..{levels - 1}"
    else:
        raise ValueError(f"unknown support kind {kind!r}; choose one of: binary, categorical, real")
    if bad.any():
        example = x[bad].flatten()[0].item()
        raise ValueError(f"{name} must hold {allowed} (the likelihood's support), "
                         f"found {example!r} at {int(bad.sum())} of {x.numel()} entries")
    return x


def images(name: str, x: torch.Tensor, dims: int | None = None,
           shape: Sequence[int] | None = None) -> torch.Tensor:
    """``x`` if it is a batch of flat images ``(B, dims)`` or shaped images ``(B, *shape)``."""
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if dims is not None and (x.dim() != 2 or x.shape[1] != dims):
        raise ValueError(f"{name} must have shape (batch, {dims}), got {tuple(x.shape)}")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have shape (batch, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
    if len(x) == 0:
        raise ValueError(f"{name} is an empty batch")
    return x


def no_labels(y, model: str) -> None:
    """Nothing if ``y`` is None: an unconditional ``model`` takes no labels."""
    if y is not None:
        raise ValueError(f"{model} is unconditional: it takes no labels y (got {type(y).__name__}); pass y=None")
