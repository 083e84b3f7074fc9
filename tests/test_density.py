"""genlib.density against independent references: scipy, scikit-learn, and sample moments."""
import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.mixture import GaussianMixture as SkMixture

from genlib import density
from genlib.data import toy


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def blobs(n=600, seed=0):
    """Three well-separated 2-D Gaussian blobs: an easy problem for EM and for gradient ascent."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    z = rng.integers(0, 3, n)
    return torch.as_tensor(centres[z] + 0.5 * rng.standard_normal((n, 2)))


def random_spd(D, rng):
    A = rng.standard_normal((D, D))
    return A @ A.T + 0.5 * np.eye(D)


# ----------------------------------------------------------------------------- Gaussian


@pytest.mark.parametrize("D", [1, 2, 5])
def test_gaussian_log_prob_matches_scipy(D):
    rng = np.random.default_rng(D)
    mu, cov = rng.standard_normal(D), random_spd(D, rng)
    x = rng.standard_normal((50, D)) * 2
    ours = density.Gaussian(mu, cov).log_prob(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(ours, stats.multivariate_normal(mu, cov).logpdf(x), rtol=1e-10, atol=1e-10)


def test_gaussian_mle_is_sample_mean_and_biased_covariance():
    x = np.random.default_rng(1).standard_normal((200, 3)) @ np.array([[1, 0, 0], [0.5, 2, 0], [0, 1, 0.3]])
    g = density.Gaussian().fit(torch.as_tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(g.mu.numpy(), x.mean(0), atol=1e-5)
    np.testing.assert_allclose(g.cov.numpy(), np.cov(x.T, bias=True), atol=1e-5)
    assert g.log_prob(torch.zeros(4, 3)).dtype == torch.float32  # answers in the input's dtype


def test_gaussian_mle_beats_perturbed_parameters():
    x = torch.as_tensor(np.random.default_rng(2).standard_normal((300, 2)) + 1.0)
    g = density.Gaussian().fit(x)
    best = density.mean_log_prob(g, x)
    for mu, cov in [(g.mu + 0.1, g.cov), (g.mu, g.cov * 1.1), (g.mu, g.cov * 0.9)]:
        assert density.mean_log_prob(density.Gaussian(mu, cov), x) < best


def test_gaussian_sample_moments():
    rng = np.random.default_rng(3)
    mu, cov = np.array([1.0, -2.0]), random_spd(2, rng)
    x = density.Gaussian(mu, cov).sample(20_000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 2) and x.dtype == torch.float32
    se = np.sqrt(np.diag(cov) / len(x))
    assert np.all(np.abs(x.numpy().mean(0) - mu) < 4 * se)
    np.testing.assert_allclose(np.cov(x.numpy().T), cov, rtol=0.05, atol=0.05)


# ----------------------------------------------------------------------------- mixture


def sklearn_mixture(pi, mu, cov, covariance="full"):
    sk = SkMixture(len(pi), covariance_type=covariance)
    sk.weights_, sk.means_ = pi, mu
    sk.covariances_ = cov if covariance == "full" else np.diagonal(cov, axis1=1, axis2=2)
    # precisions_cholesky_: an upper-triangular U with U U^T = Sigma^-1, i.e. U = inv(chol(Sigma))^T
    chol = np.linalg.cholesky(cov)
    prec_chol = np.stack([np.linalg.inv(c).T for c in chol])
    sk.precisions_cholesky_ = prec_chol if covariance == "full" else np.diagonal(prec_chol, axis1=1, axis2=2)
    return sk


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_mixture_log_prob_matches_sklearn(covariance):
    rng = np.random.default_rng(4)
    K, D = 4, 3
    pi = rng.dirichlet(np.ones(K))
    mu = 2 * rng.standard_normal((K, D))
    cov = np.stack([random_spd(D, rng) for _ in range(K)])
    if covariance == "diag":
        cov = np.stack([np.diag(np.diag(c)) for c in cov])
    x = 3 * rng.standard_normal((100, D))
    ours = density.GaussianMixture.from_params(pi, mu, cov, covariance).log_prob(torch.as_tensor(x))
    expected = sklearn_mixture(pi, mu, cov, covariance).score_samples(x)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-9, atol=1e-9)


def test_mixture_log_prob_is_stable_far_from_the_data():
    """Naive sum of densities underflows to log 0 = -inf; log-sum-exp does not."""
    model = density.GaussianMixture.from_params([0.5, 0.5], [[0.0], [1.0]], [[[1e-2]], [[1e-2]]])
    x = torch.tensor([[60.0]], dtype=torch.float64)
    naive = torch.log(torch.exp(model.log_joint(x)).sum(1))
    assert torch.isinf(naive).all()
    exact = math.log(0.5) + stats.norm(1.0, 0.1).logpdf(60.0) + np.log1p(np.exp(
        stats.norm(0.0, 0.1).logpdf(60.0) - stats.norm(1.0, 0.1).logpdf(60.0)))
    assert float(model.log_prob(x)) == pytest.approx(exact, rel=1e-12)


def test_responsibilities_are_bayes_rule():
    model = density.GaussianMixture.from_params([0.3, 0.7], [[0.0, 0.0], [1.0, 1.0]],
                                                [np.eye(2), 2 * np.eye(2)])
    x = torch.randn(10, 2, dtype=torch.float64)
    joint = np.stack([w * stats.multivariate_normal(m, c).pdf(x.numpy())
                      for w, m, c in zip(model.pi.numpy(), model.mu.numpy(), model.cov.numpy())], 1)
    np.testing.assert_allclose(model.responsibilities(x).numpy(), joint / joint.sum(1, keepdims=True),
                               rtol=1e-10)


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_em_never_decreases_the_likelihood(covariance):
    x = toy("8gaussians", 500, seed=1)
    model = density.GaussianMixture(6, covariance).fit_em(
        x, iterations=60, tol=None, generator=torch.Generator().manual_seed(0))
    steps = np.diff(model.history)
    assert len(model.history) == 61
    assert steps.min() > -1e-6
    assert model.history[-1] > model.history[0] + 0.5  # EM improved a lot over its init


def test_em_step_matches_sklearn_from_the_same_start():
    """One EM iteration of ours equals one of scikit-learn's, started from the same parameters."""
    x = blobs(300)
    model = density.GaussianMixture(3).init(x, generator=torch.Generator().manual_seed(0))
    sk = SkMixture(3, covariance_type="full", max_iter=1, reg_covar=model.reg, tol=0,
                   weights_init=model.pi.numpy(), means_init=model.mu.numpy(),
                   precisions_init=np.linalg.inv(model.cov.numpy()))
    with pytest.warns(Warning):  # "did not converge" after one iteration
        sk.fit(x.numpy())
    model.m_step(x, model.e_step(x)[0])
    np.testing.assert_allclose(model.pi.numpy(), sk.weights_, rtol=1e-6)
    np.testing.assert_allclose(model.mu.numpy(), sk.means_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.cov.numpy(), sk.covariances_, rtol=1e-6, atol=1e-8)


