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


# ---- chapter 5: GANs


def draw_gan_game(ax=None, conditional: bool = False):
    """The adversarial game: z → G → fake sample; real or fake → D → probability "real".

    With ``conditional=True`` a label y also enters both networks (a conditional GAN).
    """
    ax = canvas(9, 3.9, ax=ax, xlim=(0, 11), ylim=(-0.1, 4.6))
    box(ax, 1.0, 1.2, "noise\n$z \\sim \\mathcal{N}(0, I_L)$", width=1.8, height=0.9, kind="latent")
    box(ax, 3.6, 1.2, "generator\n$G_\\theta$", width=1.5, height=0.9, kind="net")
    box(ax, 6.0, 1.2, "fake\n$G_\\theta(z) \\sim p_g$", width=1.7, height=0.9, kind="data")
    box(ax, 6.0, 3.2, "real\n$x \\sim p_{\\mathrm{data}}$", width=1.7, height=0.9, kind="data")
    box(ax, 8.2, 2.2, "discriminator\n$D_\\phi$", width=1.6, height=0.9, kind="net")
    box(ax, 10.2, 2.2, "$D_\\phi(\\cdot)$\n= P(real)", width=1.3, height=0.9, kind="loss")
    arrow(ax, (1.95, 1.2), (2.8, 1.2))
    arrow(ax, (4.4, 1.2), (5.1, 1.2))
    arrow(ax, (6.9, 1.4), (7.4, 1.95))
    arrow(ax, (6.9, 3.0), (7.4, 2.45))
    arrow(ax, (9.05, 2.2), (9.5, 2.2))
    ax.text(5.5, 0.2, "D: maximise $\\log D(x) + \\log(1 - D(G(z)))$;   G: minimise $\\log(1 - D(G(z)))$ "
            "(or maximise $\\log D(G(z))$)", ha="center", va="center", fontsize=8.5)
    if conditional:
        box(ax, 3.6, 4.15, "label $y$", width=1.2, height=0.5, kind="latent")
        arrow(ax, (3.6, 3.85), (3.6, 1.7), dashed=True)
        arrow(ax, (4.25, 4.15), (8.2, 4.15), style="-", dashed=True)
        arrow(ax, (8.2, 4.15), (8.2, 2.7), dashed=True)
    return ax
