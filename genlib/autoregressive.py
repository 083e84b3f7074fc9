r"""Autoregressive models: the chain rule as a product of classifiers (Chapter 6).

Any distribution over a sequence (or an image read in raster order, row by row) factorises as

    p(x) = Π_{i=1}^{D} p(x_i | x_1, ..., x_{i-1}),    log p(x) = Σ_i log p(x_i | x_{<i}),

with no approximation. An autoregressive model predicts each factor with one network: a
classifier whose input is everything before position i and whose output is a categorical
distribution over the V values (``levels``) that x_i can take. Training maximises the exact
log-likelihood, a sum of cross-entropies that one forward pass computes for every position at
once; sampling draws x_1, then x_2 given x_1, ..., one position at a time.

For images, the PixelCNN (van den Oord et al. 2016) makes every output depend only on earlier
pixels with *masked* convolutions: the first layer's mask ("A") hides the centre pixel and
everything after it, later masks ("B") let a pixel see its own features (which already depend only on
the past). Stacked 3x3 masks leave a *blind spot*, a wedge of earlier pixels above-right that no
path reaches; the gated PixelCNN (van den Oord et al., NeurIPS 2016) splits the network into a
vertical stack (all rows above) and a horizontal stack (the current row, to the left), which
together see every earlier pixel.

Contents: the masks (:func:`mask_a`, :func:`mask_b`, :func:`mask_vertical`,
:func:`mask_horizontal`), :class:`MaskedConv2d`, the models :class:`PixelCNN` (``arch="pixelcnn"``
or ``"gated"``, chosen by :class:`PixelCNNConfig`; optional class conditioning), their verbs
``log_prob``/``loss``/``sample`` (pixel by pixel, with completions and a faster sampler that only
recomputes the window each pixel depends on), :func:`dependency` (which input pixels an output
depends on, by gradients), MADE (Germain et al. 2015: :class:`MADE`, a masked MLP that outputs every
conditional in one pass, in any order — the conditioner of Chapter 7's autoregressive flows — and
:class:`CategoricalMADE`, its image model), and a tiny next-character model (:class:`CharModel`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlib import checks, data, metrics
from genlib.family import NLL, Family

ARCHS = ("pixelcnn", "gated")


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
    """A convolution whose kernel is multiplied by a fixed 0/1 ``mask`` (kh, kw) on every call,
    so masked weights never act (and get zero gradient). Padding keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, mask: torch.Tensor):
        kh, kw = mask.shape
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2))
        self.register_buffer("mask", mask.clone()[None, None])  # (1, 1, kh, kw)

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
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(C, c.head, 1), nn.ReLU(), nn.Conv2d(c.head, V, 1))
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
            return self.out(h)
        v = h_row = h
        for l in range(self.config.n_layers):
            v_pre = self.v[l](v)  # (B, 2C, H, W): rows above only
            h_pre = self.h[l](h_row) + self.link[l](v_pre)  # this row, to the left, + everything above
            cond = self._cond(l, y)
            v = self.gate(v_pre + cond)  # (B, C, H, W)
            h_new = self.h_out[l](self.gate(h_pre + cond))
            h_row = h_new if l == 0 else h_row + h_new  # residual from the second layer on
        return self.out(h_row)

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
    def sample(self, n: int | None = None, *, y: torch.Tensor | None = None, observed: torch.Tensor | None = None,
               known: torch.Tensor | None = None, u: torch.Tensor | None = None,
               generator: torch.Generator | None = None, fast: bool = False,
               callback: Callable[[int, int, torch.Tensor, torch.Tensor], None] | None = None) -> torch.Tensor:
        """Draw images pixel by pixel in raster order: x_ij ~ p_θ(x_ij | x_{<ij}).

        ``observed`` (B, D) or (B, H, W) with a boolean ``known`` of the same shape: pixels where
        ``known`` is True are kept (a completion: the rest is sampled given them; note that a pixel
        only sees the known pixels *before* it). ``u`` (B, H, W) uniform numbers drive the draws by
        the inverse CDF, x_ij = #{k : CDF(k) < u_ij}, so two samplers given the same u must give the
        same images. ``fast=True`` computes each conditional with :meth:`logits_at`.
        ``callback(i, j, x, probs)`` is called after every pixel. Returns (B, D) int64.
        """
        c = self.config
        H, W = c.shape
        rows = len(observed) if torch.is_tensor(observed) else checks.positive_int("n", n)
        if u is not None:
            checks.grid("u", u, rows, (H, W), 0, 1)  # uniform numbers for the inverse CDF
        if known is not None:
            checks.grid("known", known, rows, (H, W))
        if y is not None and c.n_classes:
            checks.labels("y", y, c.n_classes, rows)
        if observed is not None:
            x = self._images(observed, "observed").clone()
            known = known.reshape(x.shape).bool() if known is not None else torch.ones_like(x, dtype=torch.bool)
        else:
            checks.positive_int("n", n)
            x = torch.zeros(n, H, W, dtype=torch.long)
            known = torch.zeros_like(x, dtype=torch.bool)
        device = next(self.parameters()).device
        x, known = x.to(device), known.to(device)
        if u is None:
            u = torch.rand(x.shape, generator=generator, device=generator.device if generator else "cpu")
        u = u.reshape(x.shape).to(device)
        if y is not None:
            y = y.to(device)
        self.eval()
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
        return x.flatten(1).cpu()


