"""The DDPM: its configuration, loss, samplers (ancestral, DDIM, Heun, guidance) and variational bound (Chapter 8)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genlib import checks, data
from genlib.diffusion.schedules import (NETS, NoiseSchedule, OBJECTIVES, SCHEDULES, _noise, lattice_logsnr_max,
                                        make_betas, mean_from_eps, predict_x0, q_posterior, q_sample, q_step,
                                        reverse_step, snr_betas, timesteps)
from genlib.diffusion.networks import MLPDenoiser, UNet


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class DiffusionConfig:
    """A diffusion model's process and network. Defaults: the book profile's digits model."""

    dims: int = 64                             # D
    shape: tuple[int, int] | None = (8, 8)     # image shape for the U-Net (None: vectors)
    T: int = 1000                              # diffusion steps
    schedule: str = "linear"                   # "linear" | "cosine"
    objective: str = "eps"                     # "eps" (predict the noise) | "x_prev" (predict x_{t-1})
    net: str = "unet"                          # "unet" | "mlp"
    width: int = 32                            # U-Net base channels or MLP hidden units
    layers: int = 3                            # hidden layers of the MLP
    fourier: int = 0                           # MLP: Fourier features of x at this many frequencies
    clip: float | None = 1.0                   # sampling: clip x̂_0 to [−clip, clip] (None: no clipping)
    logsnr_max: float = 5.5                    # schedule "snr": log-SNR at t = 1 (5.5: σ_1 ≈ half a 17-level bin)
    logsnr_min: float = -10.0                  # schedule "snr": log-SNR at t = T
    freqs: tuple[float, ...] = ()              # U-Net: per-pixel Fourier features sin/cos(ω x) at these ω
    classes: int = 0                           # U-Net: condition on labels 0..classes−1 (0: unconditional)
    label_dropout: float = 0.1                 # training with labels: P(label replaced by the null label ∅)

    def __post_init__(self):
        checks.positive_int("dims", self.dims)
        checks.positive_int("T", self.T)
        checks.non_negative_int("classes", self.classes)
        checks.in_unit_interval("label_dropout", self.label_dropout)
        if self.classes and self.net != "unet":
            raise ValueError(f"classes > 0 needs net 'unet' (the MLP takes no labels), got net {self.net!r}")
        checks.choice("schedule", self.schedule, SCHEDULES)
        checks.choice("objective", self.objective, OBJECTIVES)
        checks.choice("net", self.net, NETS)
        checks.positive_int("width", self.width)
        checks.positive_int("layers", self.layers)
        checks.non_negative_int("fourier", self.fourier)
        checks.finite_number("logsnr_max", self.logsnr_max)
        checks.finite_number("logsnr_min", self.logsnr_min)
        if self.logsnr_max <= self.logsnr_min:
            raise ValueError(f"logsnr_max must exceed logsnr_min, got {self.logsnr_max} <= {self.logsnr_min}")
        if not isinstance(self.freqs, tuple):
            raise ValueError(f"freqs must be a tuple of positive numbers, got {checks.short(self.freqs)}")
        for f in self.freqs:
            checks.positive("freqs", f)
        if self.clip is not None:
            checks.positive("clip", self.clip)
        if self.net == "unet":
            if self.shape is None or len(self.shape) != 2 or self.shape[0] * self.shape[1] != self.dims:
                raise ValueError(f"net 'unet' needs shape (H, W) with H*W = dims = {self.dims}, got {self.shape!r}")

    @classmethod
    def for_dataset(cls, name: str, **overrides) -> "DiffusionConfig":
        """Images (digits, MNIST) get the U-Net, clipping to [−1, 1] and, for the "snr" schedule, σ_1 at half
        a bin of the data's grey levels (:func:`lattice_logsnr_max`); 2-D toys an MLP, no clipping."""
        from genlib import data

        data.check_dataset(name)
        if name in data.IMAGES:
            h, w = data.IMAGE_SHAPES[name]
            base = dict(dims=h * w, shape=(h, w), net="unet", clip=1.0,
                        logsnr_max=lattice_logsnr_max(data.LEVELS[name]))
        else:
            base = dict(dims=2, shape=None, net="mlp", width=128, layers=2, fourier=4, clip=None)
        return cls(**{**base, **overrides})


