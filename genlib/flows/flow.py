"""The flow of :mod:`genlib.flows`: a chain of bijections under a standard normal base, its config,
its layers for digits, its loss and its test NLL."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genlib import checks, data
from genlib.family import NLL
from genlib.flows.bijections import (COUPLINGS, MASKS, ActNorm, AffineCoupling, Bijection, Logit, make_mask,
                                     std_normal_log_prob)
from genlib.flows.dequantize import VariationalDequantizer
from genlib.metrics import discrete_log_prob

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
                 dequantizer: VariationalDequantizer | None = None):
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
                 generator: torch.Generator | None = None) -> NLL:
    """Test NLL in nats per example as a :class:`genlib.family.NLL` (``nats, kind = ...`` unpacks it):
    −mean log p(x), kind "exact", for continuous data; for integer images the negative
    dequantisation bound, kind "bound", each image's bound averaged over ``draws`` draws of u
    (of u ~ q(u | x) for a flow with a learned dequantiser)."""
    checks.positive_int("draws", draws)
    model.eval()
    total = 0.0
    repeats = draws if model.levels else 1
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        total += float(torch.stack([model.log_prob(xb, generator) for _ in range(repeats)]).mean(0).sum())
    if not model.levels:
        return NLL(-total / len(x), "exact", "NLL: -mean log p(x), the flow's exact density")
    L, noise = model.levels, "u ~ q(u | x)" if model.dequantizer is not None else "uniform u"
    return NLL(-total / len(x), "bound",
               f"NLL: the dequantisation bound -E[log p((x+u)/{L})] + D log {L}"
               f"{' + E[log q(u | x)]' if model.dequantizer is not None else ''} of the flow's exact density, "
               f"{repeats} draws of {noise} per image (flows.evaluate_nll)")


@dataclass(frozen=True)
class TrainConfig:
    """How the book profile trains a digits flow with :func:`genlib.train.fit`."""

    epochs: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    patience: int = 20