def test_em_snapshots_replay_the_history():
    x = blobs(200)
    model = density.GaussianMixture(3).fit_em(x, iterations=5, tol=None, keep_snapshots=True,
                                              generator=torch.Generator().manual_seed(1))
    assert len(model.snapshots) == len(model.history) == 6
    replay = [density.mean_log_prob(s, x) for s in model.snapshots]
    np.testing.assert_allclose(replay, model.history, rtol=1e-12)


def test_gradient_ascent_climbs_and_lands_near_em():
    x = blobs(400)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731  same init for both
    em = density.GaussianMixture(3).fit_em(x, iterations=100, generator=gen())
    gd = density.GaussianMixture(3).fit_gradient(x, steps=150, lr=0.1, generator=gen())
    assert len(gd.history) == 151
    assert gd.history[-1] > gd.history[0] + 0.5
    assert gd.history[-1] == pytest.approx(em.history[-1], abs=0.02)
    assert density.mean_log_prob(gd, x) == pytest.approx(gd.history[-1], abs=1e-9)


def test_mixture_sample_moments():
    pi = np.array([0.2, 0.8])
    mu = np.array([[-2.0, 0.0], [2.0, 1.0]])
    cov = np.stack([np.eye(2) * 0.5, np.array([[1.0, 0.3], [0.3, 0.5]])])
    model = density.GaussianMixture.from_params(pi, mu, cov)
    x, z = model.sample(20_000, generator=torch.Generator().manual_seed(0), return_z=True)
    assert x.shape == (20_000, 2) and z.shape == (20_000,)
    mean = pi @ mu
    second = sum(p * (c + np.outer(m, m)) for p, m, c in zip(pi, mu, cov))
    total_cov = second - np.outer(mean, mean)
    se = np.sqrt(np.diag(total_cov) / len(x))
    assert np.all(np.abs(x.numpy().mean(0) - mean) < 4 * se)
    assert abs(float((z == 0).double().mean()) - 0.2) < 4 * math.sqrt(0.2 * 0.8 / len(z))
    np.testing.assert_allclose(np.cov(x.numpy().T), total_cov, rtol=0.05, atol=0.05)


