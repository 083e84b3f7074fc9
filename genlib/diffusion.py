r"""Diffusion models and flow matching (Chapter 8).

Forward process (fixed, no parameters), for t = 1..T with a noise schedule 0 < β_t < 1:

    q(x_t | x_{t-1}) = N(√(1−β_t) x_{t-1}, β_t I),     i.e. x_t = √(1−β_t) x_{t-1} + √β_t ε_t,
    q(x_t | x_0)     = N(√ᾱ_t x_0, (1−ᾱ_t) I),         ᾱ_t = Π_{s≤t} (1−β_s),  ᾱ_0 = 1.

Reverse process (learned): x_T ~ N(0, I), x_{t-1} ~ p_θ(x_{t-1} | x_t) = N(μ_θ(x_t, t), σ_t² I).
Given x_0, the step back is Gaussian in closed form (the *posterior*)

    q(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I),   μ̃_t = √ᾱ_{t-1} β_t/(1−ᾱ_t) x_0 + √α_t (1−ᾱ_{t-1})/(1−ᾱ_t) x_t,
                                             β̃_t = (1−ᾱ_{t-1})/(1−ᾱ_t) β_t,   α_t = 1 − β_t,

and writing x_0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t turns it into μ̃_t = (x_t − β_t/√(1−ᾱ_t) ε)/√α_t. Two
training objectives (Ho et al. 2020 for the second):

* ``"x_prev"`` — the lecture's stripped-down algorithm: regress x_{t-1} on (x_t, t), ‖f_θ(x_t, t) − x_{t-1}‖²;
* ``"eps"`` — predict the noise, ‖ε_θ(x_t, t) − ε‖² with x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε,

both minimised by the posterior mean E[x_{t-1} | x_t]; the second is the first reparameterised, with
a lower-variance target. The noise predictor is also a score estimate (Tweedie's formula):
∇ log q(x_t) ≈ −ε_θ(x_t, t)/√(1−ᾱ_t).

Sampling (:meth:`Diffusion.sample`): ancestral (η = 1) or deterministic DDIM (η = 0, Song et al.
2021), on all T steps or on an evenly spaced subsequence. The variational bound in nats per image on
integer images (:meth:`Diffusion.bound`) is L_T + Σ_{t=2}^T L_{t-1} + L_0 with a discretised Gaussian
decoder for the last step. :class:`FlowMatching` (Lipman et al. 2023; Liu et al. 2023) regresses
the velocity of straight paths x_t = (1−t) x_0 + t ε and integrates the ODE back with Euler steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks, data
from genlib._core import randn
from genlib.family import NLL, Family

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


# ----------------------------------------------------------------------------- networks


class TimeEmbedding(nn.Module):
    """Time s in [0, 1] (B,) -> sinusoidal features of 1000 s at ``dim/2`` frequencies -> MLP -> (B, dim)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=s.device) / half)  # (dim/2,)
        angles = 1000 * s.float()[:, None] * freqs[None]  # (B, dim/2)
        return self.mlp(torch.cat([angles.sin(), angles.cos()], -1))  # (B, dim)


