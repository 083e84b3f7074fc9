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


# ---- chapter 7: normalizing flows


def draw_flow_chain(ax=None, n_layers: int = 3):
    """A flow as a chain x = h_0 -> h_1 -> … -> h_K = z: forward arrows normalise (density),
    the dashed backward arrows sample (one pass through the inverses)."""
    width = 2.2 * (n_layers + 1) + 1.2
    ax = canvas(width * 0.85, 2.6, ax, xlim=(0, width), ylim=(0.2, 3.2))
    names = ["$x = h_0$"] + [f"$h_{k}$" for k in range(1, n_layers)] + ["$z = h_K$"]
    xs = [1.0 + 2.2 * i for i in range(n_layers + 1)]
    for i, (x, name) in enumerate(zip(xs, names)):
        kind = "data" if i == 0 else "latent" if i == n_layers else "plain"
        box(ax, x, 1.7, name, width=1.3, height=0.7, kind=kind)
    for i in range(n_layers):
        label = f"$f_{i + 1}$" if i < n_layers - 1 else "$f_K$"
        arrow(ax, (xs[i] + 0.68, 1.85), (xs[i + 1] - 0.68, 1.85), label)
        inv = f"$f_{i + 1}^{{-1}}$" if i < n_layers - 1 else "$f_K^{-1}$"
        arrow(ax, (xs[i + 1] - 0.68, 1.5), (xs[i] + 0.68, 1.5), inv, dashed=True, offset=(0, -0.55))
    ax.text(xs[-1], 2.45, r"$p_Z = \mathcal{N}(0, I)$", ha="center", fontsize=10)
    ax.text((xs[0] + xs[-1]) / 2, 2.75,
            r"density: $\log p(x) = \log p_Z(z) + \sum_k \log|\det \partial h_k / \partial h_{k-1}|$",
            ha="center", fontsize=10)
    ax.text((xs[0] + xs[-1]) / 2, 0.45, r"sampling: $z \sim p_Z$, then $x = f_1^{-1}(\cdots f_K^{-1}(z))$",
            ha="center", fontsize=10)
    return ax


def draw_coupling_layer(ax=None):
    """An affine coupling layer: the kept half x_A passes through and feeds a network that gives
    the shift t and log-scale s of the other half, z_B = x_B ⊙ exp(s) + t; the inverse reuses s, t."""
    ax = canvas(9, 4.2, ax, xlim=(0, 11), ylim=(0, 5))
    box(ax, 0.9, 2.5, "$x$", width=1.0, kind="data")
    box(ax, 3.0, 4.0, r"$x_A = m \odot x$" + "\n(kept)", width=2.0, height=0.9, kind="data")
    box(ax, 3.0, 1.0, r"$x_B$" + "\n(transformed)", width=2.0, height=0.9, kind="data")
    box(ax, 5.5, 2.5, "network\n" + r"$s(x_A),\ t(x_A)$", width=2.0, height=1.0, kind="net")
    box(ax, 8.0, 1.0, r"$z_B = x_B \odot e^{s} + t$", width=2.4, height=0.9, kind="plain")
    box(ax, 8.0, 4.0, r"$z_A = x_A$", width=2.0, height=0.9, kind="plain")
    box(ax, 10.3, 2.5, "$z$", width=1.0, kind="latent")
    arrow(ax, (1.4, 2.7), (2.0, 3.8), "mask $m$", offset=(-0.55, 0.05))
    arrow(ax, (1.4, 2.3), (2.0, 1.2))
    arrow(ax, (4.0, 4.0), (7.0, 4.0), "copy")
    arrow(ax, (3.6, 3.55), (4.7, 2.95))
    arrow(ax, (4.0, 1.0), (6.8, 1.0))
    arrow(ax, (6.2, 2.0), (7.4, 1.45), "$s, t$", offset=(0.3, 0.0))
    arrow(ax, (9.0, 3.6), (9.9, 2.8))
    arrow(ax, (9.0, 1.4), (9.9, 2.2))
    ax.text(5.5, 0.15, r"$\log|\det \partial z/\partial x| = \sum_{d \in B} s_d(x_A)$;"
            r"   inverse: $x_B = (z_B - t(z_A)) \odot e^{-s(z_A)}$", ha="center", fontsize=10)
    return ax
