"""Noise schedules and the forward process q(x_t | x_0) (Chapter 8)."""
from __future__ import annotations

import math

import torch
from torch import nn

from genlib import checks
from genlib._core import randn

SCHEDULES = ("linear", "cosine", "snr")
OBJECTIVES = ("eps", "x_prev")
NETS = ("mlp", "unet")


# ----------------------------------------------------------------------------- noise schedules


def linear_betas(T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """β_t rising linearly from ``beta_1`` to ``beta_T`` (Ho et al. 2020), float64, shape (T,).

    The DDPM constants are for T = 1000, where Σ_t β_t ≈ 10.05 and ᾱ_T ≈ e^{−10.1}; for other T they are
    rescaled by 1000/T so that the sum, and with it ᾱ_T, stays about the same (pure noise at t = T).
    Designed for 256 grey levels: σ_1 = √β_1 = 0.01 is far below half a bin of a 17-level image (1/16)."""
    scale = 1000 / T
    return torch.linspace(scale * beta_1, min(scale * beta_T, 0.999), T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """β_t from ᾱ(t) = cos²((t/T + s)/(1 + s) · π/2) / cos²(s/(1 + s) · π/2) (Nichol & Dhariwal
    2021): β_t = 1 − ᾱ(t)/ᾱ(t−1), clipped at ``max_beta``. float64, shape (T,)."""
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


def snr_betas(T: int, logsnr_max: float = 6.0, logsnr_min: float = -10.0) -> torch.Tensor:
    """β_t for a log-SNR λ_t = log(ᾱ_t/(1 − ᾱ_t)) falling linearly from ``logsnr_max`` at t = 1 to
    ``logsnr_min`` at t = T (the fixed schedule of Kingma et al. 2021): ᾱ_t = sigmoid(λ_t),
    β_t = 1 − ᾱ_t/ᾱ_{t−1} with ᾱ_0 = 1, so β_1 = 1 − ᾱ_1 = σ_1² = sigmoid(−``logsnr_max``). float64, (T,).

    Chosen for the data's lattice: with levels scaled to [−1, 1] a bin is δ = 2/(levels − 1) wide, and
    σ_1 ≈ δ/2 (:func:`lattice_logsnr_max`) is the noise at which neighbouring levels start to blur."""
    checks.positive_int("T", T)
    if not logsnr_max > logsnr_min:
        raise ValueError(f"logsnr_max must exceed logsnr_min, got {logsnr_max} <= {logsnr_min}")
    lam = torch.linspace(logsnr_max, logsnr_min, T, dtype=torch.float64)
    alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), torch.sigmoid(lam)])
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)


def lattice_logsnr_max(levels: int, fraction: float = 0.5) -> float:
    """λ_1 = log(ᾱ_1/σ_1²) for σ_1 = ``fraction`` · δ with δ = 2/(levels − 1) the bin width on [−1, 1]."""
    checks.positive_int("levels", levels)
    sigma2 = (fraction * 2 / (levels - 1)) ** 2
    return math.log((1 - sigma2) / sigma2)


def make_betas(schedule: str, T: int, **options) -> torch.Tensor:
    """β_1..β_T of ``schedule`` ("linear", "cosine" or "snr"); ``options`` go to its function."""
    checks.choice("schedule", schedule, SCHEDULES)
    return {"linear": linear_betas, "cosine": cosine_betas, "snr": snr_betas}[schedule](T, **options)


