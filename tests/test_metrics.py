"""Sample-quality metrics against direct references; units of likelihood."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from genlib import metrics


def test_bits_per_dim_round_trip():
    assert metrics.nats_to_bpd(64 * math.log(2), 64) == pytest.approx(1.0)
    assert metrics.bpd_to_nats(metrics.nats_to_bpd(123.4, 64), 64) == pytest.approx(123.4)


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
