"""The denoising networks: an MLP for 2-D toys and a small U-Net for images (Chapter 8)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


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