def test_bad_arguments_raise_one_line_errors():
    with pytest.raises(ValueError, match="covariance"):
        density.GaussianMixture(3, covariance="spherical")
    with pytest.raises(ValueError, match="init"):
        density.GaussianMixture(3).fit_em(blobs(50), init="bogus")
    with pytest.raises(ValueError, match="K must be"):
        density.GaussianMixture(0)


# ----------------------------------------------------------------------------- KDE


@pytest.mark.parametrize("bw_method", ["scott", "silverman", 0.3])
def test_kde_matches_scipy(bw_method):
    rng = np.random.default_rng(5)
    train = rng.standard_normal((300, 2)) @ np.array([[1.0, 0.4], [0.0, 0.6]])
    query = 2 * rng.standard_normal((100, 2))
    ours = density.KDE(bw_method=bw_method, chunk=37).fit(torch.as_tensor(train)).log_prob(torch.as_tensor(query))
    expected = stats.gaussian_kde(train.T, bw_method=bw_method).logpdf(query.T)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-9, atol=1e-9)


def test_isotropic_kde_is_a_mean_of_normal_densities():
    rng = np.random.default_rng(6)
    train, query, h = rng.standard_normal((40, 3)), rng.standard_normal((7, 3)), 0.4
    ours = density.KDE(bandwidth=h).fit(torch.as_tensor(train)).log_prob(torch.as_tensor(query))
    naive = np.log(np.mean([stats.multivariate_normal(c, h**2 * np.eye(3)).pdf(query) for c in train], 0))
    np.testing.assert_allclose(ours.numpy(), naive, rtol=1e-10)


def test_kde_samples_lie_around_the_data():
    train = blobs(300)
    kde = density.KDE(bandwidth=0.1).fit(train)
    x = kde.sample(2000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2000, 2)
    nearest = torch.cdist(x.double(), train).min(1).values
    assert float(nearest.max()) < 6 * 0.1 * math.sqrt(2)  # every sample is a kernel's width from a point
    assert float(nearest.mean()) < 0.2


# ----------------------------------------------------------------------------- filing cabinet and helpers


def test_filing_cabinet_is_the_empirical_pmf():
    stored = torch.tensor([[0, 1], [2, 3], [0, 1], [4, 4]])
    cabinet = density.FilingCabinet().fit(stored)
    log_p = cabinet.log_prob(torch.tensor([[0, 1], [2, 3], [5, 5]]))
    np.testing.assert_allclose(log_p[:2].numpy(), np.log([2 / 4, 1 / 4]))  # a point stored twice has 2/N
    assert torch.isneginf(log_p[2])  # not in a drawer
    draws = cabinet.sample(4000, generator=torch.Generator().manual_seed(0))
    freq = (draws == torch.tensor([0, 1])).all(1).float().mean()
    assert abs(float(freq) - 0.5) < 0.03 and set(map(tuple, draws.tolist())) <= set(map(tuple, stored.tolist()))


