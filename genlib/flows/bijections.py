"""The bijections of :mod:`genlib.flows`: couplings, masks, MAF/IAF layers, ActNorm, permutations, the logit.

Every bijection has ``forward(x) -> (z, log_det)`` with log_det = log |det ∂z/∂x| per row (B,) and
``inverse(z) -> (x, log_det)`` with log_det = log |det ∂x/∂z|."""
from __future__ import annotations

import math

import torch
from torch import nn

from genlib import checks, nets
from genlib._core import LOG_2PI

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
