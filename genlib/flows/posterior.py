r"""Flows as VAE posteriors: an inverse autoregressive flow q(z | x) (Kingma et al. 2016).

A VAE's diagonal Gaussian q(z | x) = N(μ(x), diag σ²(x)) leaves an approximation gap,
log p(x) − ELBO ≥ KL(q(z | x) ‖ p(z | x)), wherever the true posterior is not such a Gaussian. An IAF
posterior draws z₀ = μ + σ ⊙ ε and pushes it through K autoregressive steps that also see a context
c(x) from the image,

    z_k = z_{k−1} ⊙ exp(s_k(z_{k−1}, c)) + t_k(z_{k−1}, c),   log q(z_K | x) = log N(z₀; μ, σ²) − Σ_k Σ_l s_{k,l},

every step one pass of a MADE (sampling and the density *at its own samples* are both one pass: the
direction a posterior needs). The ELBO's KL term has no closed form any more; it is estimated with the
same sample, KL ≈ log q(z_K | x) − log p(z_K). :class:`FlowPosteriorVAE` is :class:`genlib.vae.VAE`
with this posterior: same encoder, decoder and prior; ``loss``, ``elbo``, ``iwae_bound`` and
:func:`genlib.vae.evaluate_nll` work unchanged, because it overrides the two places where q enters
(:meth:`terms` and :meth:`log_weights`). With ``n_flows=0`` it is the plain VAE.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks, nets
from genlib._core import LOG_2PI, randn
from genlib.autoregressive import MADE
from genlib.flows.bijections import std_normal_log_prob
from genlib.vae import VAE, VAEConfig, _chunks


class ContextIAFStep(nn.Module):
    """One IAF step z -> z ⊙ e^{s} + t with t_l, s_l functions of z before l in ``order`` and of a
    context c: the MADE's first hidden layer gets a (mask-free) projection of c added, so the
    autoregressive masks over z are kept. The MADE's last layer starts at zero: the step starts as the
    identity. The log-scale is bounded, s = s_max tanh(ŝ / s_max)."""

    def __init__(self, dims: int, context: int, hidden: int = 64, order: torch.Tensor | None = None,
                 s_max: float = 2.0):
        super().__init__()
        self.made = MADE(dims, 2, (checks.positive_int("hidden", hidden),), order, zero_init=True)
        self.context = nn.Linear(checks.positive_int("context", context), hidden)
        self.s_max = checks.positive("s_max", s_max)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(…, L) codes and (…, C) context -> new codes (…, L) and log |det ∂z_k/∂z_{k−1}| = Σ_l s_l (…,)."""
        h = F.relu(self.made.hidden_layers[0](z) + self.context(c))  # MADE.forward, with c in its first layer
        for layer in self.made.hidden_layers[1:]:
            h = F.relu(layer(h))
        t, s_raw = self.made.out(h).unflatten(-1, (2, z.shape[-1])).unbind(-2)
        s = self.s_max * torch.tanh(s_raw / self.s_max)
        return z * s.exp() + t, s.sum(-1)


class IAFPosterior(nn.Module):
    """q(z | x): N(μ, diag σ²) pushed through ``n_flows`` :class:`ContextIAFStep` s, their orders
    alternating between 0..L−1 and its reverse (each coordinate gets to condition on every other)."""

    def __init__(self, latent_dim: int, context: int, n_flows: int = 2, hidden: int = 64):
        super().__init__()
        L = checks.positive_int("latent_dim", latent_dim)
        checks.non_negative_int("n_flows", n_flows)
        self.steps = nn.ModuleList(
            ContextIAFStep(L, context, hidden, torch.arange(L) if k % 2 == 0 else torch.arange(L).flip(0))
            for k in range(n_flows))

    def forward(self, mu: torch.Tensor, log_var: torch.Tensor, c: torch.Tensor,
                eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_K and log q(z_K | x) from noise ``eps`` (…, L); mu, log_var (…, L) and c (…, C) broadcast."""
        z = mu + (0.5 * log_var).exp() * eps
        log_q = -0.5 * (eps.pow(2) + log_var + LOG_2PI).sum(-1)  # log N(z₀; μ, σ²)
        for step in self.steps:
            z, log_det = step(z, c.expand(*z.shape[:-1], c.shape[-1]))
            log_q = log_q - log_det
        return z, log_q


class FlowPosteriorVAE(VAE):
    """:class:`genlib.vae.VAE` whose posterior is an :class:`IAFPosterior` (module docstring). The
    context c(x) comes from its own small network on the encoder's input (one hidden layer of
    ``hidden`` units, the VAE's dropout), beside the unchanged encoder that gives μ and log σ²."""

    def __init__(self, config: VAEConfig | None = None, n_flows: int = 2, hidden: int = 64, context: int = 32):
        super().__init__(config or VAEConfig())
        c = self.config
        self.context_net = nets.mlp(c.dims, checks.positive_int("context", context), hidden, 1, c.dropout)
        self.posterior = IAFPosterior(c.latent_dim, context, n_flows, hidden)

    def _q(self, x: torch.Tensor, y: torch.Tensor | None):
        mu, log_var = self.encode(x, y)
        return mu, log_var, self.context_net(self.features(x))

    def terms(self, x: torch.Tensor, y: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction log p_θ(x | z) and the one-sample KL estimate log q(z | x) − log p(z),
        both (B,), at one z ~ q(z | x)."""
        mu, log_var, c = self._q(x, y)
        z, log_q = self.posterior(mu, log_var, c, randn(mu.shape, mu, generator))
        return self.decode(z, y).log_prob(x), log_q - std_normal_log_prob(z)

    def log_weights(self, x: torch.Tensor, k: int, y: torch.Tensor | None = None,
                    generator: torch.Generator | None = None, chunk: int | None = None) -> torch.Tensor:
        """log w_i = log p_θ(x | z_i) + log p(z_i) − log q(z_i | x), z_i ~ q(z | x) the flow posterior: (k, B)."""
        checks.positive_int("k", k)
        mu, log_var, c = self._q(x, y)
        out = []
        for n in _chunks(k, chunk or max(1, 16384 // len(x))):
            z, log_q = self.posterior(mu, log_var, c, randn((n, *mu.shape), mu, generator))
            out.append(self.decode(z, y).log_prob(x) + std_normal_log_prob(z) - log_q)
        return torch.cat(out)