def test_filing_cabinet_is_the_small_bandwidth_limit_of_the_kde_on_distinct_points():
    stored = blobs(50)
    cabinet = density.FilingCabinet().fit(stored)
    assert torch.allclose(cabinet.log_prob(stored), torch.full((50,), -math.log(50), dtype=torch.float64))
    kde = density.KDE(bandwidth=1e-4).fit(stored)  # log p_h(x_n) + D/2 log(2 pi h^2) -> log(1/N)
    corrected = kde.log_prob(stored) + 0.5 * 2 * math.log(2 * math.pi * 1e-8)
    assert torch.allclose(corrected, cabinet.log_prob(stored), atol=1e-6)


def test_bandwidth_sweep_scores_each_bandwidth_like_a_fresh_kde():
    train, val = blobs(100), blobs(60, seed=3)
    hs = [0.05, 0.3, 1.0]
    curves = density.bandwidth_sweep(train, {"train": train, "val": val}, hs)
    for i, h in enumerate(hs):
        kde = density.KDE(bandwidth=h).fit(train)
        assert curves["val"][i] == pytest.approx(float(kde.log_prob(val).mean()))
    assert curves["train"][0] > curves["train"][1] > curves["train"][2]  # training score favours small h
    doubled = density.bandwidth_sweep(train, {"val": val}, hs, score=lambda lp: 2 * lp)
    assert doubled["val"] == pytest.approx([2 * v for v in curves["val"]])


def test_fit_em_restarts_keeps_the_best_training_run():
    x = blobs(300)
    best, runs = density.fit_em_restarts(x, 3, restarts=3, generator=torch.Generator().manual_seed(0))
    assert len(runs) == 3 and best.history[-1] == max(run.history[-1] for run in runs)
    again, _ = density.fit_em_restarts(x, 3, restarts=3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(again.mu, best.mu)  # the generator makes the restarts reproducible
    with pytest.raises(ValueError, match="restarts"):
        density.fit_em_restarts(x, 3, restarts=0)


def test_kde_cell_density_integrates_the_kde_over_each_cell():
    train = blobs(30)
    kde = density.KDE(bandwidth=0.3).fit(train)
    bounds, steps = (-4.0, 4.0, -3.0, 5.0), 8
    cells = density.kde_cell_density(kde, bounds, steps)
    area = 8 * 8 / steps**2
    assert cells.shape == (steps, steps)
    # independent reference: a fine midpoint rule inside one cell (row 4 = 2nd coordinate in [1, 2])
    fine = 60
    u = torch.linspace(-1.0, 0.0, fine + 1)[:-1] + 0.5 / fine  # column 3: first coordinate in [-1, 0]
    v = torch.linspace(1.0, 2.0, fine + 1)[:-1] + 0.5 / fine
    grid = torch.cartesian_prod(u, v).double()
    assert float(cells[4, 3]) == pytest.approx(float(kde.log_prob(grid).exp().mean()), rel=1e-3)
    # the total mass inside the bounds is the probability of the box under the KDE
    inside = kde.sample(20000, generator=torch.Generator().manual_seed(1))
    in_box = ((inside[:, 0] >= -4) & (inside[:, 0] <= 4) & (inside[:, 1] >= -3) & (inside[:, 1] <= 5)).float().mean()
    assert float(cells.sum() * area) == pytest.approx(float(in_box), abs=0.01)


def test_evaluate_nll_is_the_dequantisation_bound_with_its_kind():
    from genlib import metrics
    from genlib.density import GaussianMixture, evaluate_nll

    y = torch.rand(50, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model = GaussianMixture(2, "diag").fit_em(y, iterations=5, generator=torch.Generator().manual_seed(0))
    nats, kind = evaluate_nll(model, y, 17)
    assert kind == "bound"
    assert nats == pytest.approx(-float(metrics.discrete_log_prob(model.log_prob(y), 4, 17).mean()))
