"""Glow's pieces (Kingma & Dhariwal 2018) for :mod:`genlib.flows`: the squeeze, the invertible 1x1 convolution
in LU form, convolutional couplings and multi-scale factoring-out."""
from __future__ import annotations

import torch
from torch import nn

from genlib import checks
from genlib.flows.bijections import ActNorm, Bijection, Logit, Permute

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
