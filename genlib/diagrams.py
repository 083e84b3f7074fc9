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


# ---- chapters 1, 2, 4: the taxonomy, the latent-variable model, the VAE


def draw_taxonomy(ax=None):
    """The taxonomy of generative models by what they offer of the density (after Goodfellow 2016,
    as redrawn in Johnson's lecture 19): explicit tractable / explicit approximate / implicit, with
    the book's chapter for each family."""
    ax = canvas(13, 4.8, ax, xlim=(0, 17), ylim=(-0.3, 6.0))
    box(ax, 8.5, 5.4, "generative models", width=3.2, height=0.6, kind="plain")
    box(ax, 5.4, 4.0, "explicit density $p_\\theta(x)$", width=3.4, height=0.6, kind="data")
    box(ax, 14.5, 4.0, "implicit density\n(a sampler only)", width=3.0, height=0.8, kind="latent")
    arrow(ax, (7.6, 5.1), (5.9, 4.3))
    arrow(ax, (9.4, 5.1), (13.9, 4.4))
    box(ax, 2.75, 2.7, "tractable: exact $\\log p_\\theta(x)$", width=3.6, height=0.6, kind="data")
    box(ax, 8.15, 2.7, "approximate: a bound,\nor known up to $Z(\\theta)$", width=3.4, height=0.8, kind="data")
    arrow(ax, (4.7, 3.7), (3.4, 3.0))
    arrow(ax, (6.1, 3.7), (7.5, 3.1))
    leaves = [
        (1.4, "autoregressive:\nPixelCNN, NADE, MADE\n(ch. 6)", 2.75),
        (4.1, "normalizing flows:\nNICE, RealNVP\n(ch. 7)", 2.75),
        (6.8, "variational:\nVAE (ch. 4),\ndiffusion (ch. 8)", 8.15),
        (9.5, "energy, Markov chain:\nEBM (ch. 3),\nBoltzmann machines", 8.15),
        (14.5, "direct:\nGAN (ch. 5)", 14.5),
    ]
    for x, text, parent_x in leaves:
        box(ax, x, 1.0, text, width=2.55, height=1.15, kind="net", fontsize=8.5)
        arrow(ax, (parent_x, 2.3 if parent_x < 14 else 3.6), (x, 1.6))
    ax.text(0.2, -0.2, "Gaussians, mixtures and the KDE (chapters 1-2) are tractable explicit densities "
            "without networks.", fontsize=8, ha="left", va="center", color="0.35")
    return ax


def draw_latent_variable_model(ax=None, latent: str = "z", observed: str = "x", plate: str = "N",
                               params: tuple[str, ...] = ("\\theta",), inference: str | None = "\\phi",
                               prior_params: tuple[str, ...] = ()):
    """The latent-variable model as a directed graphical model: ``z -> x`` inside a plate over the
    ``N`` data points, the generative parameters outside (``params`` into x, ``prior_params`` into z,
    e.g. a mixture's weights); optionally the inference model ``q_phi(z | x)`` as a dashed arrow from
    x back to z."""
    ax = canvas(4.6, 3.2, ax, xlim=(0, 5.6), ylim=(0, 4))
    from matplotlib.patches import FancyBboxPatch
    ax.add_patch(FancyBboxPatch((0.7, 0.35), 3.0, 3.3, boxstyle="round,pad=0.05", fc="none", ec="0.4", lw=1))
    ax.text(3.55, 0.5, f"${plate}$", ha="right", va="bottom", fontsize=11)
    node(ax, 2.2, 2.9, f"${latent}^{{(n)}}$", radius=0.45)
    node(ax, 2.2, 1.2, f"${observed}^{{(n)}}$", radius=0.45, observed=True)
    arrow(ax, (2.2, 2.45), (2.2, 1.65))
    ax.text(2.05, 2.05, "$p_\\theta(x\\mid z)$", ha="right", va="center", fontsize=9)
    ax.text(1.65, 2.9, "$p(z)$", ha="right", va="center", fontsize=9)
    for i, name in enumerate(params):
        ax.plot(4.6, 1.2 + 0.6 * i, "o", color="0.2", ms=4)
        ax.text(4.75, 1.2 + 0.6 * i, f"${name}$", va="center", fontsize=11)
        arrow(ax, (4.5, 1.2 + 0.6 * i), (2.7, 1.25))
    for i, name in enumerate(prior_params):
        ax.plot(0.25, 3.55 - 0.5 * i, "o", color="0.2", ms=4)
        ax.text(0.25, 3.75 - 0.5 * i, f"${name}$", ha="center", va="bottom", fontsize=11)
        arrow(ax, (0.35, 3.5 - 0.5 * i), (1.8, 3.2))
    if inference:
        ax.add_patch(FancyArrowPatch((2.6, 1.5), (2.6, 2.55), arrowstyle="-|>", mutation_scale=12, color="C3",
                                     lw=1.2, linestyle="--", connectionstyle="arc3,rad=-0.5"))
        ax.text(3.0, 1.95, f"$q_{{{inference}}}(z\\mid x)$", color="C3", ha="left", va="top", fontsize=9)
        ax.plot(4.6, 2.9, "o", color="C3", ms=4)
        ax.text(4.75, 2.9, f"${inference}$", va="center", fontsize=11, color="C3")
        arrow(ax, (4.5, 2.85), (2.95, 2.15), color="C3", dashed=True)
    return ax


