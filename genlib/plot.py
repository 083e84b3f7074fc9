"""Plotting helpers, so chapters show figures without repeating matplotlib boilerplate.

Every function draws on an ``ax`` it is given (or a new one) and returns the axes, so a chapter can
compose panels: ``fig, axes = plt.subplots(1, 3); plot.scatter(x, ax=axes[0]); ...``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

Bounds = tuple[float, float, float, float]  # (x_min, x_max, y_min, y_max)


def _axes(ax=None, figsize=(4, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def image_grid(x, shape: tuple[int, int] = (8, 8), nrow: int | None = None, ax=None,
               title: str | None = None, vmax: float | None = None, pad: int = 1):
    """Tile flattened images ``x`` (N, H*W) into one grey picture, ``nrow`` images per row."""
    x = _numpy(x).reshape(-1, *shape).astype(float)  # (N, H, W)
    n, (h, w) = len(x), shape
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / nrow))
    vmax = float(x.max()) if vmax is None else vmax
    canvas = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad), vmax * 0.35)
    for i, img in enumerate(x):
        r, c = divmod(i, nrow)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    ax = _axes(ax, figsize=(nrow * 0.5 * w / 8 + 0.5, rows * 0.5 * h / 8 + 0.5))
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def scatter(x, ax=None, title: str | None = None, bounds: Bounds | None = (-4, 4, -4, 4),
            s: float = 3, alpha: float = 0.5, **kwargs):
    """Scatter plot of 2-D points ``x`` (N, 2) with equal axes."""
    x = _numpy(x)
    ax = _axes(ax)
    ax.scatter(x[:, 0], x[:, 1], s=s, alpha=alpha, **kwargs)
    _finish_2d(ax, bounds, title)
    return ax


def grid_points(bounds: Bounds = (-4, 4, -4, 4), steps: int = 120) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A ``steps x steps`` grid over ``bounds``: flattened points (steps², 2) and the two mesh arrays."""
    xs = np.linspace(bounds[0], bounds[1], steps)
    ys = np.linspace(bounds[2], bounds[3], steps)
    gx, gy = np.meshgrid(xs, ys)
    points = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    return points, gx, gy


def density(log_prob: Callable[[torch.Tensor], torch.Tensor], ax=None, bounds: Bounds = (-4, 4, -4, 4),
            steps: int = 120, title: str | None = None, log: bool = False, contours: bool = True,
            cmap: str = "viridis"):
    """Heat map (and contours) of ``exp(log_prob)`` over a grid; ``log=True`` shows ``log_prob`` itself."""
    points, gx, gy = grid_points(bounds, steps)
    with torch.no_grad():
        values = _numpy(log_prob(points)).reshape(gx.shape)
    shown = values if log else np.exp(values)
    ax = _axes(ax)
    ax.pcolormesh(gx, gy, shown, cmap=cmap, shading="auto")
    if contours:
        ax.contour(gx, gy, shown, levels=6, colors="white", linewidths=0.5, alpha=0.6)
    _finish_2d(ax, bounds, title)
    return ax


def _finish_2d(ax, bounds: Bounds | None, title: str | None) -> None:
    if bounds is not None:
        ax.set_xlim(bounds[0], bounds[1]), ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$"), ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)


def history(h, ax=None, ylabel: str = "loss", title: str | None = None):
    """Training and validation curves of a :class:`genlib.train.History`, best epoch marked."""
    ax = _axes(ax, figsize=(5, 3))
    epochs = np.arange(1, h.epochs + 1)
    ax.plot(epochs, h.train, label="train")
    if h.val:
        ax.plot(epochs, h.val, label="validation")
        ax.axvline(h.best_epoch + 1, color="grey", ls=":", lw=1, label="best")
    ax.set_xlabel("epoch"), ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return ax


def curves(x: Sequence[float], ys: dict[str, Sequence[float]], ax=None, xlabel: str = "",
           ylabel: str = "", title: str | None = None, logx: bool = False, marker: str = "o"):
    """Several named curves over one x axis, e.g. train and test log-likelihood against bandwidth."""
    ax = _axes(ax, figsize=(5, 3))
    for name, y in ys.items():
        ax.plot(x, y, marker=marker, ms=3, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return ax
