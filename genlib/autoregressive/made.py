"""MADE (Germain et al. 2015): a masked MLP that outputs every conditional of the chain rule in one pass."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks
from genlib.autoregressive.common import categorical_inverse_cdf

# ----------------------------------------------------------------------------- MADE


ORDERS = ("natural", "random")


class MaskedLinear(nn.Linear):
    """A linear layer whose weight (out, in) is multiplied by a fixed 0/1 ``mask`` of the same shape."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", torch.ones(n_out, n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_degrees(order: torch.Tensor, hidden: tuple[int, ...],
                 generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """MADE's degrees (Germain et al. 2015): the inputs get m_0(d) = their position in ``order``
    (1..D; ``order[k]`` is the coordinate generated k-th), each hidden unit k of layer l an integer
    m_l(k) in [min m_{l-1}, D − 1], drawn uniformly (``generator``) or, without one, spread evenly.
    A unit of degree m may see only inputs of degree ≤ m, so it depends on x_{order[0..m-1]} at most."""
    D = len(order)
    degrees = [torch.empty(D, dtype=torch.long)]
    degrees[0][order] = torch.arange(1, D + 1)  # coordinate order[k] is the (k+1)-th
    for width in hidden:
        low = int(degrees[-1].min()) if D > 1 else 1
        high = max(D - 1, low)
        if generator is None:
            m = low + torch.arange(width) * (high - low + 1) // width
        else:
            m = torch.randint(low, high + 1, (width,), generator=generator)
        degrees.append(m)
    return degrees


def made_masks(degrees: list[torch.Tensor]) -> list[torch.Tensor]:
    """The masks of MADE's layers from its degrees: hidden layers connect k' -> k when
    m_l(k) ≥ m_{l-1}(k'); the output for coordinate d sees hidden unit k only when m_0(d) > m_L(k)
    (strictly: output d must not see x_d). Shapes (out, in), the last one (D, width of the last layer)."""
    masks = [(m_out[:, None] >= m_in[None, :]).float() for m_in, m_out in zip(degrees[:-1], degrees[1:])]
    masks.append((degrees[0][:, None] > degrees[-1][None, :]).float())
    return masks


class MADE(nn.Module):
    """Masked Autoencoder for Distribution Estimation: an MLP from x (B, D) to ``n_params``
    numbers per coordinate, (B, n_params, D), where the outputs of coordinate d depend only on
    the coordinates before d in ``order`` — every conditional of the chain rule in one pass.

    ``order`` (D,) lists the coordinates in generation order (default 0, 1, ..., D − 1);
    :meth:`set_order` draws new masks (order-agnostic training resamples the order and the
    connectivity every step). With ``zero_init`` the last layer starts at zero (flows start as the
    identity). Direct connections x -> output (the paper's option) are not used."""

    def __init__(self, dims: int, n_params: int, hidden: tuple[int, ...] = (256,),
                 order: torch.Tensor | None = None, zero_init: bool = False):
        super().__init__()
        self.dims, self.n_params = checks.positive_int("dims", dims), checks.positive_int("n_params", n_params)
        hidden = tuple(checks.positive_int("hidden", h) for h in hidden)
        if not hidden:
            raise ValueError("MADE needs at least one hidden layer, got hidden=()")
        widths = (dims, *hidden)
        self.hidden_layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = MaskedLinear(hidden[-1], dims * n_params)
        if zero_init:
            nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)
        self.register_buffer("order", torch.arange(dims))
        self.set_order(torch.arange(dims) if order is None else order)

    def set_order(self, order: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Use generation ``order`` (a permutation of 0..D−1) and masks from :func:`made_degrees`."""
        order = torch.as_tensor(order, dtype=torch.long)
        if order.shape != (self.dims,) or not torch.equal(order.sort().values, torch.arange(self.dims)):
            raise ValueError(f"order must be a permutation of 0..{self.dims - 1}, got {checks.short(order.tolist())}")
        hidden = tuple(layer.out_features for layer in self.hidden_layers)
        masks = made_masks(made_degrees(order, hidden, generator))
        for layer, mask in zip(self.hidden_layers, masks[:-1]):
            layer.mask.copy_(mask)
        self.out.mask.copy_(masks[-1].repeat(self.n_params, 1))  # row p * D + d: parameter p of coordinate d
        self.order.copy_(order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, n_params, D): the parameters of p(x_d | x before d in the order), for every d."""
        h = x
        for layer in self.hidden_layers:
            h = F.relu(layer(h))
        return self.out(h).view(len(x), self.n_params, self.dims)


@dataclass
class MADEConfig:
    """A categorical MADE for integer images: D pixels, V levels, MLP widths, generation order."""

    dims: int = 64          # D
    levels: int = 17        # V
    hidden: tuple[int, ...] = (512,)
    order: str = "natural"  # "natural" (raster) | "random" (one random order, drawn from seed)
    seed: int = 0

    def __post_init__(self):
        checks.positive_int("dims", self.dims)
        checks.positive_int("levels", self.levels)
        if self.levels < 2:
            raise ValueError(f"levels must be at least 2, got {self.levels}")
        checks.choice("order", self.order, ORDERS)
        self.hidden = tuple(checks.positive_int("hidden", h) for h in self.hidden)


class CategoricalMADE(nn.Module):
    """p(x) = Π_d Cat(x_d; softmax(MADE(x / (V − 1))_d)): an exact likelihood in one pass, like
    PixelCNN, from a plain masked MLP (no convolutions, so no notion of neighbourhood); sampling
    takes D passes, one per coordinate in the order."""

    def __init__(self, config: MADEConfig | None = None):
        super().__init__()
        self.config = config or MADEConfig()
        c = self.config
        order = torch.arange(c.dims) if c.order == "natural" else \
            torch.randperm(c.dims, generator=torch.Generator().manual_seed(c.seed))
        self.made = MADE(c.dims, c.levels, c.hidden, order)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) integers -> (B, V, D) logits of every conditional."""
        return self.made(x.float() / (self.config.levels - 1))

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x) = Σ_d log p(x_d | x_{<d}) in nats, one pass. (B, D) -> (B,)."""
        if y is not None:
            raise ValueError("CategoricalMADE is unconditional; got labels y")
        checks.images("x", x, dims=self.config.dims)
        checks.support("x", x, "categorical", levels=self.config.levels)
        return -F.cross_entropy(self.logits(x), x.long(), reduction="none").sum(1)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return -self.log_prob(x, y).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """D passes, coordinate order[k] drawn in pass k. (n, D) integers."""
        checks.positive_int("n", n)
        device = self.made.order.device
        x = torch.zeros(n, self.config.dims, dtype=torch.long, device=device)
        for d in self.made.order.tolist():
            probs = torch.softmax(self.logits(x)[:, :, d].double(), 1)  # (n, V)
            u = torch.rand(n, generator=generator, dtype=torch.float64,
                           device=None if generator is None else generator.device).to(device)
            x[:, d] = categorical_inverse_cdf(probs, u)
        return x.cpu()