def draw_vae(ax=None):
    """The VAE's computation: encoder -> (mu, log sigma^2) -> z = mu + sigma * eps -> decoder ->
    p_theta(x | z), with the loss terms; the noise eps enters from the side, so gradients flow from
    the loss to mu and sigma (solid, blue) and never through a random draw."""
    ax = canvas(12, 3.8, ax, xlim=(0, 16), ylim=(0, 5.1))
    box(ax, 1.0, 2.6, "$x$\nimage", width=1.3, height=1.0, kind="data")
    box(ax, 3.4, 2.6, "encoder\n$q_\\phi(z\\mid x)$", width=2.0, height=1.2, kind="net")
    box(ax, 6.0, 3.4, "$\\mu_\\phi(x)$", width=1.3, height=0.6, kind="latent")
    box(ax, 6.0, 1.8, "$\\log\\sigma^2_\\phi(x)$", width=1.5, height=0.6, kind="latent")
    box(ax, 8.6, 2.6, "$z = \\mu + \\sigma \\odot \\varepsilon$", width=2.2, height=0.8, kind="latent")
    box(ax, 8.6, 0.6, "$\\varepsilon \\sim \\mathcal{N}(0, I)$", width=2.2, height=0.6, kind="plain")
    box(ax, 11.3, 2.6, "decoder\n$p_\\theta(x\\mid z)$", width=2.0, height=1.2, kind="net")
    box(ax, 14.2, 3.5, "reconstruction\n$-\\log p_\\theta(x\\mid z)$", width=2.8, height=0.9, kind="loss", fontsize=9)
    box(ax, 14.2, 1.4, "rate\n$\\mathrm{KL}(q_\\phi(z\\mid x)\\,\\|\\,p(z))$", width=2.8, height=0.9, kind="loss",
        fontsize=9)
    arrow(ax, (1.7, 2.6), (2.4, 2.6))
    arrow(ax, (4.4, 2.9), (5.35, 3.35))
    arrow(ax, (4.4, 2.3), (5.25, 1.85))
    arrow(ax, (6.65, 3.3), (7.5, 2.85))
    arrow(ax, (6.75, 1.9), (7.5, 2.35))
    arrow(ax, (8.6, 0.95), (8.6, 2.15), dashed=True, color="0.45")
    ax.text(8.45, 1.15, "noise: no parameters", fontsize=8, color="0.35", ha="right")
    arrow(ax, (9.7, 2.6), (10.3, 2.6))
    arrow(ax, (12.3, 2.9), (12.85, 3.35))
    arrow(ax, (6.75, 1.6), (12.8, 1.3), color="0.45")  # rate <- log sigma^2
    ax.add_patch(FancyArrowPatch((6.3, 3.1), (12.8, 1.6), arrowstyle="-|>", mutation_scale=12, color="0.45", lw=1.2,
                                 shrinkA=2, shrinkB=2, connectionstyle="arc3,rad=0.3"))  # rate <- mu: both enter the KL
    ax.text(10.2, 1.2, "$\\mu, \\log\\sigma^2$: closed form", fontsize=8, color="0.35", ha="center", va="top")
    arrow(ax, (1.0, 3.1), (1.0, 4.3), color="0.45", style="-")  # the image is also the reconstruction's target
    arrow(ax, (1.0, 4.3), (12.8, 3.95), color="0.45")
    ax.text(6.9, 4.3, "$x$: the target of the reconstruction term", fontsize=8, color="0.35", ha="center",
            va="bottom")
    ax.text(8.0, 4.85, "gradients flow back along the solid arrows: $z$ is a differentiable function of "
            "$\\mu_\\phi, \\sigma_\\phi$ (the reparameterisation)", ha="center", fontsize=9, color="C0")
    return ax


# ---- chapter 3: energy-based models