class MLPDenoiser(nn.Module):
    """x (B, D) and time s (B,) -> (B, D): ``layers`` hidden layers, time added to each one.

    With ``fourier`` = K > 0 the input is x together with sin and cos of 2^k·π/2·x, k < K (Fourier
    features, Tancik et al. 2020): they let a small MLP bend sharply around a thin 2-D manifold."""

    def __init__(self, dims: int, hidden: int = 128, layers: int = 3, emb_dim: int = 64, fourier: int = 0):
        super().__init__()
        self.embed = TimeEmbedding(emb_dim)
        self.register_buffer("freqs", 2.0 ** torch.arange(fourier) * math.pi / 2, persistent=False)
        sizes = [dims * (1 + 2 * fourier)] + [hidden] * layers
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.times = nn.ModuleList(nn.Linear(emb_dim, hidden) for _ in range(layers))
        self.out = nn.Linear(hidden, dims)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        e = self.embed(s)  # (B, emb)
        angles = (x[:, :, None] * self.freqs).flatten(1)  # (B, D K)
        h = torch.cat([x, angles.sin(), angles.cos()], 1)  # (B, D (1 + 2K))
        for linear, time in zip(self.linears, self.times):
            h = F.silu(linear(h) + time(e))  # (B, hidden)
        return self.out(h)


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, plus the time embedding, twice; a 1x1 conv on the skip path."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, c_out, H, W)
        h = h + self.time(e)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """A small U-Net on flat images: x (B, H·W), time s (B,) and, with ``classes``, labels y (B,) -> (B, H·W).

    Two resolutions down (H -> ⌈H/2⌉ -> ⌈H/4⌉: 8 -> 4 -> 2, 28 -> 14 -> 7) with ``base`` and
    2·``base`` channels, a middle block, and two up blocks that concatenate the skips."""

    def __init__(self, shape: tuple[int, int], base: int = 32, emb_dim: int = 64, freqs: tuple[float, ...] = (),
                 classes: int = 0):
        super().__init__()
        self.shape = tuple(shape)
        c1, c2 = base, 2 * base
        self.embed = TimeEmbedding(emb_dim)
        # with ``classes`` = C > 0: a learned embedding of the label y in 0..C−1, or of the null label C (∅),
        # added to the time embedding (classifier-free guidance trains both through label dropout)
        self.classes = classes
        self.label = nn.Embedding(classes + 1, emb_dim) if classes else None
        self.register_buffer("freqs", torch.tensor(freqs, dtype=torch.float32), persistent=False)
        self.inc = nn.Conv2d(1 + 2 * len(freqs), c1, 3, padding=1)
        self.down1, self.pool1 = ResBlock(c1, c1, emb_dim), nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.down2, self.pool2 = ResBlock(c1, c2, emb_dim), nn.Conv2d(c2, c2, 3, stride=2, padding=1)
        self.mid = ResBlock(c2, c2, emb_dim)
        self.up2 = ResBlock(2 * c2, c2, emb_dim)
        self.up1 = ResBlock(c2 + c1, c1, emb_dim)
        self.out = nn.Sequential(nn.GroupNorm(_groups(c1), c1), nn.SiLU(), nn.Conv2d(c1, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, s: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        e = self.embed(s)                                  # (B, emb)
        if self.label is not None:                         # y (B,) labels, the null label C, or None (all C)
            y = torch.full((len(x),), self.classes, device=x.device) if y is None else y
            e = e + self.label(y)
        x = x.reshape(-1, 1, *self.shape)                  # (B, 1, H, W)
        if len(self.freqs):  # per-pixel Fourier features sin/cos(ω x) (Kingma et al. 2021)
            angles = x * self.freqs.to(x.dtype)[None, :, None, None]  # (B, K, H, W)
            x = torch.cat([x, angles.sin(), angles.cos()], 1)        # (B, 1 + 2K, H, W)
        h = self.inc(x)                                    # (B, c1, H, W)
        skip1 = self.down1(h, e)                           # (B, c1, H, W)
        skip2 = self.down2(self.pool1(skip1), e)           # (B, c2, H/2, W/2)
        h = self.mid(self.pool2(skip2), e)                 # (B, c2, H/4, W/4)
        h = F.interpolate(h, size=skip2.shape[-2:], mode="nearest")
        h = self.up2(torch.cat([h, skip2], 1), e)          # (B, c2, H/2, W/2)
        h = F.interpolate(h, size=skip1.shape[-2:], mode="nearest")
        h = self.up1(torch.cat([h, skip1], 1), e)          # (B, c1, H, W)
        return self.out(h).flatten(1)                      # (B, H·W)


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


# ----------------------------------------------------------------------------- flow matching


@dataclass(frozen=True)
class FlowMatchingConfig:
    """Flow matching's network (it has no schedule, no T and no objective to choose). Defaults: digits."""

    dims: int = 64                             # D
    shape: tuple[int, int] | None = (8, 8)     # image shape for the U-Net (None: vectors)
    net: str = "unet"                          # "unet" | "mlp"
    width: int = 32                            # U-Net base channels or MLP hidden units
    layers: int = 3                            # hidden layers of the MLP
    fourier: int = 0                           # MLP: Fourier features of x at this many frequencies
    clip: float | None = 1.0                   # sampling: clip the end point to [−clip, clip] (None: no clipping)
    freqs: tuple[float, ...] = ()              # U-Net: per-pixel Fourier features sin/cos(ω x) at these ω

    def __post_init__(self):
        # the shared fields are checked by DiffusionConfig's rules (one place for them)
        DiffusionConfig(**{k: getattr(self, k) for k in _SHARED_FIELDS})

    @classmethod
    def for_dataset(cls, name: str, **overrides) -> "FlowMatchingConfig":
        """:meth:`DiffusionConfig.for_dataset`'s network for ``name`` (U-Net and clipping for images, an MLP
        with Fourier features for 2-D toys)."""
        return cls.from_diffusion(DiffusionConfig.for_dataset(name, **overrides))

    @classmethod
    def from_diffusion(cls, config: DiffusionConfig) -> "FlowMatchingConfig":
        """The network fields of a :class:`DiffusionConfig` (its schedule, T and objective dropped)."""
        return cls(**{k: getattr(config, k) for k in _SHARED_FIELDS})


_SHARED_FIELDS = ("dims", "shape", "net", "width", "layers", "fourier", "clip", "freqs")


class FlowMatching(nn.Module):
    """Flow matching with straight paths: x_t = (1 − t) x_0 + t ε, t ∈ [0, 1], whose velocity
    dx_t/dt = ε − x_0 a network v_θ(x_t, t) regresses; sampling integrates dx/dt = v_θ from t = 1
    (noise) to t = 0 (data) with Euler steps. Same networks as :class:`Diffusion`. A
    :class:`DiffusionConfig` is accepted too and converted (:meth:`FlowMatchingConfig.from_diffusion`)."""

    def __init__(self, config: FlowMatchingConfig):
        super().__init__()
        if isinstance(config, DiffusionConfig):
            config = FlowMatchingConfig.from_diffusion(config)
        if not isinstance(config, FlowMatchingConfig):
            raise TypeError(f"config must be a FlowMatchingConfig, got {type(config).__name__}")
        self.config = config
        self.net = make_net(config)

    def velocity(self, xt: torch.Tensor, t) -> torch.Tensor:
        return self.net(xt, torch.as_tensor(t, dtype=xt.dtype, device=xt.device).expand(len(xt)))

    def loss(self, x0: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean of ‖v_θ(x_t, t) − (ε − x_0)‖² with t ~ U(0, 1), ε ~ N(0, I)."""
        checks.tensor("x", x0, (None, self.config.dims), finite=True, floating=True)
        checks.no_labels(y, "flow matching")
        t = torch.rand(len(x0), 1, generator=generator).to(x0.device)  # (B, 1)
        eps = _noise(x0, generator)
        xt = (1 - t) * x0 + t * eps
        return (self.net(xt, t[:, 0]) - (eps - x0)).pow(2).mean()

    @torch.no_grad()
    def sample(self, n: int, *, y: torch.Tensor | None = None, steps: int = 100,
               generator: torch.Generator | None = None, trajectory: bool = False, x_T: torch.Tensor | None = None):
        """x_1 ~ N(0, I), then x_{t−h} = x_t − h v_θ(x_t, t) for ``steps`` steps of h = 1/steps."""
        checks.positive_int("n", n)
        checks.no_labels(y, "flow matching")
        checks.positive_int("steps", steps)
        if x_T is not None:
            checks.tensor("x_T", x_T, (n, self.config.dims), finite=True, floating=True)
        p = next(self.parameters())
        x = torch.randn(n, self.config.dims, generator=generator).to(p.device) if x_T is None else x_T
        visited = [(1.0, x.cpu())]
        for i in range(steps):
            t = 1 - i / steps
            x = x - self.velocity(x, t) / steps
            if trajectory:
                visited.append((1 - (i + 1) / steps, x.cpu()))
        if self.config.clip is not None:
            x = x.clamp(-self.config.clip, self.config.clip)
        return (x, visited) if trajectory else x


def batch_loss(model: nn.Module, batch) -> torch.Tensor:
    """``model.loss`` on a batch tuple ``(x,)`` or ``(x, y)`` (labels, for a conditional model): the loss
    that :func:`genlib.train.fit` takes."""
    return model.loss(batch[0], batch[1] if len(batch) > 1 else None)


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    """How Chapter 8 trains its image models: Adam at ``lr`` for ``epochs`` passes, then a cool-down of
    max(1, ⌊``cooldown`` · epochs⌋) more passes at ``lr`` · ``cooldown_lr``."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    cooldown: float = 0.25
    cooldown_lr: float = 0.1

    @property
    def cooldown_epochs(self) -> int:
        return max(1, int(self.epochs * self.cooldown))


def fit_with_cooldown(model: nn.Module, train, val=None, settings: TrainConfig = TrainConfig(),
                      generator: torch.Generator | None = None, **options):
    """Train with :func:`genlib.train.fit` in the two phases of ``settings``; ``options`` (device,
    progress, precision, compile) go to both. ``train`` is x or (x, y) (labels for a conditional model).
    If the first phase is interrupted (KeyboardInterrupt), the cool-down does not run. Returns one
    :class:`~genlib.train.History` of all epochs."""
    from genlib.train import History, fit

    first = fit(model, batch_loss, train, val, epochs=settings.epochs, batch_size=settings.batch_size,
                lr=settings.lr, generator=generator, **options)
    if first.interrupted:  # stopped by hand (a notebook's interrupt): no cool-down after a cut first phase
        second = History()
    else:
        second = fit(model, batch_loss, train, val, epochs=settings.cooldown_epochs, batch_size=settings.batch_size,
                     lr=settings.lr * settings.cooldown_lr, generator=generator, **options)
    joined = History(train=first.train + second.train, val=first.val + second.val,
                     seconds=first.seconds + second.seconds, interrupted=first.interrupted or second.interrupted)
    curve = joined.val or joined.train
    joined.best_epoch = min(range(len(curve)), key=curve.__getitem__) if curve else -1
    model.eval()
    return joined


# ----------------------------------------------------------------------------- the families' declarations


def _config(params) -> DiffusionConfig:
    """Flow matching's U-Net (and the chapter's first DDPM): the book's image config with ``params.schedule``."""
    data.check_dataset(params.dataset, ("digits", "mnist5k", "mnist"))
    return DiffusionConfig.for_dataset(params.dataset, T=params.T, schedule=params.schedule, width=params.width)


def _fixed_config(params) -> DiffusionConfig:
    """Chapter 8's fixed DDPM (section 8): the same U-Net on the lattice-matched ``snr`` schedule, whose
    smallest noise is σ_1 = ``bin_fraction`` of a grey level's bin."""
    data.check_dataset(params.dataset, ("digits", "mnist5k", "mnist"))
    return DiffusionConfig.for_dataset(params.dataset, T=params.T, schedule="snr", width=params.width,
                                       logsnr_max=lattice_logsnr_max(data.LEVELS[params.dataset], params.bin_fraction))


def _fit(model: nn.Module, params, epochs: int, generator: torch.Generator, options: dict):
    """Chapter 8's recipe for its image models: ``epochs`` passes, then a quarter as many at lr/10."""
    train = to_unit_range(data.images(params.dataset, "train").x, data.LEVELS[params.dataset])
    return fit_with_cooldown(model, train, None, TrainConfig(epochs=epochs), generator=generator, **options)


def _train(model: nn.Module, params, generator: torch.Generator, options: dict):
    """Flow matching: ``epochs`` passes (and the cool-down), as the chapter trains it."""
    return _fit(model, params, params.epochs, generator, options)


def _train_fixed(model: nn.Module, params, generator: torch.Generator, options: dict):
    """The fixed DDPM: ``fixed_epochs`` passes (and the cool-down), as the chapter trains it."""
    return _fit(model, params, params.fixed_epochs, generator, options)


_SMOKE = {"epochs": 1, "T": 10, "width": 4}
SAMPLE_STEPS = 100  # Euler steps of flow matching's sampler (FlowMatching.sample's default), and the DDPM's DDIM steps
BOUND_STRATA = 64   # the scoreboard's bound: strata of t (chapter 8's default bound_strata), over every test image
ANCESTRAL_IMAGES = 100  # the ancestral line's samples per seed: T U-Net passes each (minutes per seed at 447)


def _levels(model) -> int:
    return data.LEVELS["digits"] if model.config.shape == data.IMAGE_SHAPES["digits"] else 256  # else MNIST


def _nll(model: Diffusion, x: torch.Tensor, generator: torch.Generator) -> NLL:
    """Chapter 8's stratified estimate of the bound (:meth:`Diffusion.bound` with ``t_samples``) on every
    image of ``x``, in chunks of 150 images."""
    levels, T = _levels(model), model.T
    total = torch.cat([model.bound(x[i:i + 150], levels, t_samples=BOUND_STRATA, generator=generator)["total"]
                       for i in range(0, len(x), 150)])  # (images,) nats
    error = float(total.std()) / math.sqrt(len(total))
    strata = len(log_strata(T, BOUND_STRATA)) - 1
    return NLL(float(total.mean()), "bound",
               f"NLL: the variational bound L_T + sum of L_(t-1), t = 2..{T} + L_0 with the discretised Gaussian decoder "
               f"on the {levels} levels (Diffusion.bound), the sum by chapter 8's stratified estimator: {strata} "
               f"log-spaced strata of t, one t and one x_t per stratum and image, weighted by the stratum's size "
               f"(unbiased); over all {len(total)} test images; standard error over the images {error:.1f} nats")


def _describe_fixed(model: Diffusion, params) -> str:
    return (f"DDPM (U-Net width {params.width}, T = {params.T}, lattice-matched snr schedule; "
            f"DDIM, {SAMPLE_STEPS} steps)")


FAMILY = Family(
    name="diffusion", chapter="08_diffusion", model=Diffusion, train=_train_fixed, nll=_nll, density="bound",
    build=lambda params: Diffusion(_fixed_config(params)),
    inputs=lambda model, x, levels, generator: to_unit_range(x, levels), smoke={**_SMOKE, "fixed_epochs": 1},
    budget=("fixed_epochs",),
    # the scoreboard's protocol: DDIM at flow matching's budget of network evaluations (SAMPLE_STEPS); the
    # ancestral chain over all T steps is its second line (genlib.scoreboard.SECOND_LINES)
    samples=lambda model, n, generator: from_unit_range(model.sample(n, steps=min(SAMPLE_STEPS, model.T), eta=0.0,
                                                                     generator=generator)),
    describe=_describe_fixed,
    remarks=lambda model, params, seed: [
        f"chapter 8's fixed model (section 8): noise prediction on the lattice-matched snr schedule, sigma_1 = "
        f"{params.bin_fraction} of a grey level's bin, trained for fixed_epochs = {params.fixed_epochs} epochs and a "
        "quarter as many at lr/10",
        f"samples: DDIM (eta = 0) in {SAMPLE_STEPS} steps, {SAMPLE_STEPS} U-Net passes per image: the same number of "
        "network evaluations as flow matching's Euler steps; x_0 in [-1, 1] mapped to [0, 1]",
        "no log_prob (only the bound) and no latent features: no encoder (running DDIM backwards would give a "
        "deterministic x_T, not measured here)"])

FLOW_MATCHING = Family(
    name="flow_matching", chapter="08_diffusion", model=FlowMatching, train=_train,
    build=lambda params: FlowMatching(_config(params)),
    inputs=lambda model, x, levels, generator: to_unit_range(x, levels), smoke=_SMOKE, budget=("epochs",),
    samples=lambda model, n, generator: from_unit_range(model.sample(n, steps=SAMPLE_STEPS, generator=generator)),
    describe=lambda model, params: f"Flow matching (U-Net width {params.width}; Euler, {SAMPLE_STEPS} steps)",
    remarks=lambda model, params, seed: [
        "the chapter trains it on the digits with the DDPM's U-Net and recipe",
        f"samples: Euler integration of dx/dt = v(x, t) from t = 1 to 0 in {SAMPLE_STEPS} steps "
        "(FlowMatching.sample's default; the chapter's section 10 also tries 5-20); x_0 mapped to [0, 1]",
        "NLL: none. The chapter computes no likelihood; the ODE gives one by the instantaneous change of variables "
        "(log p(x_0) = log N(x_1) + integral of div v dt) with dequantisation, not computed here",
        "no latent features: no encoder (integrating the ODE forwards gives a deterministic z, not measured)"])
