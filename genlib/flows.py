r"""Normalizing flows: exact likelihoods through invertible maps (Chapter 7).

A flow is an invertible, differentiable map f from data x to a latent z of the *same* dimension,
with a simple base density p_Z = N(0, I). The change of variables gives the density of x exactly,

    log p_X(x) = log p_Z(f(x)) + log |det ∂f(x)/∂x|,

and sampling is one pass through the inverse: z ~ N(0, I), x = f⁻¹(z). With f = f_M ∘ … ∘ f_1 the
log-determinant is a sum over layers, Σ_m log |det ∂h_m/∂h_{m-1}| (h_0 = x, h_M = z), so every layer
needs a cheap log-determinant and a cheap inverse. Coupling layers (Dinh et al. 2015, 2017) keep the
coordinates picked by a binary mask m and transform the others given them,

    z = m ⊙ x + (1 − m) ⊙ (x ⊙ exp(s(m ⊙ x)) + t(m ⊙ x)),    log |det| = Σ_d (1 − m_d) s_d,

whose Jacobian is triangular (after reordering) whatever the networks s and t are; the inverse is
x = m ⊙ z + (1 − m) ⊙ (z − t(m ⊙ z)) ⊙ exp(−s(m ⊙ z)). NICE's additive coupling is the case s = 0
(volume preserving). Masks alternate between layers so that every coordinate gets transformed.

Discrete images (V = ``levels`` grey levels) are dequantised, y = (x + u) / V with u ~ U[0, 1)^D,
and squeezed through a logit (a bijection with its own log-determinant); the density of y bounds
the discrete log-likelihood, log P(x) ≥ E_u[log p(y)] − D log V (:func:`genlib.metrics.discrete_log_prob`).

Beyond couplings: :class:`MaskedAutoregressive` (MAF, and IAF with ``inverse=True``; a MADE conditioner,
one pass for the density and D for sampling, or the reverse), Glow's pieces (:func:`squeeze_permutation`,
:class:`InvertibleConv1x1` in LU form, :class:`ConvCoupling`, :class:`Partial` for multi-scale
factoring-out, :func:`glow_layers`) and variational dequantisation (:class:`VariationalDequantizer`:
log P(x) ≥ E_q[log p((x + u)/V) − D log V − log q(u | x)]).

Every bijection here has ``forward(x) -> (z, log_det)`` with log_det = log |det ∂z/∂x| per row
(shape (B,)) and ``inverse(z) -> (x, log_det)`` with log_det = log |det ∂x/∂z| (the negative of the
forward one at the matching point). :class:`Flow` chains them under a standard normal base and has
the verbs of every genlib family: ``log_prob``, ``sample``, ``loss``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks, data, nets
from genlib._core import LOG_2PI
from genlib.family import NLL, Family
from genlib.metrics import discrete_log_prob

COUPLINGS = ("affine", "additive")
MASKS = ("checkerboard", "half", "random")


def std_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension: −½ Σ_d (z_d² + log 2π). (B, D) -> (B,)."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


# ----------------------------------------------------------------------------- bijections


class Bijection(nn.Module):
    """An invertible map with a tractable log-determinant; subclasses define both directions."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x -> z, log|det ∂z/∂x|
        raise NotImplementedError

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # z -> x, log|det ∂x/∂z|
        raise NotImplementedError