def categorical_inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """x = #{k : CDF(k) < u}: a draw from Cat(probs) (B, V) for u ~ U[0, 1) (B,). Returns (B,)."""
    cdf = probs.cumsum(1)
    return (cdf < u[:, None]).sum(1).clamp(max=probs.shape[1] - 1)


def batch_loss(model: PixelCNN, batch) -> torch.Tensor:
    """``fit``'s loss: mean NLL (nats per image) of a batch (x,) or (x, y)."""
    return model.loss(*batch)


@torch.no_grad()
def evaluate_nll(model: PixelCNN, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 512) -> dict:
    """Exact test NLL in nats per image and bits per dimension (means over x)."""
    model.eval()
    device = next(model.parameters()).device
    nll = torch.cat([-model.log_prob(x[s : s + batch_size].to(device),
                                     None if y is None else y[s : s + batch_size].to(device)).cpu()
                     for s in range(0, len(x), batch_size)])
    nats = float(nll.mean())
    return {"nats": nats, "bpd": metrics.nats_to_bpd(nats, model.config.dims)}


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
    model.sample(observed=observed, known=known, generator=generator, fast=fast)
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


# ----------------------------------------------------------------------------- dilated causal convolutions


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution over a sequence (B, C, T) whose output t sees inputs t − dilation·(k − 1) … t
    (``shift=0``) or strictly before t (``shift=1``, the first layer: it must not see x_t): left padding
    keeps the length, and nothing to the right of t ever enters."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 2, dilation: int = 1, shift: int = 0):
        super().__init__(in_channels, out_channels, checks.positive_int("kernel", kernel),
                         dilation=checks.positive_int("dilation", dilation))
        self.left, self.shift = dilation * (kernel - 1) + shift, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = super().forward(F.pad(x, (self.left, 0)))  # (B, C_out, T + shift)
        return h[..., : x.shape[-1]]  # with shift = 1 the last output is dropped: output t sees x_{<t}


