"""Schematic diagrams drawn by code (matplotlib): architectures, graphical models, chains.

The book's diagrams are drawn here rather than pasted as pictures, so that they are versioned,
restyled in one place and redrawn by the chapters. Shared primitives first (a box, an arrow, a
node); then one section per chapter, each a function ``draw_<what>(ax=None) -> Axes``.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

COLORS = {"data": "#dbe9f6", "latent": "#fde2c8", "net": "#e3f1dc", "loss": "#f6d5d5", "plain": "#f2f2f2"}


def canvas(width: float = 8, height: float = 3, ax=None, xlim=(0, 10), ylim=(0, 4)):
    """An empty axes with data coordinates ``xlim`` x ``ylim`` and no frame."""
    if ax is None:
        _, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def box(ax, x: float, y: float, text: str, width: float = 1.6, height: float = 0.8,
        kind: str = "plain", fontsize: int = 10):
    """A rounded box centred at ``(x, y)`` with ``text``; ``kind`` picks the fill colour."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.05", fc=COLORS[kind], ec="0.3", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def node(ax, x: float, y: float, text: str, radius: float = 0.4, observed: bool = False,
         fontsize: int = 11):
    """A graphical-model node: a circle, shaded when the variable is observed."""
    ax.add_patch(Circle((x, y), radius, fc="0.8" if observed else "white", ec="0.2", lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str | None = None,
          style: str = "-|>", color: str = "0.2", dashed: bool = False, fontsize: int = 9,
          offset: tuple[float, float] = (0.0, 0.18)):
    """An arrow from ``start`` to ``end``, optionally labelled at its midpoint (+ ``offset``)."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color,
                                 lw=1.2, linestyle="--" if dashed else "-", shrinkA=2, shrinkB=2))
    if text:
        ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], text,
                ha="center", va="bottom", fontsize=fontsize)


# ---- chapter 6: autoregressive models

def draw_chain(tokens, ax=None, fontsize: int = 10):
    """The chain rule as a row of classifiers: one box per factor p(token_t | tokens before it),
    with arrows from every earlier token into it."""
    n = len(tokens)
    ax = canvas(2.3 * n, 2.2, ax=ax, xlim=(0, 2.6 * n), ylim=(0, 2.4))
    xs = [1.3 + 2.6 * t for t in range(n)]
    for t, (x, tok) in enumerate(zip(xs, tokens)):
        node(ax, x, 0.5, tok, radius=0.42, observed=True, fontsize=fontsize - 1)
        given = ", ".join(tokens[:t]) if t else ""
        label = f"p({tok} | {given})" if t <= 1 else f"p({tok} | ...)"
        box(ax, x, 1.8, label, width=2.3, height=0.6, kind="net", fontsize=fontsize - 1)
        arrow(ax, (x, 1.48), (x, 0.94))
        for s in range(t):
            arrow(ax, (xs[s] + 0.3, 0.8), (x - 0.6, 1.5), color="0.55")
    return ax


def draw_mask(mask, ax=None, title: str | None = None, fontsize: int = 9):
    """A convolution mask as a grid: filled cells are weights that act, white cells are zeroed,
    the outlined cell is the centre (the output's own position)."""
    import numpy as np

    m = np.asarray(mask, dtype=float)
    kh, kw = m.shape
    ax = canvas(kw * 0.5, kh * 0.5, ax=ax, xlim=(-0.1, kw + 0.1), ylim=(-0.1, kh + 0.1))
    for r in range(kh):
        for c in range(kw):
            face = "#4a7fb5" if m[r, c] else "white"
            ax.add_patch(plt.Rectangle((c, kh - 1 - r), 1, 1, fc=face, ec="0.5", lw=0.8))
    ax.add_patch(plt.Rectangle((kw // 2, kh - 1 - kh // 2), 1, 1, fc="none", ec="#d62728", lw=2.4))
    if title:
        ax.set_title(title, fontsize=fontsize + 1)
    return ax


def draw_pixelrnn_order(n: int = 8, ax=None, fontsize: int = 8):
    """An n x n image with, in each pixel, the sequential step at which a PixelRNN-style
    recurrence h[i, j] = f(h[i-1, j], h[i, j-1]) can compute it: i + j + 1, so 2n − 1 steps."""
    import numpy as np

    ax = canvas(4, 4, ax=ax, xlim=(-0.1, n + 0.1), ylim=(-0.1, n + 0.1))
    cmap = plt.get_cmap("viridis")
    for i in range(n):
        for j in range(n):
            step = i + j + 1
            ax.add_patch(plt.Rectangle((j, n - 1 - i), 1, 1, fc=cmap(step / (2 * n - 1)), ec="white", lw=0.8))
            ax.text(j + 0.5, n - 0.5 - i, str(step), ha="center", va="center", fontsize=fontsize,
                    color="white" if step < 1.4 * n else "black")
    ax.set_title(f"PixelRNN: pixel (i, j) waits for step i + j + 1; {2 * n - 1} steps in all", fontsize=fontsize + 2)
    return ax


def draw_dependency(dep, pixel: tuple[int, int], ax=None, title: str | None = None, fontsize: int = 9):
    """Which input pixels one output depends on, for an H x W image: the output pixel in red,
    earlier pixels it depends on in blue (darker: larger gradient), earlier pixels it does not
    depend on hatched in orange (blind spot or out of reach), later pixels white."""
    import numpy as np

    d = np.asarray(dep, dtype=float)
    H, W = d.shape
    i0, j0 = pixel
    ax = canvas(W * 0.4, H * 0.4, ax=ax, xlim=(-0.1, W + 0.1), ylim=(-0.1, H + 0.1))
    top = d.max() if d.max() > 0 else 1.0
    blues = plt.get_cmap("Blues")
    for i in range(H):
        for j in range(W):
            xy = (j, H - 1 - i)
            if (i, j) == (i0, j0):
                ax.add_patch(plt.Rectangle(xy, 1, 1, fc="#d62728", ec="0.5", lw=0.6))
            elif i * W + j > i0 * W + j0:
                ax.add_patch(plt.Rectangle(xy, 1, 1, fc="white", ec="0.85", lw=0.6))
            elif d[i, j] > 0:
                ax.add_patch(plt.Rectangle(xy, 1, 1, fc=blues(0.35 + 0.65 * (d[i, j] / top) ** 0.5),
                                           ec="0.5", lw=0.6))
            else:
                ax.add_patch(plt.Rectangle(xy, 1, 1, fc="#fde2c8", ec="#e6550d", lw=0.6, hatch="///"))
    for i in range(H):  # row and column indices of the pixels
        ax.text(-0.15, H - 0.5 - i, str(i), ha="right", va="center", fontsize=fontsize - 2, color="0.4")
    for j in range(W):
        ax.text(j + 0.5, H + 0.1, str(j), ha="center", va="bottom", fontsize=fontsize - 2, color="0.4")
    ax.set_xlim(-0.8, W + 0.1), ax.set_ylim(-0.1, H + 0.7)
    if title:
        ax.set_title(title, fontsize=fontsize + 1)
    return ax