class MonotoneWarp(Bijection):
    """A 1-D strictly increasing map, applied to every coordinate with its own parameters:

        f(x) = a x + b + Σ_j γ_j tanh((x − κ_j) / λ_j),   a = e^{log_a} > 0,  γ_j = softplus(·) ≥ 0,  λ_j > 0,

    so f'(x) = a + Σ_j (γ_j / λ_j) sech²((x − κ_j) / λ_j) > 0 and log |det| = Σ_d log f'(x_d).
    There is no closed-form inverse: since |f(x) − a x − b| ≤ Σ_j γ_j = Γ, the solution of f(x) = z
    lies in [(z − b − Γ)/a, (z − b + Γ)/a], and :meth:`inverse` bisects that interval (then takes
    one Newton step, which leaves the root in place and gives autograd the derivative 1 / f'(x)).
    """

    def __init__(self, dims: int = 1, n_bumps: int = 4, span: float = 3.0):
        super().__init__()
        checks.positive_int("dims", dims), checks.positive_int("n_bumps", n_bumps)
        self.log_a = nn.Parameter(torch.zeros(dims))
        self.b = nn.Parameter(torch.zeros(dims))
        self.raw_gamma = nn.Parameter(torch.full((dims, n_bumps), -2.0))  # γ_j = softplus(raw), small at first
        self.kappa = nn.Parameter(torch.linspace(-span, span, n_bumps).repeat(dims, 1))  # (dims, J) centres
        self.log_lambda = nn.Parameter(torch.zeros(dims, n_bumps))  # (dims, J) log widths

    def _map_and_slope(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f(x) and f'(x), both (B, D)."""
        gamma, lam = nn.functional.softplus(self.raw_gamma), self.log_lambda.exp()  # (D, J)
        u = (x.unsqueeze(-1) - self.kappa) / lam  # (B, D, J)
        f = self.log_a.exp() * x + self.b + (gamma * torch.tanh(u)).sum(-1)
        slope = self.log_a.exp() + (gamma / lam / torch.cosh(u).pow(2)).sum(-1)
        return f, slope

    def forward(self, x):
        z, slope = self._map_and_slope(x)
        return z, slope.log().sum(-1)  # log |det| = Σ_d log f'(x_d)

    def inverse(self, z, iterations: int = 60):
        with torch.no_grad():
            a, Gamma = self.log_a.exp(), nn.functional.softplus(self.raw_gamma).sum(-1)
            lo, hi = (z - self.b - Gamma) / a, (z - self.b + Gamma) / a  # f(lo) <= z <= f(hi)
            for _ in range(iterations):  # bisection: the bracket halves every step
                mid = (lo + hi) / 2
                below = self._map_and_slope(mid)[0] < z
                lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
            x0 = (lo + hi) / 2
        # one Newton step from the root: the value stays x0, and autograd sees ∂x/∂z = 1 / f'(x0)
        f, slope = self._map_and_slope(x0)
        return x0 - (f - z) / slope, -slope.log().sum(-1)


class AffineCoupling(Bijection):
    """RealNVP's affine coupling (module docstring). ``mask`` (D,) is 1 on the coordinates that pass
    through unchanged and condition the rest. The log-scale is bounded, s = s_max tanh(ŝ / s_max),
    so one layer can stretch a coordinate at most e^{s_max} times; the conditioner's last layer
    starts at zero, so the layer starts as the identity. ``additive=True`` gives NICE (s = 0)."""

    def __init__(self, mask: torch.Tensor, hidden: int = 64, layers: int = 2, dropout: float = 0.0,
                 s_max: float = 2.0, additive: bool = False):
        super().__init__()
        self.register_buffer("mask", mask.float().clone())  # (D,)
        self.additive, self.s_max = additive, float(s_max)
        dims = len(mask)
        self.net = conditioner(dims, dims * (1 if additive else 2), hidden, layers, dropout)

    def shift_log_scale(self, x_kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t(m ⊙ x) and s(m ⊙ x), both zero on the kept coordinates. (B, D) -> (B, D), (B, D)."""
        out = self.net(x_kept)
        if self.additive:
            return out * (1 - self.mask), torch.zeros_like(x_kept)
        t, s_raw = out.chunk(2, dim=-1)
        s = self.s_max * torch.tanh(s_raw / self.s_max)
        return t * (1 - self.mask), s * (1 - self.mask)

    def forward(self, x):
        t, s = self.shift_log_scale(self.mask * x)
        z = self.mask * x + (1 - self.mask) * (x * s.exp() + t)  # t, s vanish where mask = 1
        return z, s.sum(-1)

    def inverse(self, z):
        t, s = self.shift_log_scale(self.mask * z)  # m ⊙ z = m ⊙ x: the same t and s
        x = self.mask * z + (1 - self.mask) * (z - t) * (-s).exp()
        return x, -s.sum(-1)


class MaskedAutoregressive(Bijection):
    """An affine autoregressive layer with a MADE conditioner (:class:`genlib.autoregressive.MADE`):
    MAF (Papamakarios et al. 2017) or, with ``inverse=True``, IAF (Kingma et al. 2016).

    MAF, density direction x -> z, one pass:   z_d = (x_d − t_d(x_{<d})) · exp(−s_d(x_{<d})),
    sampling z -> x, D passes:               x_d = z_d · exp(s_d(x_{<d})) + t_d(x_{<d}).
    IAF conditions on z instead: sampling is one pass, x_d = z_d · exp(s_d(z_{<d})) + t_d(z_{<d}),
    and the density needs D passes, z_d = (x_d − t_d(z_{<d})) · exp(−s_d(z_{<d})).
    Either way ∂z/∂x is triangular in the order, log |det ∂z/∂x| = −Σ_d s_d. The log-scale is bounded,
    s = s_max tanh(ŝ / s_max), and the MADE's last layer starts at zero (the layer starts as the
    identity). A coupling layer is the special case where t_d, s_d see only a fixed half ``A`` of
    the coordinates and are zero on it: then every pass is one pass.
    """

    def __init__(self, dims: int, hidden: tuple[int, ...] = (128,), order: torch.Tensor | None = None,
                 inverse: bool = False, s_max: float = 2.0):
        super().__init__()
        from genlib.autoregressive import MADE

        self.made = MADE(dims, 2, hidden, order, zero_init=True)
        self.is_iaf, self.s_max = bool(inverse), checks.positive("s_max", s_max)

    def shift_log_scale(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t(h) and s(h), both (B, D); coordinate d depends only on h before d in the order."""
        t, s_raw = self.made(h).unbind(1)  # (B, 2, D) -> 2 × (B, D)
        return t, self.s_max * torch.tanh(s_raw / self.s_max)

    def _one_pass(self, h: torch.Tensor, given: torch.Tensor, to_z: bool) -> tuple[torch.Tensor, torch.Tensor]:
        t, s = self.shift_log_scale(given)
        out = (h - t) * (-s).exp() if to_z else h * s.exp() + t
        return out, s

    def _sequential(self, h: torch.Tensor, to_z: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Solve for the conditioned-on variable one coordinate at a time (D passes of the MADE)."""
        out = torch.zeros_like(h)
        for d in self.made.order.tolist():
            t, s = self.shift_log_scale(out)  # coordinates before d are final already
            value = (h[:, d] - t[:, d]) * (-s[:, d]).exp() if to_z else h[:, d] * s[:, d].exp() + t[:, d]
            out = out.clone()
            out[:, d] = value
        _, s = self.shift_log_scale(out)
        return out, s

    def forward(self, x):  # x -> z, log |det ∂z/∂x| = −Σ s
        z, s = self._sequential(x, to_z=True) if self.is_iaf else self._one_pass(x, x, to_z=True)
        return z, -s.sum(-1)

    def inverse(self, z):  # z -> x, log |det ∂x/∂z| = +Σ s
        x, s = self._one_pass(z, z, to_z=False) if self.is_iaf else self._sequential(z, to_z=False)
        return x, s.sum(-1)


def conditioner(n_in: int, n_out: int, hidden: int, layers: int, dropout: float = 0.0) -> nn.Sequential:
    """The s, t network of a coupling: (Linear -> GELU -> dropout) × layers -> Linear, last layer zero."""
    return nets.mlp(n_in, n_out, hidden, layers, dropout, zero_last=True)


class ActNorm(Bijection):
    """Per-coordinate affine normalisation z = (x − loc) ⊙ exp(−log_scale) (Kingma & Dhariwal 2018),
    log |det| = −Σ_d log_scale_d. The first batch seen in training mode sets loc and log_scale to its
    mean and log standard deviation (data-dependent initialisation); after that they are learned."""

    def __init__(self, dims: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dims))
        self.log_scale = nn.Parameter(torch.zeros(dims))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        self.loc.copy_(x.mean(0))
        self.log_scale.copy_(torch.log(x.std(0, unbiased=False) + 1e-3))
        self.initialized.fill_(True)

    def forward(self, x):
        if self.training and not bool(self.initialized) and len(x) > 1:
            self.initialize(x)
        z = (x - self.loc) * (-self.log_scale).exp()
        return z, (-self.log_scale.sum()).expand(len(x))

    def inverse(self, z):
        return z * self.log_scale.exp() + self.loc, self.log_scale.sum().expand(len(z))


class Permute(Bijection):
    """A fixed permutation of the coordinates: volume preserving, log |det| = 0 (Glow's squeeze)."""

    def __init__(self, permutation: torch.Tensor):
        super().__init__()
        self.register_buffer("perm", permutation.long().clone())
        self.register_buffer("inv", torch.argsort(self.perm))

    def forward(self, x):
        return x[:, self.perm], x.new_zeros(len(x))

    def inverse(self, z):
        return z[:, self.inv], z.new_zeros(len(z))


class Logit(Bijection):
    """Pixels in [0, 1] -> the real line: ỹ = logit(ȳ) with ȳ = α + (1 − 2α) y, so that the flow works on
    an unbounded space and the squeeze α keeps ỹ finite at y = 0. Per coordinate,
    log |dỹ/dy| = log(1 − 2α) − log ȳ − log(1 − ȳ) (RealNVP's preprocessing)."""

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        self.alpha = checks.in_unit_interval("alpha", alpha)

    def forward(self, y):
        y_bar = self.alpha + (1 - 2 * self.alpha) * y  # squeezed into [α, 1 − α]
        y_tilde = torch.log(y_bar) - torch.log1p(-y_bar)  # logit(ȳ)
        log_det = (math.log(1 - 2 * self.alpha) - torch.log(y_bar) - torch.log1p(-y_bar)).sum(-1)
        return y_tilde, log_det

    def inverse(self, y_tilde):
        y_bar = torch.sigmoid(y_tilde)
        y = (y_bar - self.alpha) / (1 - 2 * self.alpha)
        log_det = (torch.nn.functional.logsigmoid(y_tilde) + torch.nn.functional.logsigmoid(-y_tilde)
                   - math.log(1 - 2 * self.alpha)).sum(-1)
        return y, log_det


# ----------------------------------------------------------------------------- Glow's pieces
# Flat vectors (B, D) hold images of shape (C, H, W) in channel-major order, D = C·H·W.


def squeeze_permutation(shape: tuple[int, int, int]) -> torch.Tensor:
    """The coordinate permutation of RealNVP/Glow's squeeze, (C, H, W) -> (4C, H/2, W/2): every
    2x2 block of a channel becomes 4 channels of one pixel. Use it as ``Permute(squeeze_permutation(s))``
    (volume preserving, log |det| = 0). Output channel 4c + 2a + b holds input pixel (2i + a, 2j + b) of c."""
    C, H, W = shape
    if H % 2 or W % 2:
        raise ValueError(f"squeeze needs an even height and width, got shape {shape}")
    index = torch.arange(C * H * W).view(C, H // 2, 2, W // 2, 2)  # (c, i, a, j, b)
    return index.permute(0, 2, 4, 1, 3).reshape(-1)  # (c, a, b, i, j) -> channel 4c + 2a + b


class InvertibleConv1x1(Bijection):
    """Glow's invertible 1x1 convolution: the C channels of every pixel are multiplied by one C x C
    matrix W, so log |det| = H·W·log |det W|. W is stored in its LU form (Kingma & Dhariwal 2018),
    W = P L (U + diag(sign · e^{log_s})), P a fixed permutation, L unit lower-triangular, U strictly
    upper-triangular: log |det W| = Σ log_s costs O(C) instead of O(C³). It starts as a random rotation."""

    def __init__(self, shape: tuple[int, int, int], generator: torch.Generator | None = None):
        super().__init__()
        C, H, W = (checks.positive_int("shape", s) for s in shape)
        self.shape = (C, H, W)
        q, _ = torch.linalg.qr(torch.randn(C, C, generator=generator, dtype=torch.float64))
        P, L, U = torch.linalg.lu(q)
        s = torch.diagonal(U)
        self.register_buffer("P", P.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.L = nn.Parameter(L.float())
        self.U = nn.Parameter(torch.triu(U, 1).float())
        self.log_s = nn.Parameter(s.abs().log().float())

    def weight(self) -> torch.Tensor:
        """W = P L (U + diag(sign · e^{log_s})), (C, C)."""
        C = self.shape[0]
        eye = torch.eye(C, device=self.L.device, dtype=self.L.dtype)
        L = torch.tril(self.L, -1) + eye
        U = torch.triu(self.U, 1) + torch.diag(self.sign_s * self.log_s.exp())
        return self.P @ L @ U

    def forward(self, x):
        C, H, W = self.shape
        z = torch.einsum("ij,bjn->bin", self.weight(), x.view(len(x), C, H * W))  # (B, C, HW)
        return z.reshape(len(x), -1), (H * W * self.log_s.sum()).expand(len(x))

    def inverse(self, z):
        C, H, W = self.shape
        x = torch.einsum("ij,bjn->bin", torch.linalg.inv(self.weight()), z.view(len(z), C, H * W))
        return x.reshape(len(z), -1), (-H * W * self.log_s.sum()).expand(len(z))


class ConvCoupling(Bijection):
    """An affine coupling on images (C, H, W) whose s(·), t(·) come from a small CNN (3x3 conv, ReLU,
    3x3 conv, last layer zero) of the first ⌈C/2⌉ channels; the other channels are transformed."""

    def __init__(self, shape: tuple[int, int, int], hidden: int = 64, s_max: float = 2.0):
        super().__init__()
        C, H, W = (checks.positive_int("shape", s) for s in shape)
        if C < 2:
            raise ValueError(f"a channel coupling needs at least 2 channels (squeeze first), got shape {shape}")
        self.shape, self.kept, self.s_max = (C, H, W), (C + 1) // 2, checks.positive("s_max", s_max)
        last = nn.Conv2d(hidden, 2 * (C - self.kept), 3, padding=1)
        nn.init.zeros_(last.weight), nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Conv2d(self.kept, hidden, 3, padding=1), nn.ReLU(), last)

    def _split(self, h):
        C, H, W = self.shape
        h = h.view(len(h), C, H, W)
        return h[:, : self.kept], h[:, self.kept:]

    def _shift_log_scale(self, h_kept):
        t, s_raw = self.net(h_kept).chunk(2, dim=1)
        return t, self.s_max * torch.tanh(s_raw / self.s_max)

    def forward(self, x):
        x_a, x_b = self._split(x)
        t, s = self._shift_log_scale(x_a)
        return torch.cat([x_a, x_b * s.exp() + t], 1).flatten(1), s.flatten(1).sum(-1)

    def inverse(self, z):
        z_a, z_b = self._split(z)
        t, s = self._shift_log_scale(z_a)
        return torch.cat([z_a, (z_b - t) * (-s).exp()], 1).flatten(1), -s.flatten(1).sum(-1)


class Partial(Bijection):
    """Apply ``inner`` to the first ``size`` coordinates and pass the rest through: multi-scale flows
    factor the rest out (they go to the base N(0, I) as they are, RealNVP's split)."""

    def __init__(self, inner: Bijection, size: int):
        super().__init__()
        self.inner, self.size = inner, checks.positive_int("size", size)

    def forward(self, x):
        h, log_det = self.inner(x[:, : self.size])
        return torch.cat([h, x[:, self.size:]], 1), log_det

    def inverse(self, z):
        h, log_det = self.inner.inverse(z[:, : self.size])
        return torch.cat([h, z[:, self.size:]], 1), log_det


def glow_layers(shape: tuple[int, int, int] = (1, 8, 8), steps: int = 4, scales: int = 2, hidden: int = 64,
                alpha: float = 0.05, seed: int = 0) -> list[Bijection]:
    """A small multi-scale Glow for images: Logit, then per scale a squeeze and ``steps`` ×
    [ActNorm, invertible 1x1 convolution, convolutional coupling]; after every scale but the last,
    half of the channels are factored out (the later scales act on the other half only)."""
    checks.positive_int("steps", steps), checks.positive_int("scales", scales)
    generator = torch.Generator().manual_seed(seed)
    C, H, W = shape
    layers: list[Bijection] = [Logit(alpha)]
    total = active = C * H * W  # the first `active` coordinates are still transformed

    def on_active(layer: Bijection) -> Bijection:
        return Partial(layer, active) if active < total else layer

    for scale in range(scales):
        layers.append(on_active(Permute(squeeze_permutation((C, H, W)))))
        C, H, W = 4 * C, H // 2, W // 2
        for _ in range(steps):
            layers.append(on_active(ActNorm(C * H * W)))
            layers.append(on_active(InvertibleConv1x1((C, H, W), generator)))
            layers.append(on_active(ConvCoupling((C, H, W), hidden)))
        if scale < scales - 1:
            C //= 2
            active = C * H * W
    return layers


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


# ----------------------------------------------------------------------------- masks


def make_mask(kind: str, dims: int, index: int, shape: tuple[int, int] | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """The ``index``-th layer's mask (D,) of 0/1: "checkerboard" (pixels with (row + col) even, then
    odd, alternating; needs ``shape``), "half" (first half of the coordinates, then the second half)
    or "random" (a random half, drawn from ``generator``). Half the coordinates are kept."""
    checks.choice("mask", kind, MASKS)
    if kind == "checkerboard":
        if shape is None or shape[0] * shape[1] != dims:
            raise ValueError(f"a checkerboard mask needs an image shape with {dims} pixels, got {shape!r}")
        rows, cols = torch.meshgrid(torch.arange(shape[0]), torch.arange(shape[1]), indexing="ij")
        mask = ((rows + cols) % 2 == index % 2).flatten()
    elif kind == "half":
        mask = torch.arange(dims) < (dims + 1) // 2
        mask = mask if index % 2 == 0 else ~mask
    else:
        mask = torch.zeros(dims, dtype=torch.bool)
        mask[torch.randperm(dims, generator=generator)[: (dims + 1) // 2]] = True
    return mask.float()


# ----------------------------------------------------------------------------- the flow


@dataclass(frozen=True)
class FlowConfig:
    """A coupling flow's shape. Defaults: the book profile's digits model. ``levels = 0`` means
    continuous data (the 2-D toys); ``levels > 0`` means integer images that are dequantised and
    passed through a logit before the couplings."""

    dims: int = 64                         # D, the data's (and the latent's) dimension
    shape: tuple[int, int] | None = (8, 8)  # how the D pixels fold into an image (checkerboard masks)
    levels: int = 17                       # grey levels of the data (0: continuous data)
    n_layers: int = 8                      # coupling layers (M)
    coupling: str = "affine"               # "affine" (RealNVP) | "additive" (NICE)
    mask: str = "checkerboard"             # "checkerboard" | "half" | "random"
    alternate: bool = True                 # flip the mask from one layer to the next
    hidden: int = 256                      # width of each conditioner MLP
    net_layers: int = 2                    # hidden layers of each conditioner MLP
    dropout: float = 0.2                   # dropout in the conditioners (1,000 training images overfit)
    actnorm: bool = True                   # an ActNorm before every coupling
    s_max: float = 2.0                     # bound on each log-scale, |s| <= s_max
    alpha: float = 0.05                    # logit squeeze for images (Logit)
    seed: int = 0                          # draws the "random" masks

    def __post_init__(self):
        checks.positive_int("dims", self.dims)
        checks.non_negative_int("levels", self.levels)
        checks.positive_int("n_layers", self.n_layers)
        checks.choice("coupling", self.coupling, COUPLINGS)
        checks.choice("mask", self.mask, MASKS)
        checks.positive_int("hidden", self.hidden)
        checks.non_negative_int("net_layers", self.net_layers)
        checks.in_unit_interval("dropout", self.dropout)
        checks.positive("s_max", self.s_max)
        if not 0 < checks.finite_number("alpha", self.alpha) < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha!r}")
        if self.levels == 1:
            raise ValueError("levels must be 0 (continuous data) or at least 2, got 1")
        if self.mask == "checkerboard" and (self.shape is None or self.shape[0] * self.shape[1] != self.dims):
            raise ValueError(f"mask 'checkerboard' needs shape with {self.dims} pixels, got {self.shape!r}; "
                             f"use mask='half' for non-image data")
        if self.dims < 2:
            raise ValueError(f"a coupling flow needs dims >= 2 (one half conditions the other), got {self.dims}")

    @classmethod
    def toy(cls, **overrides) -> "FlowConfig":
        """The 2-D toys' flow: continuous data, alternating halves (x1 then x2), small networks."""
        base = dict(dims=2, shape=None, levels=0, n_layers=8, mask="half", hidden=64, dropout=0.0,
                    actnorm=False)
        return cls(**{**base, **overrides})


class Flow(nn.Module):
    """A chain of bijections x = h_0 -> h_1 -> … -> h_M = z under a standard normal base.

    For images (``config.levels > 0``) the first bijection is :class:`Logit` and ``log_prob`` takes
    integer images: it dequantises them and returns one draw of the bound on log P(x). ``layers``
    can also be given directly (tests, the 1-D example); then the data are continuous.
    """

    def __init__(self, config: FlowConfig | None = None, layers: list[Bijection] | None = None,
                 dequantizer: "VariationalDequantizer | None" = None):
        super().__init__()
        self.config = config
        self.dequantizer = dequantizer  # None: uniform noise u ~ U[0, 1)^D
        if layers is None:
            if config is None:
                raise ValueError("Flow needs a FlowConfig or a list of layers")
            layers = build_layers(config)
        self.layers = nn.ModuleList(layers)
        self.dims = config.dims if config is not None else None

    @property
    def levels(self) -> int:
        return self.config.levels if self.config is not None else 0

    # -- the two directions
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = f(x) and log |det ∂f/∂x| = Σ_m log |det ∂h_m/∂h_{m-1}|. (B, D) -> (B, D), (B,)."""
        log_det = x.new_zeros(len(x))
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x = f⁻¹(z), layers in reverse order, and log |det ∂f⁻¹/∂z|. (B, D) -> (B, D), (B,)."""
        log_det = z.new_zeros(len(z))
        for layer in reversed(self.layers):
            z, ld = layer.inverse(z)
            log_det = log_det + ld
        return z, log_det

    def trajectory(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[h_0 = x, h_1, …, h_M = z]: the data pushed through the flow one layer at a time."""
        out = [x]
        for layer in self.layers:
            out.append(layer(out[-1])[0])
        return out

    def inverse_trajectory(self, z: torch.Tensor) -> list[torch.Tensor]:
        """[h_M = z, …, h_0 = x]: base samples pulled back into data space one layer at a time."""
        out = [z]
        for layer in reversed(self.layers):
            out.append(layer.inverse(out[-1])[0])
        return out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent z = f(·) of data: for integer images (``levels > 0``) of their pixel centres,
        y = (x + ½) / V, so that the code is deterministic; continuous data as they are. (B, D) -> (B, D)."""
        if self.dims is not None:
            checks.images("x", x, dims=self.dims)
        if not self.levels:
            return self(checks.support("x", x, "real"))[0]
        checks.support("x", x, "categorical", levels=self.levels)
        return self((x.float() + 0.5) / self.levels)[0]

    # -- densities
    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        """log p(y) = log N(f(y); 0, I) + log |det ∂f/∂y| for continuous y (B, D) -> (B,)."""
        z, log_det = self(y)
        return std_normal_log_prob(z) + log_det

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Continuous data: the exact log-density. Integer images (``levels > 0``): one unbiased
        draw of the dequantisation bound log p((x + u) / V) − D log V ≤ log P(x), V = levels, with
        u uniform, or with u ~ q(u | x) from ``dequantizer`` and − log q(u | x) added. (B,)."""
        if self.dims is not None:
            checks.images("x", x, dims=self.dims)
        if not self.levels:
            return self.log_density(checks.support("x", x, "real"))
        checks.support("x", x, "categorical", levels=self.levels)
        if self.dequantizer is not None:  # u ~ q(u | x): the bound gains the entropy term −log q(u | x)
            u, log_q = self.dequantizer(x, generator=generator)
            y = (x.float() + u) / self.levels
            return discrete_log_prob(self.log_density(y), x.shape[1], self.levels) - log_q
        y = data.dequantize(x, self.levels, generator)  # (x + u) / V in [0, 1)
        return discrete_log_prob(self.log_density(y), x.shape[1], self.levels)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean negative log-likelihood in nats per example (for images: the negative bound)."""
        checks.no_labels(y, "the flow")
        return -self.log_prob(x, generator).mean()

    # -- sampling
    @torch.no_grad()
    def sample(self, n: int, *, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0, continuous: bool = False) -> torch.Tensor:
        """One pass through the inverse: z ~ N(0, σ_z² I) with σ_z = ``temperature``, x = f⁻¹(z). (n, D).
        For images, the integer levels floor(V · y) (or the continuous y in [0, 1) with ``continuous=True``)."""
        checks.positive_int("n", n), checks.positive("temperature", temperature), checks.no_labels(y, "the flow")
        param = next(self.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dims = self.dims if self.dims is not None else self._infer_dims()
        z = torch.randn(n, dims, generator=generator, device=None if generator is None else generator.device)
        x = self.inverse(temperature * z.to(device))[0]
        if not self.levels:
            return x
        y = x.clamp(0, 1 - 1e-6)
        return y if continuous else torch.floor(y * self.levels).long()

    def _infer_dims(self) -> int:
        for layer in self.layers:
            for name in ("mask", "loc", "log_a"):
                if hasattr(layer, name):
                    return len(getattr(layer, name))
        raise ValueError("cannot tell the flow's dimension; pass a FlowConfig")


def build_layers(config: FlowConfig) -> list[Bijection]:
    """[Logit (images only)] + M × [ActNorm (optional), coupling], masks alternating."""
    generator = torch.Generator().manual_seed(config.seed)
    layers: list[Bijection] = [Logit(config.alpha)] if config.levels else []
    for k in range(config.n_layers):
        if config.actnorm:
            layers.append(ActNorm(config.dims))
        mask = make_mask(config.mask, config.dims, k if config.alternate else 0, config.shape, generator)
        layers.append(AffineCoupling(mask, config.hidden, config.net_layers, config.dropout, config.s_max,
                                     additive=config.coupling == "additive"))
    return layers


def batch_loss(model: Flow, batch) -> torch.Tensor:
    """``model.loss`` on a batch tuple ``(x,)``: the loss that :func:`genlib.train.fit` takes."""
    return model.loss(batch[0])


@torch.no_grad()
def evaluate_nll(model: Flow, x: torch.Tensor, draws: int = 10, batch_size: int = 512,
                 generator: torch.Generator | None = None) -> float:
    """Test NLL in nats per example: −mean log p(x) for continuous data; for images the negative
    dequantisation bound, each image's bound averaged over ``draws`` draws of u."""
    checks.positive_int("draws", draws)
    model.eval()
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        repeats = draws if model.levels else 1
        total += float(torch.stack([model.log_prob(xb, generator) for _ in range(repeats)]).mean(0).sum())
    return -total / len(x)


@dataclass(frozen=True)
class TrainConfig:
    """How the book profile trains a digits flow with :func:`genlib.train.fit`."""

    epochs: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    patience: int = 20


# ----------------------------------------------------------------------------- the family's declaration


def _build(params) -> Flow:
    """Chapter 7: the coupling flow on dequantised digits."""
    name = params.dataset
    h, w = data.IMAGE_SHAPES[data.check_dataset(name, ("digits", "mnist5k"))]
    return Flow(FlowConfig(dims=h * w, shape=(h, w), levels=data.LEVELS[name], n_layers=params.n_layers,
                           hidden=params.hidden, coupling=params.coupling))


def _train(model: Flow, params, generator: torch.Generator, options: dict):
    from genlib.train import fit

    settings = TrainConfig(epochs=params.epochs)
    train, val = (data.images(params.dataset, s).x for s in ("train", "val"))
    return fit(model, batch_loss, train, val, epochs=settings.epochs, batch_size=settings.batch_size,
               lr=settings.lr, weight_decay=settings.weight_decay, patience=settings.patience,
               generator=generator, **options)


def _nll(model: Flow, x: torch.Tensor, generator: torch.Generator) -> NLL:
    L = model.levels
    return NLL(evaluate_nll(model, x, draws=10, generator=generator), "bound",
               f"NLL: the dequantisation bound -E_u[log p((x+u)/{L})] + {model.config.dims} log {L} of the flow's "
               "exact density of dequantised images, 10 draws of u per test image (flows.evaluate_nll, as the chapter)")


_COUPLING_NAMES = {"affine": "RealNVP, affine", "additive": "NICE, additive"}

FAMILY = Family(
    name="flow", chapter="07_flows", model=Flow, build=_build, train=_train, nll=_nll, density="bound",
    samples=lambda model, n, generator: model.sample(n, generator=generator).float() / (model.levels - 1),
    features=lambda model, x: model.encode(x),
    smoke={"epochs": 1, "n_layers": 2, "hidden": 8},
    describe=lambda model, params: (f"Flow ({_COUPLING_NAMES[params.coupling]} couplings, M = {params.n_layers}, "
                                    f"hidden {params.hidden})"),
    remarks=lambda model, params, seed: [
        f"samples: one inverse pass, z ~ N(0, I), floored to the {model.levels} levels",
        f"probe features: z = f((x + 1/2)/{model.levels}), the forward map at the pixel centres (Flow.encode; "
        f"the chapter's latents of section 6), D = {model.config.dims} numbers"])
