r"""Colour PixelCNN (van den Oord et al. 2016, section 3.4): red, then green, then blue.

A colour image has three values per pixel; the chain rule reads them in raster order and, within a
pixel, in the order R, G, B:

    p(x) = Π_i p(x_{i,R} | x_{<i}) p(x_{i,G} | x_{<i}, x_{i,R}) p(x_{i,B} | x_{<i}, x_{i,R}, x_{i,G}).

Every feature map of the network belongs to one colour group (the first, second or last third of
the channels). At earlier positions a masked kernel connects every group to every group; at the
centre, mask "A" (first layer) lets group g see only the input groups before it (G sees R; B sees R
and G; R sees nothing of its own pixel), and mask "B" (later layers, the 1x1 output layers too) lets
group g see the groups up to and including itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks
from genlib.autoregressive.common import categorical_inverse_cdf
from genlib.autoregressive.pixelcnn import MaskedConv2d, mask_a

COLOURS = 3  # R, G, B


def colour_groups(n: int) -> torch.Tensor:
    """The colour group (0 = R, 1 = G, 2 = B) of each of ``n`` channels: contiguous thirds. The
    one-hot input and the logits, laid out (colour, level), fall into their own colour's group."""
    return torch.arange(n) * COLOURS // n


def colour_mask(kind: str, k: int, c_in: int, c_out: int) -> torch.Tensor:
    """(c_out, c_in, k, k) mask: every channel pair at the positions before the centre (mask A's
    spatial part); at the centre, output group g sees input groups < g (``kind="A"``) or ≤ g ("B")."""
    checks.choice("kind", kind, ("A", "B"))
    g_in, g_out = colour_groups(c_in), colour_groups(c_out)
    m = mask_a(k).expand(c_out, c_in, k, k).clone()
    allowed = g_out[:, None] > g_in[None, :] if kind == "A" else g_out[:, None] >= g_in[None, :]
    m[:, :, k // 2, k // 2] = allowed.float()
    return m


@dataclass(frozen=True)
class ColourConfig:
    """A colour PixelCNN over (3, H, W) images with ``levels`` values per channel."""

    shape: tuple[int, int] = (8, 8)
    levels: int = 4
    channels: int = 48  # a multiple of 3: one third per colour
    n_layers: int = 4   # residual mask-B layers after the mask-A layer
    kernel: int = 3
    head: int = 96      # a multiple of 3

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(checks.positive_int("shape", s) for s in self.shape))
        if checks.positive_int("levels", self.levels) < 2:
            raise ValueError(f"levels must be at least 2, got {self.levels}")
        for name in ("channels", "head"):
            if checks.positive_int(name, getattr(self, name)) % COLOURS:
                raise ValueError(f"{name} must be a multiple of 3 (one group per colour), got {getattr(self, name)}")
        checks.positive_int("n_layers", self.n_layers)
        if checks.positive_int("kernel", self.kernel) < 3 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd integer >= 3, got {self.kernel}")

    @property
    def dims(self) -> int:
        return COLOURS * self.shape[0] * self.shape[1]