def draw_cd_loop(ax=None):
    """Contrastive divergence: data push the energy down, Langevin samples from a replay buffer push it up."""
    ax = canvas(10, 4.2, ax, xlim=(0, 12.5), ylim=(0, 5))
    box(ax, 1.3, 3.9, "data\n$x \\sim p_{data}$", width=2.0, height=0.95, kind="data")
    box(ax, 1.3, 1.1, "replay buffer\n(persistent chains)", width=2.2, height=0.95, kind="latent")
    box(ax, 5.0, 1.1, "Langevin, $T$ steps\n$x \\leftarrow x - \\frac{\\eta}{2}\\nabla_x E_\\theta(x) + \\sigma\\varepsilon$",
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
    arrow(ax, (10.8, 3.3), (6.3, 4.25), "$\\nabla_\\theta$: one Adam step on $\\theta$", dashed=True, offset=(0.9, 0.42))
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


# ---- chapter 5: GANs


def draw_gan_game(ax=None, conditional: bool = False):
    """The adversarial game: z → G → fake sample; real or fake → D → probability "real".

    With ``conditional=True`` a label y also enters both networks (a conditional GAN).
    """
    ax = canvas(9, 3.9, ax=ax, xlim=(0, 11), ylim=(-0.1, 4.6))
    y = ", y" if conditional else ""
    box(ax, 1.0, 1.2, "noise\n$z \\sim \\mathcal{N}(0, I_L)$", width=1.8, height=0.9, kind="latent")
    box(ax, 3.6, 1.2, "generator\n$G_\\theta$", width=1.5, height=0.9, kind="net")
    box(ax, 6.0, 1.2, f"fake\n$G_\\theta(z{y})$", width=1.7, height=0.9, kind="data")
    box(ax, 6.0, 3.2, f"real\n$(x{y}) \\sim p_{{\\mathrm{{data}}}}$", width=1.7, height=0.9, kind="data")
    box(ax, 8.2, 2.2, "discriminator\n$D_\\phi$", width=1.6, height=0.9, kind="net")
    box(ax, 10.2, 2.2, f"$D_\\phi(\\cdot{y})$\n= P(real)", width=1.3, height=0.9, kind="loss")
    arrow(ax, (1.95, 1.2), (2.8, 1.2))
    arrow(ax, (4.4, 1.2), (5.1, 1.2))
    arrow(ax, (6.9, 1.4), (7.4, 1.95))
    arrow(ax, (6.9, 3.0), (7.4, 2.45))
    arrow(ax, (9.05, 2.2), (9.5, 2.2))
    ax.text(5.5, 0.2, f"D: maximise $\\log D(x{y}) + \\log(1 - D(G(z{y}){y}))$;   G: minimise $\\log(1 - D(G(z{y}){y}))$ "
            f"(or maximise $\\log D(G(z{y}){y})$)", ha="center", va="center", fontsize=8.5)
    if conditional:
        box(ax, 3.6, 4.15, "label $y$", width=1.2, height=0.5, kind="latent")
        arrow(ax, (3.6, 3.85), (3.6, 1.7), dashed=True)
        arrow(ax, (4.25, 4.15), (8.2, 4.15), style="-", dashed=True)
        arrow(ax, (8.2, 4.15), (8.2, 2.7), dashed=True)
    return ax


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
    ax.text(W / 2, H + 0.75, "column j", ha="center", va="bottom", fontsize=fontsize - 1, color="0.3")
    ax.text(-0.85, H / 2, "row i", ha="right", va="center", rotation=90, fontsize=fontsize - 1, color="0.3")
    ax.set_xlim(-1.4, W + 0.1), ax.set_ylim(-0.1, H + 1.4)
    if title:
        ax.set_title(title, fontsize=fontsize + 1)
    return ax


# ---- chapter 7: normalizing flows


def draw_flow_chain(ax=None, n_layers: int = 3):
    """A flow as a chain x = h_0 -> h_1 -> … -> h_M = z: forward arrows normalise (density),
    the dashed backward arrows sample (one pass through the inverses)."""
    width = 2.2 * (n_layers + 1) + 1.2
    ax = canvas(width * 0.85, 2.6, ax, xlim=(0, width), ylim=(0.2, 3.2))
    names = ["$x = h_0$"] + [f"$h_{k}$" for k in range(1, n_layers)] + ["$z = h_M$"]
    xs = [1.0 + 2.2 * i for i in range(n_layers + 1)]
    for i, (x, name) in enumerate(zip(xs, names)):
        kind = "data" if i == 0 else "latent" if i == n_layers else "plain"
        box(ax, x, 1.7, name, width=1.3, height=0.7, kind=kind)
    for i in range(n_layers):
        label = f"$f_{i + 1}$" if i < n_layers - 1 else "$f_M$"
        arrow(ax, (xs[i] + 0.68, 1.85), (xs[i + 1] - 0.68, 1.85), label)
        inv = f"$f_{i + 1}^{{-1}}$" if i < n_layers - 1 else "$f_M^{-1}$"
        arrow(ax, (xs[i + 1] - 0.68, 1.5), (xs[i] + 0.68, 1.5), inv, dashed=True, offset=(0, -0.55))
    ax.text(xs[-1], 2.45, r"$p_Z = \mathcal{N}(0, I)$", ha="center", fontsize=10)
    ax.text((xs[0] + xs[-1]) / 2, 2.75,
            r"density: $\log p(x) = \log p_Z(z) + \sum_m \log|\det \partial h_m / \partial h_{m-1}|$",
            ha="center", fontsize=10)
    ax.text((xs[0] + xs[-1]) / 2, 0.45, r"sampling: $z \sim p_Z$, then $x = f_1^{-1}(\cdots f_M^{-1}(z))$",
            ha="center", fontsize=10)
    return ax


def draw_coupling_layer(ax=None):
    """An affine coupling layer: the kept half x_A passes through and feeds a network that gives
    the shift t and log-scale s of the other half, z_B = x_B ⊙ exp(s) + t; the inverse reuses s, t."""
    ax = canvas(9, 4.2, ax, xlim=(0, 11), ylim=(0, 5))
    box(ax, 0.9, 2.5, "$x$", width=1.0, kind="data")
    box(ax, 3.0, 4.0, r"$x_A$" + "\n(kept)", width=2.0, height=0.9, kind="data")
    box(ax, 3.0, 1.0, r"$x_B$" + "\n(transformed)", width=2.0, height=0.9, kind="data")
    box(ax, 5.5, 2.5, "network\n" + r"$s(x_A),\ t(x_A)$", width=2.0, height=1.0, kind="net")
    box(ax, 8.0, 1.0, r"$z_B = x_B \odot e^{s} + t$", width=2.4, height=0.9, kind="plain")
    box(ax, 8.0, 4.0, r"$z_A = x_A$", width=2.0, height=0.9, kind="plain")
    box(ax, 10.3, 2.5, "$z$", width=1.0, kind="latent")
    arrow(ax, (1.4, 2.7), (2.0, 3.8), r"mask $\mathbb{1}_A$", offset=(-0.55, 0.05))
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


# ----------------------------------------------------------------------------- chapter 9


def draw_capability_map(members: dict[str, tuple[bool, bool, bool]],
                        sets: tuple[str, str, str] = ("scores $\\log p(x)$", "encodes $x \\to z$",
                                                      "samples in one pass"), ax=None):
    """Three overlapping discs (score, encode, fast sampling) with each family written in the region
    its three answers put it in; ``members`` maps a family's label to those answers."""
    import numpy as np
    from matplotlib.patches import Circle as Disc

    ax = canvas(7, 6, ax, xlim=(-2.6, 2.6), ylim=(-2.3, 2.2))
    centres = [(0.0, 0.62), (-0.62, -0.42), (0.62, -0.42)]
    colours = [COLORS["data"], COLORS["latent"], COLORS["net"]]
    for (cx, cy), colour, name, (tx, ty) in zip(centres, colours, sets, [(0, 2.0), (-1.75, -1.85), (1.75, -1.85)]):
        ax.add_patch(Disc((cx, cy), 1.15, fc=colour, ec="0.3", lw=1, alpha=0.55))
        ax.text(tx, ty, name, ha="center", va="center", fontsize=11, weight="bold")
    # a label's place: the centroid of the grid points with exactly its pattern of memberships
    xs, ys = np.meshgrid(np.linspace(-2.4, 2.4, 241), np.linspace(-2.2, 2.2, 221))
    inside = [np.hypot(xs - cx, ys - cy) < 1.15 for cx, cy in centres]
    by_region: dict[tuple[bool, bool, bool], list[str]] = {}
    for label, pattern in members.items():
        by_region.setdefault(tuple(bool(p) for p in pattern), []).append(label)
    for pattern, labels in by_region.items():
        if not any(pattern):
            x, y = -2.45, 1.7  # outside every disc: the top-left corner
            ax.text(x, y, "\n".join(labels), ha="left", va="top", fontsize=9.5)
            continue
        mask = np.logical_and.reduce([m if p else ~m for m, p in zip(inside, pattern)])
        x, y = float(xs[mask].mean()), float(ys[mask].mean())
        ax.text(x, y, "\n".join(labels), ha="center", va="center", fontsize=9.5)
    return ax
