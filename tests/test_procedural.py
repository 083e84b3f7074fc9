"""Tests of the procedural river generator (genlib.procedural, Chapter 1)."""
import math

import numpy as np
import pytest
import torch

from genlib import procedural
from genlib.procedural import Latents, RiverConfig, distance_to_path, render, river_path, sample_latents


def reference_path(bits, turn_degrees, step=1.0, heading_degrees=90.0):
    """The river written as the lecture's loop, in complex numbers: an independent reference."""
    position, heading = 0j, complex(math.cos(math.radians(heading_degrees)),
                                     math.sin(math.radians(heading_degrees)))
    left = complex(math.cos(math.radians(turn_degrees)), math.sin(math.radians(turn_degrees)))
    points = [position]
    for bit in bits:
        heading *= left.conjugate() if bit == 1 else left  # 1 = right (clockwise), 0 = left
        position += step * heading
        points.append(position)
    return np.array([[p.real, p.imag] for p in points])


@pytest.mark.parametrize("turn_degrees", [10.0, 37.0, 90.0])
def test_path_matches_reference_loop(turn_degrees):
    bits = torch.randint(0, 2, (25,), generator=torch.Generator().manual_seed(1))
    path = river_path(bits, turn_degrees, step=0.7)
    np.testing.assert_allclose(path.numpy(), reference_path(bits.tolist(), turn_degrees, 0.7), atol=1e-5)


def test_path_shape_and_unit_steps():
    bits = torch.randint(0, 2, (40,), generator=torch.Generator().manual_seed(0))
    path = river_path(bits)
    assert path.shape == (41, 2)
    assert torch.equal(path[0], torch.zeros(2))
    lengths = (path[1:] - path[:-1]).norm(dim=1)
    assert torch.allclose(lengths, torch.ones(40), atol=1e-5)
    assert abs(float(lengths.sum()) - 40.0) < 1e-4


def test_flipping_all_bits_mirrors_the_river():
    bits = torch.randint(0, 2, (40,), generator=torch.Generator().manual_seed(2))
    path, flipped = river_path(bits), river_path(1 - bits)
    assert not torch.allclose(path, flipped, atol=1e-3)
    assert torch.allclose(flipped, path * torch.tensor([-1.0, 1.0]), atol=1e-5)


def test_every_bit_moves_the_river():
    bits = torch.zeros(12, dtype=torch.int64)
    for i in range(12):
        changed = bits.clone()
        changed[i] = 1
        assert not torch.allclose(river_path(bits)[-1], river_path(changed)[-1], atol=1e-4)


def test_always_left_walks_a_circle():
    # A regular polygon with exterior angle alpha: its vertices lie on a circle of radius
    # step / (2 sin(alpha / 2)), centred one radius to the left of the start.
    alpha = math.radians(10.0)
    path = river_path(torch.zeros(36, dtype=torch.int64), 10.0).double()
    radius = 1.0 / (2 * math.sin(alpha / 2))
    centre = path[:-1].mean(0)  # 36 turns of 10 degrees close the polygon: its vertex mean is the centre
    assert torch.allclose((path - centre).norm(dim=1), torch.full((37,), radius, dtype=torch.float64),
                          atol=1e-4)
    assert torch.allclose(path[-1], path[0], atol=1e-4)


def test_same_seed_same_latents_and_image():
    config = RiverConfig(size=32)
    a = sample_latents(config, torch.Generator().manual_seed(7))
    b = sample_latents(config, torch.Generator().manual_seed(7))
    c = sample_latents(config, torch.Generator().manual_seed(8))
    assert torch.equal(a.turns, b.turns) and torch.equal(a.grass, b.grass) and a.n_trees == b.n_trees
    assert torch.equal(render(a, config), render(b, config))
    assert not torch.equal(render(a, config), render(c, config))


def test_latent_distributions():
    config = RiverConfig(n_steps=20, max_trees=4)
    gen = torch.Generator().manual_seed(3)
    draws = [sample_latents(config, gen) for _ in range(2000)]
    bits = torch.stack([d.turns for d in draws]).float()
    assert set(bits.unique().tolist()) == {0.0, 1.0}
    assert abs(float(bits.mean()) - 0.5) < 0.01  # 40,000 fair coins: sd 0.0025
    counts = np.bincount([d.n_trees for d in draws], minlength=config.max_trees + 1)
    assert len(counts) == config.max_trees + 1 and counts.min() > 300  # uniform on 0..4: about 400 each
    grass = torch.stack([d.grass for d in draws])
    assert torch.allclose(grass.mean(0), torch.tensor(config.grass_mu), atol=0.01)


def test_distance_to_path_against_brute_force():
    path = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    points = torch.tensor([[0.5, 1.0], [2.0, 1.0], [-1.0, 0.0], [1.0, 3.0]])
    expected = torch.tensor([0.5, 1.0, 1.0, 1.0])
    assert torch.allclose(distance_to_path(points, path), expected, atol=1e-6)


def test_render_layers():
    config = RiverConfig(size=40)
    grass = torch.tensor([0.3, 0.6, 0.2])
    straight = Latents(turns=torch.tensor([0, 1] * 20), grass=grass, n_trees=0, trees=torch.rand(10, 2))
    image = render(straight, config)
    assert image.shape == (40, 40, 3) and image.min() >= 0 and image.max() <= 1
    # Zig-zagging bits keep the river near the vertical centre line; the corners are grass.
    assert torch.allclose(image[0, 0], grass) and torch.allclose(image[-1, -1], grass)
    assert torch.allclose(image[-1, 20], torch.tensor(procedural.RIVER_RGB))
    # One tree at the top-left corner region paints tree pixels there and nowhere near the river.
    with_tree = Latents(turns=straight.turns, grass=grass, n_trees=1, trees=torch.tensor([[0.1, 0.9]] * 10))
    tree_image = render(with_tree, config)
    assert torch.allclose(tree_image[4, 4], torch.tensor(procedural.TREE_RGB))
    assert torch.equal(tree_image[:, 20:], image[:, 20:])


def test_sample_shape_and_reproducibility():
    config = RiverConfig(size=16, n_steps=10)
    x = procedural.sample(3, config, generator=torch.Generator().manual_seed(0))
    y = procedural.sample(3, config, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 16, 16, 3) and torch.equal(x, y)
