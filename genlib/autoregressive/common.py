"""Pieces every autoregressive model here shares: the inverse-CDF draw, ``fit``'s loss, the exact test NLL."""
from __future__ import annotations

import torch
from torch import nn

from genlib.family import NLL


def categorical_inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """x = #{k : CDF(k) < u}: a draw from Cat(probs) (B, V) for u ~ U[0, 1) (B,). Returns (B,)."""
    cdf = probs.cumsum(1)
    return (cdf < u[:, None]).sum(1).clamp(max=probs.shape[1] - 1)


def batch_loss(model: nn.Module, batch) -> torch.Tensor:
    """``fit``'s loss: mean NLL (nats per image) of a batch (x,) or (x, y)."""
    return model.loss(*batch)


@torch.no_grad()
def evaluate_nll(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 512) -> NLL:
    """Exact test NLL, −mean log p_θ(x) in nats per image, of any model here with ``log_prob(x, y)``
    (integer images x). Returns ``NLL(nats, "exact")`` (``nats, kind = ...`` unpacks it); bits per
    dimension: ``metrics.nats_to_bpd(nll.nats, D)``. The model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        nll = torch.cat([-model.log_prob(x[s : s + batch_size].to(device),
                                         None if y is None else y[s : s + batch_size].to(device)).cpu()
                         for s in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)
    return NLL(float(nll.mean()), "exact", "exact: −Σ_i log p(x_i | x_<i) of the integer images")
