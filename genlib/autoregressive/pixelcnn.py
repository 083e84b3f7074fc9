"""PixelCNN (Chapter 6): masked convolutions, the plain and gated models, their samplers, and the
receptive field measured by gradients."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks, metrics
from genlib.autoregressive.common import categorical_inverse_cdf
from genlib.autoregressive.logistic import logistic_mixture_log_probs

ARCHS = ("pixelcnn", "gated")
OUTPUTS = ("softmax", "logistic")


# ----------------------------------------------------------------------------- masks


def mask_a(k: int) -> torch.Tensor:
    """k x k mask "A" (first layer): 1 on the rows above the centre and left of it in its row;
    0 on the centre and everything after it in raster order. Shape (k, k)."""
    m = torch.zeros(k, k)
    m[: k // 2] = 1
    m[k // 2, : k // 2] = 1
    return m


def mask_b(k: int) -> torch.Tensor:
    """k x k mask "B" (later layers): mask A plus the centre, so a position sees its own features."""
    m = mask_a(k)
    m[k // 2, k // 2] = 1
    return m


def mask_vertical(k: int, first: bool) -> torch.Tensor:
    """k x k mask of the gated model's vertical stack: the rows strictly above the centre
    (``first``), or those and the centre row (later layers, whose inputs already look only up)."""
    m = torch.zeros(k, k)
    m[: k // 2 + (0 if first else 1)] = 1
    return m


def mask_horizontal(k: int, first: bool) -> torch.Tensor:
    """1 x k mask of the horizontal stack: the positions left of the centre (``first``), or those
    and the centre (later layers). Shape (1, k)."""
    m = torch.zeros(1, k)
    m[0, : k // 2 + (0 if first else 1)] = 1
    return m


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel is multiplied by a fixed 0/1 ``mask`` on every call, so masked
    weights never act (and get zero gradient). ``mask`` (kh, kw) acts on every pair of channels;
    (out, in, kh, kw) per pair (the colour masks of :func:`colour_mask`). Padding keeps the size."""

    def __init__(self, in_channels: int, out_channels: int, mask: torch.Tensor):
        kh, kw = mask.shape[-2:]
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2))
        self.register_buffer("mask", mask.clone() if mask.dim() == 4 else mask.clone()[None, None])

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.conv2d(h, self.weight * self.mask, self.bias, padding=self.padding)


# ----------------------------------------------------------------------------- the models


@dataclass(frozen=True)
class PixelCNNConfig:
    """A PixelCNN over images of ``shape`` with ``levels`` values per pixel (grey images: one
    channel). Defaults: the book profile on the 8x8 digits."""

    shape: tuple[int, int] = (8, 8)
    levels: int = 17  # V, the number of values a pixel can take
    arch: str = "gated"  # "pixelcnn" (masks A and B) or "gated" (vertical + horizontal stacks)
    channels: int = 64
    n_layers: int = 5  # masked layers after the input (the first is mask A / the first gated layer)
    kernel: int = 3  # kernel size of the masked layers
    kernel_a: int = 3  # kernel size of the plain PixelCNN's first (mask A) layer
    head: int = 128  # hidden width of the 1x1 output network
    n_classes: int = 0  # > 0: a class-conditional model p(x | y)
    output: str = "softmax"  # "softmax" (V logits per pixel) or "logistic" (PixelCNN++'s discretised mixture)
    mixtures: int = 5  # M, logistic components per pixel (output="logistic")

    def __post_init__(self):
        if len(self.shape) != 2:
            raise ValueError(f"shape must be (height, width), got {checks.short(self.shape)}")
        object.__setattr__(self, "shape", tuple(checks.positive_int("shape", s) for s in self.shape))  # lists too
        checks.positive_int("levels", self.levels)
        if self.levels < 2:
            raise ValueError(f"levels must be at least 2, got {self.levels}")
        checks.choice("arch", self.arch, ARCHS)
        for name in ("channels", "n_layers", "head"):
            checks.positive_int(name, getattr(self, name))
        for name in ("kernel", "kernel_a"):
            k = checks.positive_int(name, getattr(self, name))
            if k < 3 or k % 2 == 0:
                raise ValueError(f"{name} must be an odd integer >= 3, got {k}")
        checks.non_negative_int("n_classes", self.n_classes)
        checks.choice("output", self.output, OUTPUTS)
        checks.positive_int("mixtures", self.mixtures)

    @property
    def dims(self) -> int:
        return self.shape[0] * self.shape[1]


