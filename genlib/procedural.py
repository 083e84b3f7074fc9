"""A procedural landscape generator: noise is latent variables (Chapter 1).

A hand-written program turns a handful of random numbers ``z`` into a picture ``x = G(z)``:

* river turns   ``z_i ~ Bernoulli(1/2)``, i = 1..S: at each step the river turns right (``z_i = 1``)
  or left (``z_i = 0``) by a fixed angle ``alpha`` and then advances one unit along its heading::

      phi_i = phi_{i-1} - alpha * (2 z_i - 1),   p_i = p_{i-1} + step * (cos phi_i, sin phi_i)

* grass colour  ``c ~ Normal(mu_c, sigma_c^2 I)`` in RGB (clipped to [0, 1]);
* tree count    ``n_trees ~ Uniform{0, ..., max_trees}`` and tree positions ``t_j ~ Uniform([0, 1]^2)``.

Everything random is drawn in :func:`sample_latents`; :func:`river_path` and :func:`render` are
deterministic functions of the latents, so the same bits always give the same picture. A learned
generator (Chapters 4, 5 and 8) has the same shape, ``G: Z -> X``; only there ``G`` is fitted to data
instead of written by hand.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

RIVER_RGB = (0.20, 0.45, 0.85)
TREE_RGB = (0.08, 0.28, 0.10)


@dataclass(frozen=True)
class RiverConfig:
    """The generator's fixed settings (not random): the book's defaults."""

    n_steps: int = 40  # S: river segments, one Bernoulli bit each
    turn_degrees: float = 10.0  # alpha: turn per step
    step: float = 1.0  # segment length
    heading_degrees: float = 90.0  # phi_0: the river starts at the bottom, flowing up
    size: int = 64  # rendered image is (size, size, 3)
    river_width: float = 1.6  # in path units
    grass_mu: tuple[float, float, float] = (0.40, 0.65, 0.30)
    grass_sigma: float = 0.10
    max_trees: int = 10  # the most trees a picture can have
    tree_radius: float = 0.035  # as a fraction of the image side


@dataclass(frozen=True)
class Latents:
    """One draw of every random choice the generator makes."""

    turns: torch.Tensor  # (S,) int64 bits: 1 = turn right, 0 = turn left
    grass: torch.Tensor  # (3,) RGB in [0, 1]
    n_trees: int  # in {0, ..., max_trees}
    trees: torch.Tensor  # (max_trees, 2) positions in [0, 1]^2 (x right, y up); the first n_trees are drawn


def sample_latents(config: RiverConfig = RiverConfig(), generator: torch.Generator | None = None) -> Latents:
    """Draw ``z = (turns, grass, n_trees, trees)``; the only random function in this module."""
    turns = torch.randint(0, 2, (config.n_steps,), generator=generator)  # (S,) Bernoulli(1/2)
    eps = torch.randn(3, generator=generator)  # (3,)
    grass = (torch.tensor(config.grass_mu) + config.grass_sigma * eps).clamp(0.0, 1.0)
    n_trees = int(torch.randint(0, config.max_trees + 1, (), generator=generator))
    trees = torch.rand(config.max_trees, 2, generator=generator)  # (max_trees, 2)
    return Latents(turns=turns, grass=grass, n_trees=n_trees, trees=trees)


def river_path(turns: torch.Tensor, turn_degrees: float = 10.0, step: float = 1.0,
               heading_degrees: float = 90.0) -> torch.Tensor:
    """Points of the river for the bits ``turns`` (S,): shape (S + 1, 2), starting at the origin.

    Bit ``z_i`` turns the heading by ``-alpha`` (right) if 1 or ``+alpha`` (left) if 0; segment ``i``
    is then drawn along the new heading ``phi_i``. The starting heading is ``phi_0``.
    """
    turns = torch.as_tensor(turns)
    alpha = math.radians(turn_degrees)
    sign = 1.0 - 2.0 * turns.double()  # (S,) +1 = left, -1 = right
    phi = math.radians(heading_degrees) + alpha * torch.cumsum(sign, 0)  # (S,) phi_1..phi_S
    moves = step * torch.stack([torch.cos(phi), torch.sin(phi)], 1)  # (S, 2) along phi_1..phi_S
    points = torch.cat([torch.zeros(1, 2, dtype=torch.float64), torch.cumsum(moves, 0)])  # (S+1, 2)
    return points.float()


def distance_to_path(points: torch.Tensor, path: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from each of ``points`` (P, 2) to the polyline ``path`` (M, 2): (P,)."""
    a, b = path[:-1], path[1:]  # (S, 2) segment starts and ends
    ab = b - a  # (S, 2)
    ap = points[:, None, :] - a[None]  # (P, S, 2)
    t = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)  # (P, S)
    nearest = a[None] + t[..., None] * ab[None]  # (P, S, 2)
    return (points[:, None, :] - nearest).norm(dim=-1).min(dim=1).values  # (P,)


def render(z: Latents, config: RiverConfig = RiverConfig()) -> torch.Tensor:
    """The picture ``x = G(z)``: an RGB image (size, size, 3) with values in [0, 1].

    The window shows ``[-W/2, W/2] x [0, W]`` with ``W = S * step``: the river enters at the middle
    of the bottom edge. Layers, back to front: grass, trees, river.
    """
    s, length = config.size, config.n_steps * config.step
    centres = (torch.arange(s, dtype=torch.float32) + 0.5) / s  # (S,) in (0, 1)
    u, v = torch.meshgrid(centres, centres.flip(0), indexing="xy")  # (S, S) each; v = 1 at the top row
    image = z.grass.float().expand(s, s, 3).clone()  # (S, S, 3)
    for x_t, y_t in z.trees[: z.n_trees].tolist():
        inside = (u - x_t) ** 2 + (v - y_t) ** 2 <= config.tree_radius ** 2  # (S, S)
        image[inside] = torch.tensor(TREE_RGB)
    world = torch.stack([(u - 0.5) * length, v * length], -1).reshape(-1, 2)  # (S*S, 2)
    path = river_path(z.turns, config.turn_degrees, config.step, config.heading_degrees)
    wet = (distance_to_path(world, path) <= config.river_width / 2).reshape(s, s)  # (S, S)
    image[wet] = torch.tensor(RIVER_RGB)
    return image


def sample(n: int, config: RiverConfig = RiverConfig(), *,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` landscapes ``x = G(z), z ~ p(z)``: shape (n, size, size, 3)."""
    return torch.stack([render(sample_latents(config, generator), config) for _ in range(n)])