@dataclass
class DilatedConfig:
    """WaveNet-style model of a flattened image: dilations 1, 2, 4, ... double the reach per layer."""

    dims: int = 64            # D, the sequence length (pixels in raster order)
    levels: int = 17          # V
    channels: int = 64
    n_layers: int = 6         # dilations 1, 2, ..., 2^(n_layers - 1)
    kernel: int = 2

    def __post_init__(self):
        for name in ("dims", "levels", "channels", "n_layers", "kernel"):
            checks.positive_int(name, getattr(self, name))

    @property
    def receptive_field(self) -> int:
        """How many earlier positions output t can see: the first layer's ``kernel`` positions before t,
        widened by (kernel − 1)·2^l by dilated layer l: kernel + (kernel − 1)(2^n − 1)."""
        return self.kernel + (self.kernel - 1) * (2 ** self.n_layers - 1)


class DilatedCausalModel(nn.Module):
    """p(x) = Π_t Cat(x_t; softmax(f(x_{<t}))) with f a stack of dilated causal convolutions over the
    raster-ordered pixels (gated residual layers, as in WaveNet, van den Oord et al. 2016)."""

    def __init__(self, config: DilatedConfig | None = None):
        super().__init__()
        self.config = c = config or DilatedConfig()
        self.first = CausalConv1d(c.levels, c.channels, c.kernel, 1, shift=1)
        self.layers = nn.ModuleList(CausalConv1d(c.channels, 2 * c.channels, c.kernel, 2 ** l) for l in range(c.n_layers))
        self.mix = nn.ModuleList(nn.Conv1d(c.channels, c.channels, 1) for _ in range(c.n_layers))
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(c.channels, c.levels, 1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) integers -> (B, V, D) logits; output t depends only on x_{<t}."""
        h = self.first(F.one_hot(x.long(), self.config.levels).float().transpose(1, 2))  # (B, C, D)
        for conv, mix in zip(self.layers, self.mix):
            a, b = conv(h).chunk(2, dim=1)
            h = h + mix(torch.tanh(a) * torch.sigmoid(b))  # gated residual layer
        return self.out(h)

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x) in nats, one pass. (B, D) -> (B,)."""
        if y is not None:
            raise ValueError("DilatedCausalModel is unconditional; got labels y")
        checks.images("x", x, dims=self.config.dims)
        checks.support("x", x, "categorical", levels=self.config.levels)
        return -F.cross_entropy(self.logits(x), x.long(), reduction="none").sum(1)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return -self.log_prob(x, y).mean()


# ----------------------------------------------------------------------------- next-character model


def text_corpus(max_chars: int | None = 200_000) -> str:
    """English prose that ships with Python: the help texts of ``pydoc_data.topics`` (the
    language reference shown by ``help("if")`` etc.), whitespace collapsed, at most ``max_chars``."""
    from pydoc_data.topics import topics

    text = " ".join(" ".join(topics[name].split()) for name in sorted(topics))
    return text if max_chars is None else text[:max_chars]