class _Gate(nn.Module):
    """tanh(a) ⊙ σ(b) for the two halves (a, b) of the channels."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a, b = h.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)


class PixelCNN(nn.Module):
    """p_θ(x) = Π_i Cat(x_i; softmax(f_θ(x_{<i}))_i) over the pixels of a grey image in raster order.

    The input is the one-hot image (B, V, H, W); the output is the logits (B, V, H, W) of every
    conditional at once. ``arch="pixelcnn"``: a mask-A convolution, then ``n_layers`` residual
    mask-B convolutions. ``arch="gated"``: ``n_layers`` gated layers with a vertical stack (rows
    above) feeding a horizontal stack (this row, to the left). With ``n_classes`` > 0 a learned
    embedding of the label y is added inside every layer: p_θ(x | y).
    """

    def __init__(self, config: PixelCNNConfig | None = None):
        super().__init__()
        self.config = c = config or PixelCNNConfig()
        V, C, k = c.levels, c.channels, c.kernel
        if c.arch == "pixelcnn":
            self.first = MaskedConv2d(V, C, mask_a(c.kernel_a))
            self.layers = nn.ModuleList(MaskedConv2d(C, C, mask_b(k)) for _ in range(c.n_layers))
            width = [C] * (c.n_layers + 1)
        else:
            self.v = nn.ModuleList(MaskedConv2d(V if l == 0 else C, 2 * C, mask_vertical(k, l == 0))
                                   for l in range(c.n_layers))
            self.h = nn.ModuleList(MaskedConv2d(V if l == 0 else C, 2 * C, mask_horizontal(k, l == 0))
                                   for l in range(c.n_layers))
            self.link = nn.ModuleList(nn.Conv2d(2 * C, 2 * C, 1) for _ in range(c.n_layers))
            self.h_out = nn.ModuleList(nn.Conv2d(C, C, 1) for _ in range(c.n_layers))
            self.gate = _Gate()
            width = [2 * C] * c.n_layers
        n_out = V if c.output == "softmax" else 3 * c.mixtures
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(C, c.head, 1), nn.ReLU(), nn.Conv2d(c.head, n_out, 1))
        if c.n_classes:
            self.embed = nn.ModuleList(nn.Embedding(c.n_classes, w) for w in width)

    # -- the network ----------------------------------------------------------------------------

    def _cond(self, layer: int, y: torch.Tensor | None) -> torch.Tensor | float:
        if not self.config.n_classes:
            checks.no_labels(y, "this PixelCNN (n_classes=0)")
            return 0.0
        if y is None:
            raise ValueError("this model is class-conditional (n_classes > 0): pass labels y")
        return self.embed[layer](y)[:, :, None, None]  # (B, width, 1, 1)

    def net(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, V, H, W) from a one-hot (or any real-valued) input h (B, V, H, W).
        Output (i, j) depends only on input pixels before (i, j) in raster order."""
        if self.config.arch == "pixelcnn":
            h = self.first(h) + self._cond(0, y)  # (B, C, H, W)
            for l, conv in enumerate(self.layers):
                h = h + conv(F.relu(h)) + self._cond(l + 1, y)  # residual mask-B layers
            return self._head(self.out(h))
        v = h_row = h
        for l in range(self.config.n_layers):
            v_pre = self.v[l](v)  # (B, 2C, H, W): rows above only
            h_pre = self.h[l](h_row) + self.link[l](v_pre)  # this row, to the left, + everything above
            cond = self._cond(l, y)
            v = self.gate(v_pre + cond)  # (B, C, H, W)
            h_new = self.h_out[l](self.gate(h_pre + cond))
            h_row = h_new if l == 0 else h_row + h_new  # residual from the second layer on
        return self._head(self.out(h_row))

    def _head(self, out: torch.Tensor) -> torch.Tensor:
        """The output layer's numbers -> logits (B, V, H, W): themselves (softmax), or the normalised
        level log-probabilities of the discretised logistic mixture (output="logistic")."""
        if self.config.output == "softmax":
            return out
        return logistic_mixture_log_probs(out, self.config.levels)

    def one_hot(self, x: torch.Tensor) -> torch.Tensor:
        """Integer images (B, H, W) -> one-hot (B, V, H, W) in the model's dtype."""
        return F.one_hot(x.long(), self.config.levels).permute(0, 3, 1, 2).to(self.out[-1].weight.dtype)

    def _images(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        """Validate integer images (B, D) or (B, H, W) and return them as (B, H, W) int64."""
        c = self.config
        checks.support(name, x, "categorical", c.levels)
        if x.dim() == 2:
            checks.images(name, x, dims=c.dims)
        else:
            checks.images(name, x, shape=c.shape)
        return x.reshape(len(x), *c.shape).long()

    def logits(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, V, H, W) of p(x_i | x_{<i}) for every pixel i of integer images x."""
        x = self._images(x)
        return self.net(self.one_hot(x), y)

    # -- the verbs ------------------------------------------------------------------------------

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p_θ(x) = Σ_i log p_θ(x_i | x_{<i}) in nats, one parallel pass.
        x: integer images (B, D) or (B, H, W) -> (B,)."""
        x = self._images(x)
        log_p = -F.cross_entropy(self.net(self.one_hot(x), y), x, reduction="none")  # (B, H, W)
        return log_p.flatten(1).sum(1)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean negative log-likelihood in nats per image (what training minimises; nothing random)."""
        return -self.log_prob(x, y).mean()

    def bits_per_dim(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """−log₂ p_θ(x) / D per image (B,)."""
        return metrics.nats_to_bpd(-self.log_prob(x, y), self.config.dims)

    def reach(self) -> tuple[int, int, int]:
        """(up, left, right): how many rows above and columns to each side of a pixel its output
        can depend on at most (the bounding box of the receptive field, from the kernel sizes)."""
        c, b = self.config, self.config.kernel // 2
        if c.arch == "pixelcnn":
            a = c.kernel_a // 2
            return a + c.n_layers * b, a + c.n_layers * b, a + c.n_layers * b
        return c.n_layers * b, c.n_layers * b, c.n_layers * b

    def logits_at(self, x: torch.Tensor, i: int, j: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, V) of p(x_ij | x_{<ij}) computed on the window of rows and columns that pixel
        (i, j) can depend on (:meth:`reach`) instead of the whole image: the same numbers, at a
        cost that does not grow with the image. x: integer images (B, H, W)."""
        up, left, right = self.reach()
        r0, c0, c1 = max(0, i - up), max(0, j - left), min(self.config.shape[1], j + right + 1)
        window = x[:, r0 : i + 1, c0:c1]  # (B, <= up+1, <= left+right+1)
        return self.net(self.one_hot(window), y)[:, :, i - r0, j - c0]

    @torch.no_grad()
    def sample(self, n: int, *, y: torch.Tensor | None = None, u: torch.Tensor | None = None,
               generator: torch.Generator | None = None, fast: bool = False,
               callback: Callable[[int, int, torch.Tensor, torch.Tensor], None] | None = None) -> torch.Tensor:
        """Draw ``n`` images pixel by pixel in raster order: x_ij ~ p_θ(x_ij | x_{<ij}).

        ``u`` (n, H, W) uniform numbers drive the draws by the inverse CDF, x_ij = #{k : CDF(k) < u_ij},
        so two samplers given the same u must give the same images. ``fast=True`` computes each
        conditional with :meth:`logits_at`. ``callback(i, j, x, probs)`` is called after every pixel.
        Returns (n, D) int64; the model's train/eval mode is left as it was."""
        H, W = self.config.shape
        n = checks.positive_int("n", n)
        x = torch.zeros(n, H, W, dtype=torch.long)
        return self._draw(x, torch.zeros_like(x, dtype=torch.bool), y, u, generator, fast, callback)

    @torch.no_grad()
    def complete(self, observed: torch.Tensor, known: torch.Tensor | None = None, *, y: torch.Tensor | None = None,
                 u: torch.Tensor | None = None, generator: torch.Generator | None = None, fast: bool = False,
                 callback: Callable[[int, int, torch.Tensor, torch.Tensor], None] | None = None) -> torch.Tensor:
        """Complete ``observed`` images (B, D) or (B, H, W): pixels where the boolean ``known`` (same
        shape; default all) is True are kept, the others drawn as in :meth:`sample`. A pixel only sees
        the known pixels *before* it, so only a known prefix (the top rows) is conditioned on exactly."""
        x = self._images(observed, "observed").clone()
        if known is None:
            known = torch.ones_like(x, dtype=torch.bool)
        else:
            checks.grid("known", known, len(x), self.config.shape)
            known = known.reshape(x.shape).bool()
        return self._draw(x, known, y, u, generator, fast, callback)

    def _draw(self, x, known, y, u, generator, fast, callback) -> torch.Tensor:
        """The sampling loop of :meth:`sample` and :meth:`complete` over x (B, H, W), keeping ``known``."""
        c = self.config
        H, W = c.shape
        if u is not None:
            checks.grid("u", u, len(x), (H, W), 0, 1)  # uniform numbers for the inverse CDF
        if y is not None and c.n_classes:
            checks.labels("y", y, c.n_classes, len(x))
        device = next(self.parameters()).device
        x, known = x.to(device), known.to(device)
        if u is None:
            u = torch.rand(x.shape, generator=generator, device=generator.device if generator else "cpu")
        u = u.reshape(x.shape).to(device)
        if y is not None:
            y = y.to(device)
        was_training = self.training
        self.eval()
        try:
            for i in range(H):
                for j in range(W):
                    if bool(known[:, i, j].all()):
                        continue
                    logits = self.logits_at(x, i, j, y) if fast else self.net(self.one_hot(x), y)[:, :, i, j]
                    probs = torch.softmax(logits.double(), dim=1)  # (B, V)
                    draw = categorical_inverse_cdf(probs, u[:, i, j])
                    x[:, i, j] = torch.where(known[:, i, j], x[:, i, j], draw)
                    if callback is not None:
                        callback(i, j, x, probs)
        finally:
            self.train(was_training)
        return x.flatten(1).cpu()


def dependency(model: PixelCNN, i: int, j: int, n: int = 8, generator: torch.Generator | None = None,
               y: torch.Tensor | None = None) -> torch.Tensor:
    """|∂ (r · logits(i, j)) / ∂ input| summed over ``n`` random one-hot images and the input
    channels, for a random direction r over the V logits: (H, W). Nonzero where output (i, j)
    depends on the input pixel (the random r makes an accidental cancellation a probability-zero
    event): the receptive field measured on the network itself, not read off the masks."""
    c = model.config
    x = torch.randint(0, c.levels, (n, *c.shape), generator=generator)
    r = torch.randn(n, c.levels, generator=generator)
    device = next(model.parameters()).device
    h = model.one_hot(x).to(device).requires_grad_(True)
    if c.n_classes and y is None:
        y = torch.randint(0, c.n_classes, (n,), generator=generator).to(device)
    was_training = model.training
    model.eval()
    with torch.enable_grad():
        out = model.net(h, y)[:, :, i, j]  # (n, V)
        (grad,) = torch.autograd.grad((out * r.to(out)).sum(), h)
    model.train(was_training)
    return grad.abs().sum((0, 1)).cpu()  # (n, V, H, W) -> (H, W)


def sampling_seconds(model: PixelCNN, n: int, fast: bool, rows: int | None = None,
                     generator: torch.Generator | None = None) -> float:
    """Wall-clock seconds to sample ``n`` images, measured on the last ``rows`` rows (the others
    given, as in a completion) and scaled by H / rows; ``rows=None`` samples whole images.
    A naive step costs one full forward pass wherever the pixel is, so the scaling is exact for it;
    the window of the fast sampler is smaller in the top rows, so the scaled time slightly
    overestimates it."""
    import time

    H, W = model.config.shape
    rows = H if rows is None else min(checks.positive_int("rows", rows), H)
    known = torch.zeros(n, H, W, dtype=torch.bool)
    known[:, : H - rows] = True
    observed = torch.zeros(n, H, W, dtype=torch.long)
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    tic = time.perf_counter()
    model.complete(observed, known, generator=generator, fast=fast)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - tic) * H / rows


def raster_before(shape: tuple[int, int], i: int, j: int) -> torch.Tensor:
    """Boolean (H, W): the pixels before (i, j) in raster order, x_{<ij}."""
    H, W = shape
    return (torch.arange(H * W) < i * W + j).reshape(H, W)


def cone(shape: tuple[int, int], i: int, j: int, layers: int) -> torch.Tensor:
    """Boolean (H, W): the pixels that ``layers`` stacked 3x3 masked layers (mask A first, then B)
    reach from output (i, j). Each layer moves a path up one row (column shift −1, 0 or +1) or
    along the row (shift −1 or 0; mask A: −1 only), so the row d ≥ 1 above holds the columns
    j − layers ... j + d, and row i the columns j − layers ... j − 1. The earlier pixels with
    j' > j + d, above and to the right, are reached by no path: the blind spot."""
    H, W = shape
    r, s = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    d, shift = i - r, s - j
    above = (d >= 1) & (d <= layers) & (shift <= d)
    same_row = (d == 0) & (shift <= -1)
    return (above | same_row) & (shift >= -layers)
