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


# ---- chapter 3: energy-based models


def draw_cd_loop(ax=None):
    """Contrastive divergence: data push the energy down, Langevin samples from a replay buffer push it up."""
    ax = canvas(10, 4.2, ax, xlim=(0, 12.5), ylim=(0, 5))
    box(ax, 1.3, 3.9, "data\n$x \\sim p_{data}$", width=2.0, height=0.95, kind="data")
    box(ax, 1.3, 1.1, "replay buffer\n(persistent chains)", width=2.2, height=0.95, kind="latent")
    box(ax, 5.0, 1.1, "Langevin, $T$ steps\n$x \\leftarrow x - \\eta\\nabla_x E_\\theta(x) + \\sigma\\varepsilon$",
        width=3.6, height=0.95, kind="net", fontsize=9)
    box(ax, 5.0, 3.9, "energy network\n$E_\\theta: \\mathcal{X} \\to \\mathbb{R}$", width=2.5, height=0.95, kind="net")
    box(ax, 10.8, 2.5, "CD loss\n$\\overline{E_\\theta(x)} - \\overline{E_\\theta(\\hat x)}$\n$+\\,\\lambda\\,\\overline{E_\\theta^2}$",
        width=2.6, height=1.5, kind="loss")
    arrow(ax, (2.35, 3.9), (3.7, 3.9), "$x$")
    arrow(ax, (2.45, 1.25), (3.15, 1.25), "$x_0$", offset=(0, 0.08))
    arrow(ax, (3.15, 0.9), (2.45, 0.9), "put back $\\hat x$", offset=(-0.1, -0.62))
    arrow(ax, (5.6, 1.62), (5.6, 3.38), "$\\hat x$", offset=(0.25, -0.1))
    arrow(ax, (4.4, 3.38), (4.4, 1.62), "$\\nabla_x E_\\theta$", dashed=True, offset=(-0.5, -0.1))
    arrow(ax, (6.3, 3.75), (9.45, 2.85), "$E_\\theta(x)$: push down", color="tab:green", offset=(0.3, 0.12))
    arrow(ax, (6.9, 1.1), (9.45, 2.1), "$E_\\theta(\\hat x)$: push up", color="tab:red", offset=(0.45, -0.55))
    arrow(ax, (10.8, 3.3), (6.3, 4.25), "$\\nabla_\\theta$: one Adam step on $\\theta$", dashed=True, offset=(0.5, 0.05))
    return ax


def draw_push_pull(ax=None):
    """The lecture's picture, schematic: a 1-D energy, data (green) pushed down, samples (red) pushed up."""
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    x = np.linspace(-3, 3, 400)
    energy = 0.25 * (x - 0.6) ** 2 - 1.0 * np.exp(-6 * (x + 1.7) ** 2)  # a model with a spurious dip at −1.7
    ax.plot(x, energy, color="0.2", lw=1.5, label="$E_\\theta(x)$")
    f = lambda v: np.interp(v, x, energy)  # noqa: E731
    for v in (-0.6, -0.1, 0.3, 0.8):  # data, where the energy should go down
        ax.annotate("", (v, f(v) - 0.45), (v, f(v)), arrowprops=dict(arrowstyle="-|>", color="tab:green", lw=1.5))
        ax.plot(v, f(v), "o", color="tab:green", ms=6)
    for v in (-1.85, -1.6, 1.5, 2.0):  # model samples, where the energy should go up
        ax.annotate("", (v, f(v) + 0.45), (v, f(v)), arrowprops=dict(arrowstyle="-|>", color="tab:red", lw=1.5))
        ax.plot(v, f(v), "s", color="tab:red", ms=6)
    ax.plot([], [], "o", color="tab:green", label="data $x$: push $E$ down")
    ax.plot([], [], "s", color="tab:red", label="samples $\\hat x \\sim p_\\theta$: push $E$ up")
    ax.set_xlabel("$x$"), ax.set_ylabel("energy (nats)")
    ax.set_ylim(-1.3, 3.2)
    ax.legend(frameon=False, loc="upper center", fontsize=9)
    ax.set_title("one CD update (schematic)")
    return ax