class Vocabulary:
    """Characters <-> integer codes; code 0 is reserved for "before the start of the text"."""

    def __init__(self, text: str):
        self.chars = ["\0"] + sorted(set(text) - {"\0"})
        self.index = {ch: k for k, ch in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {checks.short(''.join(unknown))}")
        return torch.tensor([self.index[ch] for ch in text], dtype=torch.long)

    def decode(self, codes) -> str:
        return "".join(self.chars[int(k)] for k in codes)


def windows(codes: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(contexts (N, context), targets (N,)): each character with the ``context`` characters before
    it, padded on the left with the start code 0."""
    padded = torch.cat([torch.zeros(context, dtype=torch.long), codes])
    return padded.unfold(0, context, 1)[: len(codes)], codes


class CharModel(nn.Module):
    """p_θ(c_t | c_{t-k}, ..., c_{t-1}) = softmax(MLP(embeddings of the k previous characters)):
    next-character prediction as a classifier over the vocabulary (a chain rule with a window)."""

    def __init__(self, vocab_size: int, context: int = 16, embed: int = 16, hidden: int = 256):
        super().__init__()
        self.vocab_size, self.context = checks.positive_int("vocab_size", vocab_size), checks.positive_int("context", context)
        self.embed = nn.Embedding(vocab_size, checks.positive_int("embed", embed))
        self.mlp = nn.Sequential(nn.Linear(context * embed, checks.positive_int("hidden", hidden)), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, vocab_size))

    def forward(self, contexts: torch.Tensor) -> torch.Tensor:
        """Logits (N, A), A the vocabulary size, of the next character after each context (N, k)."""
        return self.mlp(self.embed(contexts).flatten(1))  # (N, k, e) -> (N, k e) -> (N, A)

    def log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        """log p(c_1, ..., c_T) = Σ_t log p(c_t | c_{<t}) of one encoded text (T,), in nats, and
        the per-character terms: returns (T,) — sum it for the whole string."""
        checks.support("codes", codes, "categorical", self.vocab_size)
        contexts, targets = windows(codes, self.context)
        return -F.cross_entropy(self(contexts), targets, reduction="none")

    def next_log_prob(self, prompt: torch.Tensor) -> torch.Tensor:
        """log p(next character | encoded ``prompt`` (T,)) over the vocabulary: (A,)."""
        codes = torch.cat([torch.zeros(self.context, dtype=torch.long), prompt.long()])
        return torch.log_softmax(self(codes[None, -self.context:])[0], 0)

    @torch.no_grad()
    def sample(self, prompt: torch.Tensor, n_chars: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Continue the encoded ``prompt`` (T,) by ``n_chars`` characters, one at a time."""
        checks.positive("temperature", temperature)
        codes = torch.cat([torch.zeros(self.context, dtype=torch.long), prompt.long()])
        for _ in range(checks.positive_int("n_chars", n_chars)):
            logits = self(codes[None, -self.context:])[0] / temperature
            nxt = torch.multinomial(torch.softmax(logits, 0), 1, generator=generator)
            codes = torch.cat([codes, nxt])
        return codes[self.context:]


def char_loss(model: CharModel, batch) -> torch.Tensor:
    """``fit``'s loss: mean cross-entropy (nats per character) of a batch (contexts, targets)."""
    contexts, targets = batch
    return F.cross_entropy(model(contexts), targets)


# ----------------------------------------------------------------------------- the family's declaration


def _build(params) -> PixelCNN:
    """Chapter 6, section 5: the gated PixelCNN (the chapter's main model; it also trains a plain one)."""
    train = data.images(params.dataset, "train")
    return PixelCNN(PixelCNNConfig(shape=train.shape, levels=train.levels, arch="gated",
                                   channels=params.channels, n_layers=params.n_layers))


def _train(model: PixelCNN, params, generator: torch.Generator, options: dict):
    from genlib.train import fit

    train, val = (data.images(params.dataset, s).x for s in ("train", "val"))
    return fit(model, batch_loss, train, val, epochs=params.epochs, batch_size=64, lr=3e-3,
               patience=params.epochs, generator=generator, **options)  # patience: keep the best epoch


def _nll(model: PixelCNN, x: torch.Tensor, generator: torch.Generator) -> NLL:
    return NLL(evaluate_nll(model, x)["nats"], "exact",
               f"NLL: exact, -sum_i log p(x_i | x_<i) of the integer images over the {model.config.levels} levels "
               "(the discrete scale of every row)")


FAMILY = Family(
    name="pixelcnn", chapter="06_autoregressive", model=PixelCNN, build=_build, train=_train, nll=_nll, density="exact",
    samples=lambda model, n, generator: model.sample(n, generator=generator, fast=True).float()
    / (model.config.levels - 1),
    describe=lambda model, params: f"gated PixelCNN ({model.config.channels} channels, {model.config.n_layers} layers)",
    smoke={"epochs": 1, "channels": 8, "n_layers": 2},
    remarks=lambda model, params, seed: [
        f"samples: {model.config.dims} sequential network passes (one per pixel, the windowed fast sampler)",
        "no latent features: an autoregressive model has none"])
