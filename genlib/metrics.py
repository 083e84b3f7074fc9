"""Units of likelihood: nats per image and bits per dimension.

A model's negative log-likelihood of one image, ``-log p(x)`` in nats, divided by ``D log 2`` is
its cost in bits per dimension (pixel). Densities fitted to rescaled or dequantised pixels are
turned back into log-probabilities of the integer image with :func:`discrete_log_prob`.
"""
from __future__ import annotations

import math

import torch


def nats_to_bpd(nats: float | torch.Tensor, dims: int) -> float | torch.Tensor:
    """Negative log-likelihood in nats per image -> bits per dimension: ``nats / (D ln 2)``."""
    return nats / (dims * math.log(2))


def bpd_to_nats(bpd: float | torch.Tensor, dims: int) -> float | torch.Tensor:
    """Bits per dimension -> nats per image: ``bpd D ln 2``."""
    return bpd * dims * math.log(2)


def discrete_log_prob(log_density: torch.Tensor, dims: int, levels: int) -> torch.Tensor:
    """Log-probability of an integer image from a density of its dequantised form.

    If ``y = (x + u) / levels`` with ``u ~ U[0, 1)^D`` and ``p`` is a density of ``y``, then
    ``P(x) = ∫ p((x + u) / levels) levels^-D du`` and, by Jensen,
    ``log P(x) >= E_u[log p(y)] - D log(levels)``. One sample of ``u`` gives an unbiased estimate
    of that bound: pass ``log_density = log p(y)``.
    """
    return log_density - dims * math.log(levels)


def uniform_nats(dims: int, levels: int) -> float:
    """NLL of the uniform model over ``levels**dims`` images: the baseline every model must beat."""
    return dims * math.log(levels)
