"""Variational dequantisation (Flow++, Ho et al. 2019) for :mod:`genlib.flows`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks
from genlib.flows.bijections import conditioner, make_mask, std_normal_log_prob

# ----------------------------------------------------------------------------- variational dequantisation


class VariationalDequantizer(nn.Module):
    """A learned noise distribution q(u | x) on [0, 1)^D (Flow++, Ho et al. 2019): ε ~ N(0, I),
    h = g(ε; x) by ``n_layers`` affine couplings whose networks also see x, u = sigmoid(h). Then

        log q(u | x) = log N(ε; 0, I) − log |det ∂h/∂ε| − Σ_d log σ'(h_d),

    and log P(x) ≥ E_q[log p((x + u)/V) − D log V − log q(u | x)], which is tighter than uniform noise
    (the case q = 1) when p is not flat within the cells. (B, D) integer images -> u (B, D), log q (B,)."""

    def __init__(self, dims: int, levels: int, hidden: int = 64, n_layers: int = 4, s_max: float = 2.0):
        super().__init__()
        self.dims, self.levels = checks.positive_int("dims", dims), checks.positive_int("levels", levels)
        self.s_max = checks.positive("s_max", s_max)
        self.register_buffer("masks", torch.stack([make_mask("half", dims, k) for k in range(n_layers)]))
        self.nets = nn.ModuleList(conditioner(2 * dims, 2 * dims, hidden, 2) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        context = x.float() / (self.levels - 1)
        if eps is None:
            eps = torch.randn(x.shape, generator=generator,
                              device=None if generator is None else generator.device).to(x.device)
        h, log_q = eps, std_normal_log_prob(eps)
        for mask, net in zip(self.masks, self.nets):
            t, s_raw = net(torch.cat([mask * h, context], 1)).chunk(2, dim=-1)
            s = self.s_max * torch.tanh(s_raw / self.s_max) * (1 - mask)
            h = mask * h + (1 - mask) * (h * s.exp() + t)
            log_q = log_q - s.sum(-1)
        u = torch.sigmoid(h)
        log_q = log_q - (F.logsigmoid(h) + F.logsigmoid(-h)).sum(-1)  # log σ'(h) = log σ(h) + log σ(−h)
        return u, log_q
