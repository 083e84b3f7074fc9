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


# ---- chapter 8: diffusion


def draw_diffusion_chain(ax=None, labels=("x_0", "x_1", "x_{t-1}", "x_t", "x_T")):
    """The forward chain q(x_t | x_{t−1}) (left to right, fixed noise) above the learned reverse chain
    p_θ(x_{t−1} | x_t) (right to left), with the data at x_0 and pure noise N(0, I) at x_T."""
    ax = canvas(10, 3.2, ax, xlim=(0, 12.5), ylim=(0.2, 4.2))
    xs = [1, 3.5, 6, 8.5, 11]
    for i, (x, label) in enumerate(zip(xs, labels)):
        node(ax, x, 2.2, f"${label}$", radius=0.5, observed=(i == 0))
    for i, (a, b) in enumerate(zip(xs[:-1], xs[1:])):
        gap = i in (1, 3)  # "..." between x_1 and x_{t-1}, and between x_t and x_T
        if gap:
            ax.text((a + b) / 2, 2.2, "· · ·", ha="center", va="center", fontsize=14)
            continue
        q = "$q(x_t \\mid x_{t-1})$" if i == 2 else None
        p = "$p_\\theta(x_{t-1} \\mid x_t)$" if i == 2 else None
        arrow(ax, (a + 0.5, 2.45), (b - 0.5, 2.45), style="-|>", color="0.25")
        arrow(ax, (b - 0.5, 1.95), (a + 0.5, 1.95), style="-|>", color="tab:blue", dashed=True)
        if q:
            ax.text((a + b) / 2, 2.75, q, ha="center", va="bottom", fontsize=10)
            ax.text((a + b) / 2, 1.65, p, ha="center", va="top", fontsize=10, color="tab:blue")
    ax.text(1, 3.05, "data", ha="center", fontsize=9)
    ax.text(11, 3.05, "noise $\\mathcal{N}(0, I)$", ha="center", fontsize=9)
    ax.text(6.25, 3.85, "forward: add a little Gaussian noise (fixed, no parameters)", ha="center", fontsize=10)
    ax.text(6.25, 0.55, "reverse: remove it, one step at a time (learned)", ha="center", fontsize=10,
            color="tab:blue")
    return ax