def config_betas(config: DiffusionConfig) -> torch.Tensor:
    """β_1..β_T of a config's schedule (the "snr" schedule with the config's log-SNR endpoints)."""
    if config.schedule == "snr":
        return snr_betas(config.T, config.logsnr_max, config.logsnr_min)
    return make_betas(config.schedule, config.T)


def lattice_freqs(levels: int) -> tuple[float, ...]:
    """Angular frequencies ω whose periods 2π/ω are 2δ, δ and δ/2 for the bin width δ = 2/(levels − 1) on
    [−1, 1]: Fourier features at these let a network resolve the lattice of levels (Kingma et al. 2021)."""
    checks.positive_int("levels", levels)
    delta = 2 / (levels - 1)
    return tuple(2 * math.pi / p for p in (2 * delta, delta, delta / 2))


def make_net(config) -> nn.Module:
    """The network of a :class:`DiffusionConfig` or :class:`FlowMatchingConfig`."""
    if config.net == "unet":
        return UNet(config.shape, config.width, freqs=config.freqs, classes=getattr(config, "classes", 0))
    return MLPDenoiser(config.dims, config.width, config.layers, fourier=config.fourier)


def to_unit_range(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Integer levels 0..levels−1 -> floats in [−1, 1]: y = 2x/(levels − 1) − 1 (bin width 2/(levels − 1))."""
    return 2 * x.float() / (levels - 1) - 1


def from_unit_range(y: torch.Tensor) -> torch.Tensor:
    """[−1, 1] -> [0, 1], clipped (for display and for :func:`genlib.metrics.sample_quality`)."""
    return ((y + 1) / 2).clamp(0, 1)


# ----------------------------------------------------------------------------- the model


class Diffusion(nn.Module):
    """A Gaussian diffusion model: the schedule (buffers) and a network of (x_t, t/T)."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        self.schedule = NoiseSchedule(config_betas(config))
        self.net = make_net(config)

    @property
    def T(self) -> int:
        return self.config.T

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        return checks.tensor("x", x, (None, self.config.dims), finite=True, floating=True)

    def _times(self, t, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(t, device=like.device).expand(n).long()

    @property
    def null_label(self) -> int:
        """The index of the null label ∅ of a conditional model: ``classes`` (labels are 0..classes−1)."""
        return self.config.classes

    def _labels(self, y, n: int, like: torch.Tensor) -> torch.Tensor | None:
        """``y`` checked: None for an unconditional model; else (n,) labels 0..C (C = ∅); None: all ∅."""
        if not self.config.classes:
            checks.no_labels(y, "the diffusion model (DiffusionConfig.classes = 0)")
            return None
        if y is None:
            return torch.full((n,), self.null_label, dtype=torch.long, device=like.device)
        return checks.labels("y", y, self.config.classes + 1, n).to(like.device)

    def _net(self, xt: torch.Tensor, s: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.net(xt, s) if y is None else self.net(xt, s, y)

    def eps(self, xt: torch.Tensor, t, y: torch.Tensor | None = None, guidance: float = 0.0) -> torch.Tensor:
        """ε_θ(x_t, t), (B, D). An ``"x_prev"`` network's output f_θ is turned into the noise
        estimate that makes μ_θ = f_θ: ε̂ = (x_t − √α_t f_θ) √(1 − ᾱ_t)/β_t.

        A conditional model (``classes`` > 0) takes labels ``y`` (B,) (None: the null label ∅, the
        unconditional model) and, with ``guidance`` w ≠ 0, returns classifier-free guidance's
        ε̃ = (1 + w) ε_θ(x_t, t, y) − w ε_θ(x_t, t, ∅) (Ho & Salimans 2022), both in one batch."""
        t = self._times(t, len(xt), xt)
        y = self._labels(y, len(xt), xt)
        checks.finite_number("guidance", guidance)
        if guidance != 0 and y is not None and (y != self.config.classes).any():
            null = torch.full_like(y, self.config.classes)
            both = self._eps(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([y, null]))
            cond, uncond = both.chunk(2)
            return (1 + guidance) * cond - guidance * uncond
        return self._eps(xt, t, y)

    def _eps(self, xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self._net(xt, t.float() / self.T, y)
        if self.config.objective == "eps":
            return out
        beta, alpha, ab = (self.schedule.at(k, t, xt) for k in ("beta", "alpha", "alpha_bar"))
        return (xt - torch.sqrt(alpha) * out) * torch.sqrt(1 - ab) / beta

    def mean(self, xt: torch.Tensor, t, y: torch.Tensor | None = None) -> torch.Tensor:
        """μ_θ(x_t, t), the mean of p_θ(x_{t−1} | x_t) (of a conditional model: given ``y``, None: ∅)."""
        return mean_from_eps(xt, self._times(t, len(xt), xt), self.eps(xt, t, y), self.schedule)

    def loss(self, x0: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean over the batch and the D coordinates, with t ~ U{1..T} per example:
        ``"eps"``: ‖ε_θ(x_t, t) − ε‖²;  ``"x_prev"``: ‖f_θ(x_t, t) − x_{t−1}‖², with x_{t−1} ~ q(x_{t−1} | x_0)
        and x_t one forward step from it (the lecture's algorithm, one random t per example).

        A conditional model takes the labels ``y`` (B,) and replaces each by the null label ∅ with
        probability ``label_dropout`` (label dropout: one network learns ε_θ(x, t, y) and ε_θ(x, t, ∅));
        ``y`` = None trains the unconditional branch only."""
        x0 = self._check(x0)
        y = self._labels(y, len(x0), x0)
        t = torch.randint(1, self.T + 1, (len(x0),), generator=generator).to(x0.device)  # (B,)
        if y is not None and self.config.label_dropout > 0:
            drop = (torch.rand(len(x0), generator=generator) < self.config.label_dropout).to(x0.device)
            y = torch.where(drop, torch.full_like(y, self.config.classes), y)
        if self.config.objective == "eps":
            eps = _noise(x0, generator)
            xt = q_sample(x0, t, self.schedule, eps)
            return (self._net(xt, t.float() / self.T, y) - eps).pow(2).mean()
        x_prev = q_sample(x0, t - 1, self.schedule, generator=generator)
        xt = q_step(x_prev, t, self.schedule, generator=generator)
        return (self._net(xt, t.float() / self.T, y) - x_prev).pow(2).mean()

    @torch.no_grad()
    def sample(self, n: int, *, y: torch.Tensor | None = None, steps: int | None = None, eta: float = 1.0,
               generator: torch.Generator | None = None, trajectory: bool = False, x_T: torch.Tensor | None = None,
               guidance: float = 0.0):
        """Draw x_T ~ N(0, I) and step back to x_0 along ``steps`` evenly spaced times (default T).
        η = 1: ancestral; η = 0: DDIM. Returns x_0 (n, D), and with ``trajectory`` also the list of
        (t, x_t) pairs visited, starting at (T, x_T). A conditional model samples given labels ``y`` (n,)
        (None: unconditional) with classifier-free ``guidance`` w (:meth:`eps`; 0: the conditional model)."""
        checks.positive_int("n", n)
        checks.non_negative("eta", eta)
        y = self._labels(y, n, next(self.parameters()))
        steps = self.T if steps is None else checks.positive_int("steps", steps)  # 0 is not "all T steps"
        if x_T is not None:
            checks.tensor("x_T", x_T, (n, self.config.dims), finite=True, floating=True)
        p = next(self.parameters())
        x = torch.randn(n, self.config.dims, generator=generator).to(p.device) if x_T is None else x_T
        path = timesteps(self.T, steps or self.T)
        visited = [(path[0], x.cpu())]
        for t, s in zip(path[:-1], path[1:]):
            noise = torch.randn(x.shape, generator=generator).to(p.device)
            x = reverse_step(x, t, s, self.eps(x, t, y, guidance), self.schedule, eta, noise, self.config.clip)
            if trajectory:
                visited.append((s, x.cpu()))
        return (x, visited) if trajectory else x

    @torch.no_grad()
    def sample_heun(self, n: int, steps: int, generator: torch.Generator | None = None,
                    x_T: torch.Tensor | None = None) -> torch.Tensor:
        """The DDIM ODE solved with Heun's second-order method (Karras et al. 2022) on ``steps`` evenly spaced
        intervals of t: 2·``steps`` network evaluations (the last one at t = 0, where ρ = 0 and x̂_0 = x).

        In y = x/√ᾱ_t and ρ = √((1 − ᾱ_t)/ᾱ_t) the DDIM ODE is dy/dρ = ε̂(x, t): an Euler step of it is the
        DDIM step, and Heun's step averages the slope at both ends of the interval. With ``clip`` the slope
        uses the noise estimate recomputed from the clipped x̂_0, as :func:`reverse_step` does."""
        checks.positive_int("n", n)
        path = timesteps(self.T, checks.positive_int("steps", steps))
        p = next(self.parameters())
        x = torch.randn(n, self.config.dims, generator=generator).to(p.device) if x_T is None else x_T
        ab = self.schedule.alpha_bar

        def slope(x, t):  # ε̂ consistent with the (clipped) x̂_0
            eps = self.eps(x, t)
            if self.config.clip is None or t == 0:
                return eps
            a = self.schedule.at("alpha_bar", t, x)
            x0 = predict_x0(x, t, eps, self.schedule).clamp(-self.config.clip, self.config.clip)
            return (x - torch.sqrt(a) * x0) / torch.sqrt(1 - a)

        for t, s in zip(path[:-1], path[1:]):
            a_t, a_s = ab[t].item(), ab[s].item()
            rho_t, rho_s = math.sqrt((1 - a_t) / a_t), math.sqrt((1 - a_s) / a_s)
            y = x / math.sqrt(a_t)
            d1 = slope(x, t)
            d2 = slope(math.sqrt(a_s) * (y + (rho_s - rho_t) * d1), s)  # the slope where the Euler step lands
            x = math.sqrt(a_s) * (y + (rho_s - rho_t) * (d1 + d2) / 2)
        return x

    def _eps_and_divergence(self, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """ε̂(x, t) at a real time t (B, D) and its exact divergence Σ_i ∂ε̂_i/∂x_i (B,): the network runs once
        on D copies of each row, and one backward pass of Σ_i ε̂_i(copy i) gives every diagonal entry."""
        B, D = x.shape
        rows = torch.arange(B * D, device=x.device)
        copies = x.detach().repeat_interleave(D, 0).requires_grad_(True)  # (B·D, D)
        with torch.enable_grad():
            out = self.net(copies, torch.full((B * D,), t / self.T, device=x.device, dtype=x.dtype))  # (B·D, D)
            grad, = torch.autograd.grad(out[rows, rows % D].sum(), copies)
        return out.detach().reshape(B, D, D)[:, 0], grad[rows, rows % D].reshape(B, D).sum(1)

    def ode_log_density(self, x: torch.Tensor, t_start: int = 1, steps: int = 50) -> torch.Tensor:
        """log p(x) in nats (B,) of the model's marginal at time ``t_start`` under the probability-flow ODE
        (Song et al. 2021), by the instantaneous change of variables with the exact trace (cheap for
        small D). In y = x/√ᾱ and ρ = √((1 − ᾱ)/ᾱ) the ODE is dy/dρ = ε̂(x, t) (DDIM's, :meth:`sample_heun`);
        ``steps`` Heun steps on a log-spaced grid of ρ carry x from ``t_start`` to T, where N(0, I) is the
        density, and log p_start(y) = log p_T(y_T) + ∫ √ᾱ ∇_x·ε̂ dρ. Between integer times, log SNR is
        interpolated linearly (:func:`alpha_bar_at`). Needs a noise-predicting (``"eps"``) network."""
        if self.config.objective != "eps":
            raise ValueError(f"ode_log_density needs objective 'eps', got {self.config.objective!r}")
        checks.positive_int("steps", steps)
        if not (isinstance(t_start, int) and 1 <= t_start < self.T):
            raise ValueError(f"t_start must be an integer in 1..T-1 = {self.T - 1}, got {t_start!r}")
        checks.images("x", x, dims=self.config.dims)
        rho = lambda t: math.sqrt((1 - alpha_bar_at(self.schedule, t)) / alpha_bar_at(self.schedule, t))
        grid = torch.logspace(math.log10(rho(t_start)), math.log10(rho(self.T)), steps + 1, dtype=torch.float64).tolist()
        time_of = _rho_to_time(self.schedule)
        a0 = alpha_bar_at(self.schedule, t_start)
        y, log_det = x / math.sqrt(a0), torch.zeros(len(x), dtype=x.dtype, device=x.device)

        def slope(y, r):  # dy/dρ and its trace in y
            t = time_of(r)
            a = alpha_bar_at(self.schedule, t)
            eps, div = self._eps_and_divergence(math.sqrt(a) * y, t)
            return eps, math.sqrt(a) * div

        for r0, r1 in zip(grid[:-1], grid[1:]):
            f0, d0 = slope(y, r0)
            f1, d1 = slope(y + (r1 - r0) * f0, r1)
            y, log_det = y + (r1 - r0) * (f0 + f1) / 2, log_det + (r1 - r0) * (d0 + d1) / 2
        aT = alpha_bar_at(self.schedule, float(self.T))
        xT = math.sqrt(aT) * y
        log_prior = -0.5 * (xT**2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi)
        # densities of y: p_y = p_x · ᾱ^{D/2}; back to x at the start: p_x = p_y · ᾱ_start^{−D/2}
        return log_prior + 0.5 * x.shape[1] * (math.log(aT) - math.log(a0)) + log_det

    @torch.no_grad()
    def ode_bound(self, x: torch.Tensor, levels: int, steps: int = 50,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """An upper bound on −log P(x) of integer images (B, D) through the probability-flow ODE, on the
        scale of :meth:`bound`: with x_1 ~ q(x_1 | x_0) as a Gaussian dequantiser,

            −log P(x_0) ≤ E[−log p_ODE(x_1)] − H[q(x_1 | x_0)] + E[−log P_θ(x_0 | x_1)],

        the ODE density at t = 1 (:meth:`ode_log_density`), the entropy D/2 log(2πe(1 − ᾱ_1)), and the
        same discretised Gaussian decoder as :meth:`bound`'s L_0. One draw of x_1 per image.
        Returns per-image ``ode``, ``entropy``, ``decoder`` and ``total`` (B,)."""
        x0 = self._unit(x, levels)
        x1 = q_sample(x0, 1, self.schedule, generator=generator)
        ode = -self.ode_log_density(x1, 1, steps)
        entropy = torch.full_like(ode, 0.5 * x0.shape[1] * math.log(2 * math.pi * math.e * (1 - self.schedule.alpha_bar[1].item())))
        decoder = -discretized_gaussian_log_prob(x0, self.mean(x1, 1), math.sqrt(self.schedule.beta[1].item()), levels).sum(1)
        return {"ode": ode, "entropy": entropy, "decoder": decoder, "total": ode - entropy + decoder}

    def _unit(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        checks.images("x", x, dims=self.config.dims)
        checks.support("x", x, "categorical", levels)
        return to_unit_range(x, levels).to(next(self.parameters()).device)

    @torch.no_grad()
    def kl_terms(self, x: torch.Tensor, levels: int, t, generator: torch.Generator | None = None) -> torch.Tensor:
        """L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t)) in nats for each image of ``x`` (B, D)
        (integer levels, as in :meth:`bound`) at each time of ``t`` (K,) ints in 2..T, one draw of x_t per
        (image, time): a (B, K) tensor. With σ_t² = β̃_t it is ‖μ̃_t − μ_θ‖²/(2β̃_t) summed over pixels."""
        x0 = self._unit(x, levels)
        t = torch.as_tensor(t).reshape(-1).long()
        if len(t) == 0 or t.min() < 2 or t.max() > self.T:
            raise ValueError(f"t must be non-empty with entries in 2..T = {self.T}, got {checks.short(t.tolist())}")
        return self._kl(x0, t, generator)

    @torch.no_grad()
    def bound(self, x: torch.Tensor, levels: int, t_samples: int | None = None,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The variational bound −log P(x) ≤ L_T + Σ_{t=2}^T L_{t−1} + L_0 in nats per image, for
        integer images ``x`` (B, D) with values 0..levels−1, scaled to [−1, 1] by :func:`to_unit_range`:

        * L_T = KL(q(x_T | x_0) ‖ N(0, I)), in closed form;
        * L_{t−1} (:meth:`kl_terms`) with σ_t² = β̃_t, one x_t per term: every t = 2..T (``t_samples=None``),
          or a *stratified* estimate: 2..T cut into at most ``t_samples`` strata with log-spaced edges
          (:func:`log_strata`: the small t, where the mass of the sum usually lies, get strata of one
          step), one uniform draw of t per stratum and image, weighted by the stratum's size (unbiased);
        * L_0 = −log P_θ(x_0 | x_1): a discretised Gaussian N(μ_θ(x_1, 1), β_1) integrated over each
          pixel's bin of width 2/(levels − 1) (the end bins extend to ±∞), as in Ho et al. (2020).

        μ_θ is the network's mean as it is: unlike :meth:`sample`, the bound does not clip x̂_0.
        Returns per-image tensors (B,) ``prior``, ``diffusion``, ``decoder`` and their sum ``total``."""
        checks.at_least("levels", levels, 2)  # one level has no bin width
        x0 = self._unit(x, levels)
        if t_samples is not None:
            checks.positive_int("t_samples", t_samples)
        prior = self.prior_term(x0)
        diffusion = self.diffusion_term(x0, t_samples, generator)
        decoder = self.decoder_term(x0, levels, generator)
        return {"prior": prior, "diffusion": diffusion, "decoder": decoder, "total": prior + diffusion + decoder}

    # the bound's three terms, on images x0 (B, D) already scaled to [−1, 1]; each returns (B,) nats

    def prior_term(self, x0: torch.Tensor) -> torch.Tensor:
        """L_T = KL(q(x_T | x_0) ‖ N(0, I)) in closed form."""
        ab_T = self.schedule.alpha_bar[-1].item()
        return gaussian_kl(math.sqrt(ab_T) * x0, torch.full_like(x0, 1 - ab_T),
                           torch.zeros_like(x0), torch.ones_like(x0)).sum(1)

    def diffusion_term(self, x0: torch.Tensor, t_samples: int | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """Σ_{t=2}^T L_{t−1}: every t with one x_t each (``t_samples`` None), or the stratified estimate over
        :func:`log_strata` (one uniform t per stratum and image, weighted by the stratum's size)."""
        if t_samples is None:
            return self._kl(x0, torch.arange(2, self.T + 1), generator).sum(1)
        edges = log_strata(self.T, t_samples)
        diffusion = torch.zeros(len(x0), dtype=x0.dtype, device=x0.device)
        for lo, hi in zip(edges[:-1], edges[1:]):
            t = torch.randint(lo, hi, (len(x0),), generator=generator).to(x0.device)
            diffusion += (hi - lo) * self._kl_at(x0, t, generator)
        return diffusion

    def decoder_term(self, x0: torch.Tensor, levels: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """L_0 = −log P_θ(x_0 | x_1): N(μ_θ(x_1, 1), β_1) integrated over each pixel's bin, one draw of x_1."""
        x1 = q_sample(x0, 1, self.schedule, generator=generator)
        sigma_1 = math.sqrt(self.schedule.beta[1].item())
        return -discretized_gaussian_log_prob(x0, self.mean(x1, 1), sigma_1, levels).sum(1)

    def _kl_at(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """L_{t−1} per image (B,) at per-image times ``t`` (B,), one draw of x_t each."""
        xt = q_sample(x0, t, self.schedule, generator=generator)
        mu_q, var_q = q_posterior(x0, xt, t, self.schedule)
        return gaussian_kl(mu_q, var_q.expand_as(x0), self.mean(xt, t), var_q.expand_as(x0)).sum(1)

    def _kl(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """L_{t−1} (B, K) at each time of ``t`` (K,) for every image."""
        out = torch.zeros(len(x0), len(t), dtype=x0.dtype, device=x0.device)
        for k, tk in enumerate(t.tolist()):
            out[:, k] = self._kl_at(x0, torch.full((len(x0),), tk, device=x0.device), generator)
        return out


def alpha_bar_at(schedule: NoiseSchedule, t: float) -> float:
    """ᾱ at a real time t in [1, T]: log SNR interpolated linearly between the neighbouring integer times."""
    T = schedule.T
    if not 1 <= t <= T:
        raise ValueError(f"t must lie in [1, T = {T}], got {t!r}")
    lo = min(int(math.floor(t)), T - 1) if T > 1 else 1
    w = t - lo
    lam = lambda k: math.log(schedule.alpha_bar[k].item() / (1 - schedule.alpha_bar[k].item()))
    value = lam(lo) if T == 1 else (1 - w) * lam(lo) + w * lam(lo + 1)
    return 1 / (1 + math.exp(-value))


def _rho_to_time(schedule: NoiseSchedule):
    """The inverse of t -> ρ(t) = √((1 − ᾱ)/ᾱ) = exp(−λ(t)/2) for :func:`alpha_bar_at`'s interpolation."""
    ab = schedule.alpha_bar[1:]
    lam = torch.log(ab / (1 - ab))  # (T,), decreasing in t

    def time_of(r: float) -> float:
        target = -2 * math.log(r)
        k = int(torch.searchsorted(-lam, torch.tensor(-target, dtype=lam.dtype)).clamp(1, len(lam) - 1))
        lo, hi = lam[k - 1].item(), lam[k].item()  # times k and k + 1, lo >= target >= hi
        w = 0.0 if lo == hi else (lo - target) / (lo - hi)
        return min(max(k + min(max(w, 0.0), 1.0), 1.0), float(schedule.T))
    return time_of


def log_strata(T: int, k: int) -> list[int]:
    """Edges 2 = e_0 < e_1 < … < e_m = T + 1 (m ≤ k) cutting the times 2..T into strata [e_j, e_{j+1})
    whose edges are rounded log-spaced points: strata of one step at small t, long ones at large t."""
    checks.positive_int("T", T)
    checks.positive_int("k", k)
    if T < 2:
        raise ValueError(f"the bound's sum needs T >= 2, got {T}")
    points = torch.logspace(math.log10(2), math.log10(T + 1), k + 1, dtype=torch.float64).round().long().tolist()
    return sorted(set([2, *points, T + 1]))


def gaussian_kl(mu_q: torch.Tensor, var_q: torch.Tensor, mu_p: torch.Tensor, var_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, var_q) ‖ N(mu_p, var_p)) per coordinate: ½[log(var_p/var_q) + (var_q + (mu_q − mu_p)²)/var_p − 1]."""
    return 0.5 * (torch.log(var_p / var_q) + (var_q + (mu_q - mu_p) ** 2) / var_p - 1)


def discretized_gaussian_log_prob(y: torch.Tensor, mu: torch.Tensor, sigma: float, levels: int) -> torch.Tensor:
    """log P(bin of y) under N(mu, σ²), per coordinate: the mass of [y − δ/2, y + δ/2], δ = 2/(levels − 1),
    with the bins at y = −1 and y = +1 extended to −∞ and +∞ so that the levels' masses sum to 1.
    Computed with log Φ in the tail where the bin lies (stable when the mass is tiny)."""
    half = 1 / (levels - 1)
    lo = torch.where(y <= -1 + 1e-6, torch.full_like(y, -math.inf), (y - half - mu) / sigma)
    hi = torch.where(y >= 1 - 1e-6, torch.full_like(y, math.inf), (y + half - mu) / sigma)
    # P = Φ(hi) − Φ(lo) = Φ(−lo) − Φ(−hi); use the form whose terms are small (the far tail)
    upper = lo > 0
    a, b = torch.where(upper, -hi, lo), torch.where(upper, -lo, hi)  # P = Φ(b) − Φ(a), b > a
    log_b, log_a = torch.special.log_ndtr(b), torch.special.log_ndtr(a)
    return log_b + torch.log1p(-torch.exp(log_a - log_b).clamp(max=1 - 1e-12))
