r"""The discretised logistic mixture of PixelCNN++ (Salimans et al. 2017): an output distribution over
V ordered levels from 3K numbers instead of V logits.

Level v of V is the bin of width 2δ, δ = 1 / (V − 1), centred at c_v = 2v/(V − 1) − 1 in [−1, 1]. A
mixture of K logistic densities with weights π_k = softmax(w)_k, means μ_k and scales b_k = exp(log b_k)
puts on it the mass of the bin, the edge bins stretched to ±∞ so that the V masses sum to one:

    P(v) = Σ_k π_k [σ((c_v + δ − μ_k)/b_k) − σ((c_v − δ − μ_k)/b_k)],   σ((c_0 − δ − μ)/b) := 0,
                                                                         σ((c_{V−1} + δ − μ)/b) := 1.

Neighbouring levels share parameters, so mass given to level v spills onto v ± 1: the head knows the
levels are ordered, which a V-way softmax must learn from data.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from genlib import checks


def _log_sigmoid_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(σ(a) − σ(b)) for a > b, stably: σ(a) − σ(b) = σ(a) (1 − σ(b)) (1 − e^{b − a})."""
    return F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a))


def logistic_mixture_log_probs(params: torch.Tensor, levels: int) -> torch.Tensor:
    """log P(v) for every level v = 0..V−1 of the mixture with ``params`` (B, 3K, ...), the K weight
    logits, K means and K log-scales along dim 1 (log-scales clamped below at −7 as in PixelCNN++).
    Returns (B, V, ...): normalised log-probabilities, usable wherever logits are."""
    V = checks.positive_int("levels", levels)
    if V < 2:
        raise ValueError(f"levels must be at least 2, got {V}")
    if params.shape[1] % 3:
        raise ValueError(f"params must hold 3K numbers along dim 1 (weights, means, log-scales), got {params.shape[1]}")
    w, mu, log_s = params.unsqueeze(1).chunk(3, dim=2)  # each (B, 1, K, ...)
    log_s = log_s.clamp(min=-7.0)
    shape = (1, V, 1) + (1,) * (params.dim() - 2)
    centre = torch.linspace(-1, 1, V, dtype=params.dtype, device=params.device).view(shape)  # c_k
    half = 1.0 / (V - 1)  # δ
    inv_s = torch.exp(-log_s)
    upper, lower = (centre + half - mu) * inv_s, (centre - half - mu) * inv_s  # (B, V, K, ...)
    log_mass = _log_sigmoid_difference(upper, lower)
    log_mass = torch.cat([F.logsigmoid(upper[:, :1]),            # v = 0: σ(upper) − 0
                          log_mass[:, 1:-1],
                          F.logsigmoid(-lower[:, -1:])], dim=1)  # v = V − 1: 1 − σ(lower)
    return torch.logsumexp(torch.log_softmax(w, dim=2) + log_mass, dim=2)  # Σ_k π_k P_k(v), (B, V, ...)


def logistic_mixture_direct(weights: torch.Tensor, means: torch.Tensor, scales: torch.Tensor, levels: int) -> torch.Tensor:
    """The same masses computed directly, for one mixture: π (K,) summing to one, μ (K,), b (K,) ->
    (V,) probabilities as differences of logistic CDFs, with the edge bins reaching ±∞ (a reference
    for tests; no log-space care)."""
    edges = torch.linspace(-1, 1, levels, dtype=torch.float64)
    half = 1.0 / (levels - 1)
    cdf_hi = torch.sigmoid((edges[:, None] + half - means) / scales)  # (V, M)
    cdf_lo = torch.sigmoid((edges[:, None] - half - means) / scales)
    cdf_hi[-1], cdf_lo[0] = 1.0, 0.0
    return ((cdf_hi - cdf_lo) * weights).sum(1)
