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


def test_feature_network_reaches_98_percent_on_the_test_digits():
    """The committed CNN's weights load (no training) and classify the unseen test digits well."""
    metrics.classifier.cache_clear()
    assert metrics._weights_file("digits").parent == metrics.WEIGHTS  # committed, not trained here
    model = metrics.classifier("digits", verbose=False)
    assert model.test_accuracy >= 0.98
    assert metrics.features(torch.rand(5, 64)).shape == (5, 128)
    assert metrics.features(torch.rand(5, 8, 8)).shape == (5, 128)


def _direct_kid(a, b):
    """The unbiased MMD² with k(u, v) = (u·v/F + 1)³, written with loops over pairs."""
    k = lambda u, v: (u @ v / a.shape[1] + 1) ** 3  # noqa: E731
    m, n = len(a), len(b)
    xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kernel_distance_matches_the_direct_formula():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(30, 5)), rng.normal(loc=0.3, size=(25, 5))
    assert metrics.kernel_distance(a, b) == pytest.approx(_direct_kid(a, b), rel=1e-10)
    assert metrics.kernel_distance(a, b) == pytest.approx(metrics.kernel_distance(b, a), rel=1e-12)


def test_kernel_distance_is_unbiased_on_two_samples_of_one_distribution():
    """Averaged over many pairs of small samples from one distribution, KID is 0 within its standard
    error, while the biased estimate (diagonal terms kept) and the Fréchet distance stay well above 0."""
    rng = np.random.default_rng(5)
    kid, biased, fd = [], [], []
    for _ in range(400):
        a, b = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
        kid.append(metrics.kernel_distance(a, b))
        k = lambda u, v: (u @ v.T / 4 + 1) ** 3  # noqa: E731
        biased.append(k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean())
        fd.append(metrics.frechet_distance(a, b))
    error = np.std(kid) / np.sqrt(len(kid))
    assert abs(np.mean(kid)) < 3 * error
    assert np.mean(biased) > 10 * error and np.mean(fd) > 1.0
    assert min(kid) < 0  # single unbiased estimates can be negative


def test_kernel_distance_grows_with_a_shift_and_rejects_bad_input():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(200, 3))
    assert metrics.kernel_distance(a, a + 1.0) > metrics.kernel_distance(a, a + 0.2) > 0
    for bad in (a[:1], a[:, :2], np.full((5, 3), np.nan)):
        with pytest.raises(ValueError):
            metrics.kernel_distance(bad, a)


def test_quality_floor_is_at_the_test_sets_size_and_far_below_noise():
    from genlib import data

    metrics.classifier.cache_clear()
    test = data.images("digits", "test")
    runs = metrics.quality_floor_runs()
    assert len(runs) == (1000 + 350) // len(test.x)  # disjoint subsets of the training and validation images
    floor = metrics.quality_floor()
    assert set(floor) == {"frechet", "kid", "precision", "recall"}
    assert floor["frechet"] == pytest.approx(np.median([r["frechet"] for r in runs]))
    noise = metrics.sample_quality(torch.rand(len(test.x), 64), test.x.float() / 16)
    assert floor["frechet"] < noise["frechet"] / 5 and floor["kid"] < noise["kid"] / 5
    assert floor["precision"] > 0.5 and noise["precision"] < floor["precision"]
    with pytest.raises(ValueError, match="n must be"):
        metrics.quality_floor_runs(n=1)



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


def test_metrics_does_not_import_the_training_loop():
    """The model modules import metrics; metrics must not pull in genlib.train (models above training)."""
    import subprocess
    import sys

    code = "import sys, genlib.metrics; print(sorted(m for m in sys.modules if m in ('genlib.train', 'genlib.longrun')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_remembered_features_and_radii_are_what_a_fresh_computation_gives():
    from scipy.spatial.distance import cdist

    x = torch.rand(40, 64, generator=torch.Generator().manual_seed(0))
    first = metrics.features(x)
    first[:] = 0  # a caller writing into the result does not change what is remembered
    again = metrics.features(x)
    model = metrics.classifier("digits", verbose=False)
    with torch.no_grad():
        assert np.array_equal(again, model.features(x).double().numpy())
    x[0, 0] += 0.5  # an in-place edit is a new set: its digest differs
    with torch.no_grad():
        assert np.array_equal(metrics.features(x), model.features(x).double().numpy())
    assert not np.array_equal(metrics.features(x)[0], again[0])
    f = again.copy()
    assert np.array_equal(metrics._radii(f, 3), np.sort(cdist(f, f), axis=1)[:, 3])
    assert np.array_equal(metrics._radii(f, 3), metrics._radii(f.copy(), 3))
    assert not np.array_equal(metrics._radii(f, 3), metrics._radii(f, 1))