class NoiseSchedule(nn.Module):
    """The constants of a schedule as float64 buffers indexed by t = 0..T (entry 0: no noise).

    ``beta[t]``, ``alpha[t] = 1 − β_t``, ``alpha_bar[t] = Π_{s≤t} α_s`` (``alpha_bar[0] = 1``),
    and the posterior variance ``beta_tilde[t] = (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t`` (``beta_tilde[1] = 0``).
    """

    def __init__(self, betas: torch.Tensor):
        super().__init__()
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.dim() != 1 or len(betas) == 0 or not ((betas > 0) & (betas < 1)).all():
            raise ValueError("betas must be a non-empty 1-D tensor with entries in (0, 1)")
        beta = torch.cat([torch.zeros(1, dtype=torch.float64), betas])  # (T + 1,)
        alpha_bar = torch.cumprod(1 - beta, 0)
        beta_tilde = torch.zeros_like(beta)
        beta_tilde[1:] = (1 - alpha_bar[:-1]) / (1 - alpha_bar[1:]) * beta[1:]
        self.register_buffer("beta", beta)
        self.register_buffer("alpha", 1 - beta)
        self.register_buffer("alpha_bar", alpha_bar)
        self.register_buffer("beta_tilde", beta_tilde)

    @property
    def T(self) -> int:
        return len(self.beta) - 1

    def at(self, name: str, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
        """``self.<name>[t]`` as ``like``'s dtype, shaped to broadcast over a batch like ``like``."""
        values = getattr(self, name)[torch.as_tensor(t, device=self.beta.device)].to(like.dtype)
        return values.reshape(*values.shape, *([1] * (like.dim() - values.dim()))).to(like.device)


# ----------------------------------------------------------------------------- the forward process


def _noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return randn(like.shape, like, generator)


def q_step(x_prev: torch.Tensor, t, schedule: NoiseSchedule, eps: torch.Tensor | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """One forward step x_t = √(1 − β_t) x_{t−1} + √β_t ε. ``t`` an int or (B,) ints ≥ 1."""
    eps = _noise(x_prev, generator) if eps is None else eps
    beta = schedule.at("beta", t, x_prev)
    return torch.sqrt(1 - beta) * x_prev + torch.sqrt(beta) * eps


def q_sample(x0: torch.Tensor, t, schedule: NoiseSchedule, eps: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """The closed form x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, a draw from q(x_t | x_0). ``t`` ≥ 0."""
    eps = _noise(x0, generator) if eps is None else eps
    alpha_bar = schedule.at("alpha_bar", t, x0)
    return torch.sqrt(alpha_bar) * x0 + torch.sqrt(1 - alpha_bar) * eps


def q_posterior(x0: torch.Tensor, xt: torch.Tensor, t, schedule: NoiseSchedule):
    """Mean μ̃_t(x_t, x_0) and variance β̃_t of q(x_{t−1} | x_t, x_0), for t ≥ 1."""
    t = torch.as_tensor(t)
    beta, alpha = schedule.at("beta", t, x0), schedule.at("alpha", t, x0)
    ab, ab_prev = schedule.at("alpha_bar", t, x0), schedule.at("alpha_bar", t - 1, x0)
    mean = torch.sqrt(ab_prev) * beta / (1 - ab) * x0 + torch.sqrt(alpha) * (1 - ab_prev) / (1 - ab) * xt
    return mean, schedule.at("beta_tilde", t, x0)


def predict_x0(xt: torch.Tensor, t, eps: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t: the closed form solved for x_0."""
    ab = schedule.at("alpha_bar", t, xt)
    return (xt - torch.sqrt(1 - ab) * eps) / torch.sqrt(ab)


def mean_from_eps(xt: torch.Tensor, t, eps: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """μ_θ(x_t, t) = (x_t − β_t/√(1 − ᾱ_t) ε̂)/√α_t: the posterior mean with x_0 written through ε."""
    beta, alpha, ab = (schedule.at(k, t, xt) for k in ("beta", "alpha", "alpha_bar"))
    return (xt - beta / torch.sqrt(1 - ab) * eps) / torch.sqrt(alpha)


def score_from_eps(xt: torch.Tensor, t, eps: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """Tweedie: ∇_x log q(x_t) = −E[ε | x_t]/√(1 − ᾱ_t), estimated with ε̂ in place of E[ε | x_t]."""
    return -eps / torch.sqrt(1 - schedule.at("alpha_bar", t, xt))


def reverse_step(xt: torch.Tensor, t, s, eps: torch.Tensor, schedule: NoiseSchedule, eta: float = 1.0,
                 noise: torch.Tensor | None = None, clip: float | None = None) -> torch.Tensor:
    """One step from time t back to s < t given the noise estimate ε̂ (Song et al. 2021, eq. 12):

        x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ²) ε̂ + σ z,   σ² = η² (1 − ᾱ_s)/(1 − ᾱ_t) (1 − ᾱ_t/ᾱ_s).

    η = 1, s = t − 1 is DDPM's ancestral step with variance β̃_t (its mean is μ̃_t(x_t, x̂_0));
    η = 0 is deterministic DDIM. With ``clip``, x̂_0 is clipped to [−clip, clip] (the data range)
    and ε̂ recomputed from it. ``noise`` is z (default: fresh standard normal draws)."""
    x0 = predict_x0(xt, t, eps, schedule)
    ab_t, ab_s = schedule.at("alpha_bar", t, xt), schedule.at("alpha_bar", s, xt)
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
        eps = (xt - torch.sqrt(ab_t) * x0) / torch.sqrt(1 - ab_t)
    var = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
    noise = torch.randn_like(xt) if noise is None else noise
    return torch.sqrt(ab_s) * x0 + torch.sqrt((1 - ab_s - var).clamp(min=0)) * eps + torch.sqrt(var) * noise


def timesteps(T: int, steps: int) -> list[int]:
    """``steps`` + 1 evenly spaced times from T down to 0 (rounded, distinct): the sampler's path."""
    checks.positive_int("steps", steps)
    if steps > T:
        raise ValueError(f"steps must be at most T = {T}, got {steps}")
    return [round(T - i * T / steps) for i in range(steps + 1)]