class ColourPixelCNN(nn.Module):
    """p_θ(x) over colour images x (B, 3, H, W) of integers in [0, V): a plain PixelCNN (mask A, then
    residual mask-B layers, then two masked 1x1 layers) whose masks also order the colours R, G, B."""

    def __init__(self, config: ColourConfig | None = None):
        super().__init__()
        self.config = c = config or ColourConfig()
        V3, C, k = COLOURS * c.levels, c.channels, c.kernel
        self.first = MaskedConv2d(V3, C, colour_mask("A", k, V3, C))
        self.layers = nn.ModuleList(MaskedConv2d(C, C, colour_mask("B", k, C, C)) for _ in range(c.n_layers))
        self.hidden = MaskedConv2d(C, c.head, colour_mask("B", 1, C, c.head))
        self.out = MaskedConv2d(c.head, V3, colour_mask("B", 1, c.head, V3))

    def one_hot(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) integers -> (B, 3V, H, W), channel c·V + k = [x_c = k]."""
        B, _, H, W = x.shape
        h = F.one_hot(x.long(), self.config.levels).permute(0, 1, 4, 2, 3)  # (B, 3, V, H, W)
        return h.reshape(B, -1, H, W).to(self.out.weight.dtype)

    def net(self, h: torch.Tensor) -> torch.Tensor:
        """(B, 3V, H, W) input -> (B, 3, V, H, W) logits of p(x_{i,c} | x_{<i}, x_{i,<c})."""
        h = self.first(h)
        for conv in self.layers:
            h = h + conv(F.relu(h))
        out = self.out(F.relu(self.hidden(F.relu(h))))
        B, _, H, W = out.shape
        return out.view(B, COLOURS, self.config.levels, H, W)

    def _images(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        c = self.config
        checks.support(name, x, "categorical", c.levels)
        if x.dim() == 2:
            checks.images(name, x, dims=c.dims)
        elif tuple(x.shape[1:]) != (COLOURS, *c.shape):
            raise ValueError(f"{name} must have shape (B, {c.dims}) or (B, 3, {c.shape[0]}, {c.shape[1]}), "
                             f"got {tuple(x.shape)}")
        return x.reshape(len(x), COLOURS, *c.shape).long()

    def log_prob_channels(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_i log p(x_{i,c} | ...) per colour c: (B, 3) nats; their sum is log p(x)."""
        x = self._images(x)
        logits = self.net(self.one_hot(x))  # (B, 3, V, H, W)
        return -F.cross_entropy(logits.transpose(1, 2), x, reduction="none").sum((2, 3))

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p_θ(x) in nats: x (B, 3·H·W) or (B, 3, H, W) -> (B,)."""
        checks.no_labels(y, "ColourPixelCNN")
        return self.log_prob_channels(x).sum(1)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
        return -self.log_prob(x, y).mean()

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """3·H·W network passes: pixel by pixel in raster order, R then G then B within a pixel.
        Returns (n, 3·H·W) integers (the R plane, then G, then B); the train mode is restored."""
        c = self.config
        H, W = c.shape
        device = self.out.weight.device
        x = torch.zeros(checks.positive_int("n", n), COLOURS, H, W, dtype=torch.long, device=device)
        u = torch.rand(n, H, W, COLOURS, generator=generator, dtype=torch.float64,
                       device=None if generator is None else generator.device).to(device)
        was_training = self.training
        self.eval()
        try:
            for i in range(H):
                for j in range(W):
                    for col in range(COLOURS):
                        probs = torch.softmax(self.net(self.one_hot(x))[:, col, :, i, j].double(), 1)  # (n, V)
                        x[:, col, i, j] = categorical_inverse_cdf(probs, u[:, i, j, col])
        finally:
            self.train(was_training)
        return x.flatten(1).cpu()


def colour_dependency(model: ColourPixelCNN, i: int, j: int, colour: int, n: int = 4,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """|∂ (r · logits of x_{ij,colour}) / ∂ input| summed over ``n`` random images and the levels, for a
    random direction r: (3, H, W), one map per input colour. Nonzero exactly where that output depends
    on the input (a leak test: the same pixel's own and later colours must stay zero)."""
    c = model.config
    x = torch.randint(0, c.levels, (n, COLOURS, *c.shape), generator=generator)
    r = torch.randn(n, c.levels, generator=generator)
    h = model.one_hot(x).requires_grad_(True)
    with torch.enable_grad():
        out = model.net(h)[:, colour, :, i, j]  # (n, V)
        (grad,) = torch.autograd.grad((out * r.to(out)).sum(), h)
    return grad.abs().view(n, COLOURS, c.levels, *c.shape).sum((0, 2))  # (3, H, W)


def colour_grid(x: torch.Tensor, levels: int, shape: tuple[int, int] = (8, 8), nrow: int = 8, pad: int = 1):
    """Tile colour images x (N, 3·H·W) (R, G, B planes of integers in [0, levels)) into one RGB array
    (rows, cols, 3) in [0, 1] on a black background, ``nrow`` images per row, for ``plt.imshow``."""
    import numpy as np

    H, W = shape
    images = (x.reshape(-1, COLOURS, H, W).permute(0, 2, 3, 1).double() / (levels - 1)).numpy()  # (N, H, W, 3)
    rows = -(-len(images) // nrow)
    canvas = np.full((rows * (H + pad) + pad, nrow * (W + pad) + pad, 3), 0.35)
    for k, image in enumerate(images):
        r, c = divmod(k, nrow)
        canvas[pad + r * (H + pad): pad + r * (H + pad) + H, pad + c * (W + pad): pad + c * (W + pad) + W] = image
    return canvas
