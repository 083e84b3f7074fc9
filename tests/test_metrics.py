"""Sample-quality metrics against direct references; units of likelihood."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from genlib import metrics


def test_bits_per_dim_round_trip():
    assert metrics.nats_to_bpd(64 * math.log(2), 64) == pytest.approx(1.0)
    assert metrics.nats_to_bpd(123.4, 64) * 64 * math.log(2) == pytest.approx(123.4)


def _direct_frechet(a, b):
    """The textbook formula with scipy's general matrix square root."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root)


def test_frechet_distance_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(loc=0.5, size=(400, 6)) @ rng.normal(size=(6, 6))
    assert metrics.frechet_distance(a, b) == pytest.approx(_direct_frechet(a, b), rel=1e-6)


def test_frechet_distance_of_two_halves_of_one_sample_is_small():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20_000, 4))
    assert metrics.frechet_distance(x[:10_000], x[10_000:]) < 0.01
    # the same points shifted by (1, 1, 1, 1): same covariance, ‖Δμ‖² = 4
    assert metrics.frechet_distance(x[:10_000], x[:10_000] + 1.0) == pytest.approx(4.0, abs=1e-6)


def test_precision_recall_identical_sets_and_shift():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(300, 3))
    assert metrics.precision_recall(real, real.copy()) == (1.0, 1.0)
    precision, recall = metrics.precision_recall(real, real + 3.0)
    assert precision < 0.3 and recall < 0.3


def test_precision_recall_collapsed_fake_set_has_precision_but_no_recall():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(400, 2))
    fake = rng.normal(scale=0.05, size=(400, 2))  # every sample near the mode
    precision, recall = metrics.precision_recall(real, fake)
    assert precision > 0.95 and recall < 0.2


def test_classifier_is_accurate_and_features_have_the_documented_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLIB_DATA", str(tmp_path))
    metrics.classifier.cache_clear()
    model = metrics.classifier("digits", verbose=False)
    assert model.test_accuracy > 0.9
    assert (tmp_path / "classifiers").is_dir()
    x = torch.rand(5, 64)
    assert metrics.features(x).shape == (5, 64)
    metrics.classifier.cache_clear()
    again = metrics.classifier("digits", verbose=False)  # loaded from the cache file
    assert torch.equal(again.head.weight, model.head.weight)
    metrics.classifier.cache_clear()


def test_quality_floor_is_far_below_noise(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLIB_DATA", str(tmp_path))
    metrics.classifier.cache_clear()
    floor = metrics.quality_floor()
    from genlib import data
    test = data.images("digits", "test")
    noise = metrics.sample_quality(torch.rand(447, 64), test.x.float() / 16)
    assert floor["frechet"] < noise["frechet"] / 5
    assert floor["precision"] > 0.5 and noise["precision"] < floor["precision"]
    metrics.classifier.cache_clear()


# ----------------------------------------------------------------------------- mode counting


def _ring_samples(n_per_mode, modes, std, seed=0, radius=2.5):
    g = torch.Generator().manual_seed(seed)
    centres = metrics.ring_centres(8, radius)[modes]  # (m, 2)
    return (centres.repeat_interleave(n_per_mode, 0) + std * torch.randn(len(modes) * n_per_mode, 2, generator=g))


def test_ring_centres_match_the_8gaussians_toy():
    from genlib import data
    x = data.toy("8gaussians", 4000, seed=0, noise=0.01)
    nearest = torch.cdist(x, metrics.ring_centres()).min(1).values
    assert nearest.max() < 0.06  # every toy point sits on one of our centres


def test_mode_coverage_all_modes():
    x = _ring_samples(200, list(range(8)), std=0.05)
    out = metrics.mode_coverage(x, metrics.ring_centres(), std=0.05)
    # 3σ in 2-D holds 1 - exp(-9/2) = 98.9% of a Gaussian's mass
    assert out["modes"] == 8 and out["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert out["counts"].tolist() == pytest.approx([198] * 8, abs=5)


def test_mode_coverage_one_mode():
    x = _ring_samples(1600, [3], std=0.05)
    out = metrics.mode_coverage(x, metrics.ring_centres(), std=0.05)
    assert out["modes"] == 1 and out["counts"].argmax() == 3 and out["high_quality"] > 0.97


def test_mode_coverage_off_mode_noise_is_not_high_quality():
    g = torch.Generator().manual_seed(1)
    centre_blob = 0.3 * torch.randn(1000, 2, generator=g)  # at the origin: far from every mode
    out = metrics.mode_coverage(centre_blob, metrics.ring_centres(), std=0.05)
    assert out["modes"] == 0 and out["high_quality"] == 0.0
    # half good samples on 4 modes, half noise between modes: 4 modes, about half high quality
    angle = 2 * math.pi * (torch.arange(8) + 0.5) / 8
    between = 2.5 * torch.stack([angle.cos(), angle.sin()], 1).repeat_interleave(100, 0)
    mixed = torch.cat([_ring_samples(200, [0, 2, 4, 6], std=0.05), between])
    out = metrics.mode_coverage(mixed, metrics.ring_centres(), std=0.05)
    assert out["modes"] == 4 and out["high_quality"] == pytest.approx(0.5 * (1 - math.exp(-4.5)), abs=0.01)
    assert metrics.mode_coverage(mixed, metrics.ring_centres(), std=0.05, min_count=250)["modes"] == 0


def test_mode_coverage_rejects_bad_input():
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\)"):
        metrics.mode_coverage(torch.zeros(5, 3), metrics.ring_centres(), std=0.05)
    with pytest.raises(ValueError, match="std must be > 0"):
        metrics.mode_coverage(torch.zeros(5, 2), metrics.ring_centres(), std=0.0)
