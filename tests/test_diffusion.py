"""genlib.diffusion against closed forms: the forward process, the posterior, the samplers with oracle
or exactly optimal denoisers, Tweedie's formula, the bound's terms, and one-step training dry runs."""
import math

import mpmath
import pytest
import torch
from scipy import stats

from genlib import diffusion as d
from genlib.train import fit


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(params=d.SCHEDULES)
def schedule(request):
    return d.NoiseSchedule(d.make_betas(request.param, 50))


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("name", d.SCHEDULES)
@pytest.mark.parametrize("T", [10, 100, 1000])
def test_schedules_are_monotone_and_in_range(name, T):
    s = d.NoiseSchedule(d.make_betas(name, T))
    assert s.beta.dtype == torch.float64 and s.T == T
    assert ((s.beta[1:] > 0) & (s.beta[1:] < 1)).all()
    assert (s.alpha_bar[1:] < s.alpha_bar[:-1]).all() and s.alpha_bar[0] == 1
    assert s.alpha_bar[-1] < 0.01  # ends close to pure noise
    assert (s.beta_tilde[2:] > 0).all() and (s.beta_tilde[1:] <= s.beta[1:]).all() and s.beta_tilde[1] == 0
    if name == "linear":
        assert (s.beta[2:] > s.beta[1:-1]).all()


def test_cosine_alpha_bar_follows_its_formula():
    T, s = 40, 0.008
    sch = d.NoiseSchedule(d.cosine_betas(T, s))
    t = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    assert torch.allclose(sch.alpha_bar[:-1], (f / f[0])[:-1], atol=1e-12)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown schedule"):
        d.DiffusionConfig(schedule="quadratic")
    with pytest.raises(ValueError, match="T must be a positive integer"):
        d.DiffusionConfig(T=0)
    with pytest.raises(ValueError, match="needs shape"):
        d.DiffusionConfig(dims=10, shape=(8, 8))
    model = d.Diffusion(d.DiffusionConfig(dims=2, shape=None, net="mlp", T=10, width=8))
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        model.loss(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        model.loss(torch.full((4, 2), math.nan))
    with pytest.raises(ValueError, match="steps must be at most"):
        model.sample(3, steps=11)
    with pytest.raises(ValueError, match="integers 0..16"):
        d.Diffusion(d.DiffusionConfig(dims=4, shape=(2, 2), T=10, width=8)).bound(torch.full((2, 4), 17), 17)


# ----------------------------------------------------------------------------- forward process


def test_closed_form_matches_the_iterated_forward_process(schedule):
    n, t = 200_000, 30
    x0 = torch.tensor([1.5, -0.5], dtype=torch.float64).expand(n, 2)
    g = gen(1)
    x = x0
    for s in range(1, t + 1):
        x = d.q_step(x, s, schedule, generator=g)
    closed = d.q_sample(x0, t, schedule, generator=g)
    ab = schedule.alpha_bar[t]
    for sample in (x, closed):
        assert torch.allclose(sample.mean(0), math.sqrt(ab) * x0[0], atol=4 * math.sqrt((1 - ab) / n) + 1e-3)
        assert torch.allclose(sample.var(0), (1 - ab).expand(2), rtol=0.012)  # 4 standard errors


def test_posterior_matches_bayes_rule_in_one_dimension(schedule):
    # q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0): the product of two Gaussians in x_{t-1}
    t, x0, xt = 7, torch.tensor([0.3]), torch.tensor([-0.8])
    ab_prev, beta = schedule.alpha_bar[t - 1].item(), schedule.beta[t].item()
    prec = (1 - beta) / beta + 1 / (1 - ab_prev)
    mean = (math.sqrt(1 - beta) * xt / beta + math.sqrt(ab_prev) * x0 / (1 - ab_prev)) / prec
    mu, var = d.q_posterior(x0.double(), xt.double(), t, schedule)
    assert torch.allclose(mu, mean.double(), atol=1e-10) and abs(var.item() - 1 / prec) < 1e-12


# ----------------------------------------------------------------------------- reverse process with an oracle


def test_oracle_noise_gives_the_exact_posterior_mean(schedule):
    g = gen(2)
    x0 = torch.randn(64, 5, generator=g, dtype=torch.float64)
    t = torch.randint(1, schedule.T + 1, (64,), generator=g)
    eps = torch.randn(64, 5, generator=g, dtype=torch.float64)
    xt = d.q_sample(x0, t, schedule, eps)
    posterior_mean, _ = d.q_posterior(x0, xt, t, schedule)
    assert torch.allclose(d.mean_from_eps(xt, t, eps, schedule), posterior_mean, atol=1e-9)
    assert torch.allclose(d.predict_x0(xt, t, eps, schedule), x0, atol=1e-9)
    # the generic sampler step (η = 1, s = t − 1, no noise) has the same mean
    step = d.reverse_step(xt, t, t - 1, eps, schedule, eta=1.0, noise=torch.zeros_like(xt))
    assert torch.allclose(step, posterior_mean, atol=1e-9)


def test_ancestral_step_variance_is_the_posterior_variance(schedule):
    t, eps, xt = 9, torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    a = d.reverse_step(xt, t, t - 1, eps, schedule, 1.0, noise=torch.ones_like(xt))
    b = d.reverse_step(xt, t, t - 1, eps, schedule, 1.0, noise=torch.zeros_like(xt))
    assert abs((a - b).item() ** 2 - schedule.beta_tilde[t].item()) < 1e-12


class Oracle(torch.nn.Module):
    """A 'network' that returns the true noise of x_t for a known x_0 (one fixed x_0 per row)."""

    def __init__(self, x0, schedule, T):
        super().__init__()
        self.x0, self.schedule, self.T = x0, schedule, T
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, xt, s):
        t = torch.round(s * self.T).long()
        ab = self.schedule.at("alpha_bar", t, xt)
        return (xt - torch.sqrt(ab) * self.x0) / torch.sqrt(1 - ab)


@pytest.mark.parametrize("steps", [50, 10, 3])
def test_ddim_with_the_oracle_returns_x0(steps):
    config = d.DiffusionConfig(dims=3, shape=None, net="mlp", T=50, width=4, clip=None)
    model = d.Diffusion(config).double()
    x0 = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.1, -0.3]], dtype=torch.float64)
    model.net = Oracle(x0, model.schedule, config.T)
    x_T = torch.randn(2, 3, generator=gen(3), dtype=torch.float64)
    out = model.sample(2, steps=steps, eta=0.0, x_T=x_T, generator=gen(4))
    assert torch.allclose(out, x0, atol=1e-8)


def gaussian_eps(m, s2, schedule):
    """E[ε | x_t] for 1-D data N(m, s2): x_t ~ N(√ᾱ m, ᾱ s2 + 1 − ᾱ), Cov(x_t, ε) = √(1 − ᾱ)."""

    def eps(xt, t):
        ab = schedule.at("alpha_bar", t, xt)
        return torch.sqrt(1 - ab) * (xt - torch.sqrt(ab) * m) / (ab * s2 + 1 - ab)

    return eps


class OptimalGaussian(torch.nn.Module):
    def __init__(self, eps, T):
        super().__init__()
        self.eps, self.T = eps, T
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, xt, s):
        return self.eps(xt, torch.round(s * self.T).long())


@pytest.mark.parametrize("eta,steps", [(1.0, None), (0.0, None), (0.0, 200)])
def test_optimal_denoiser_samples_the_data_distribution(eta, steps):
    m, s2, n = 1.5, 0.25, 40_000
    config = d.DiffusionConfig(dims=1, shape=None, net="mlp", T=1000, width=4, clip=None)
    model = d.Diffusion(config).double()
    model.net = OptimalGaussian(gaussian_eps(m, s2, model.schedule), config.T)
    x_T = torch.randn(n, 1, generator=gen(5), dtype=torch.float64)
    x = model.sample(n, steps=steps, eta=eta, x_T=x_T, generator=gen(6))[:, 0]
    assert abs(x.mean().item() - m) < 4 * math.sqrt(s2 / n) + 0.01
    assert abs(x.var().item() - s2) < 4 * s2 * math.sqrt(2 / n) + 0.01


def test_tweedie_score_of_gaussian_data(schedule):
    # q(x_t) = N(√ᾱ m, v) has score −(x − √ᾱ m)/v; Tweedie gives it from E[ε | x_t]
    m, s2, t = -0.4, 0.6, 20
    xt = torch.linspace(-3, 3, 13, dtype=torch.float64)[:, None]
    ab = schedule.alpha_bar[t]
    exact = -(xt - torch.sqrt(ab) * m) / (ab * s2 + 1 - ab)
    tweedie = d.score_from_eps(xt, t, gaussian_eps(m, s2, schedule)(xt, torch.tensor(t)), schedule)
    assert torch.allclose(tweedie, exact, atol=1e-12)
    # and it matches a finite-difference gradient of the log-density
    dist = torch.distributions.Normal(torch.sqrt(ab) * m, torch.sqrt(ab * s2 + 1 - ab))
    h = 1e-5
    assert torch.allclose((dist.log_prob(xt + h) - dist.log_prob(xt - h)) / (2 * h), exact, atol=1e-6)


def test_flow_matching_with_the_optimal_velocity_samples_the_data():
    # x_t = (1 − t) x0 + t ε, x0 ~ N(m, s2): E[ε − x0 | x_t] = −m + c_t (x_t − (1 − t) m),
    # c_t = (t − (1 − t) s2) / ((1 − t)² s2 + t²)
    m, s2, n = 1.5, 0.25, 40_000

    class Velocity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, xt, t):
            t = t[:, None]
            c = (t - (1 - t) * s2) / ((1 - t) ** 2 * s2 + t**2)
            return -m + c * (xt - (1 - t) * m)

    model = d.FlowMatching(d.DiffusionConfig(dims=1, shape=None, net="mlp", width=4, clip=None)).double()
    model.net = Velocity()
    x_T = torch.randn(n, 1, generator=gen(7), dtype=torch.float64)
    x = model.sample(n, steps=200, x_T=x_T)[:, 0]
    assert abs(x.mean().item() - m) < 4 * math.sqrt(s2 / n) + 0.01
    assert abs(x.var().item() - s2) < 4 * s2 * math.sqrt(2 / n) + 0.01


# ----------------------------------------------------------------------------- the bound


def test_gaussian_kl_matches_torch():
    g = gen(8)
    mu_q, mu_p = torch.randn(10, generator=g), torch.randn(10, generator=g)
    var_q, var_p = torch.rand(10, generator=g) + 0.1, torch.rand(10, generator=g) + 0.1
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mu_q, var_q.sqrt()),
                                                 torch.distributions.Normal(mu_p, var_p.sqrt()))
    assert torch.allclose(d.gaussian_kl(mu_q, var_q, mu_p, var_p), expected, atol=1e-6)


@pytest.mark.parametrize("mu,sigma", [(0.03, 0.05), (-0.9, 0.3), (2.5, 0.01), (-3.0, 0.02)])
def test_discretized_gaussian_matches_scipy_and_sums_to_one(mu, sigma):
    levels = 17
    y = d.to_unit_range(torch.arange(levels), levels).double()
    log_p = d.discretized_gaussian_log_prob(y, torch.full_like(y, mu), sigma, levels)
    # reference: the bin masses Φ(hi) − Φ(lo) in 200-digit arithmetic (mpmath), so no tail cancels
    mpmath.mp.dps = 200
    edges = [-mpmath.inf] + [mpmath.mpf(float(a + b)) / 2 for a, b in zip(y[:-1], y[1:])] + [mpmath.inf]
    expected = torch.tensor([float(mpmath.log(mpmath.ncdf(hi, mu, sigma) - mpmath.ncdf(lo, mu, sigma)))
                             for lo, hi in zip(edges[:-1], edges[1:])], dtype=torch.float64)
    shown = expected > -2000  # beyond that even 200 digits cancel; check finiteness only
    assert torch.allclose(log_p[shown], expected[shown], atol=1e-6, rtol=1e-6)
    assert abs(torch.logsumexp(log_p, 0).item()) < 1e-9
    assert torch.isfinite(log_p).all()


def test_bound_terms_are_non_negative_and_the_sum():
    torch.manual_seed(0)
    model = d.Diffusion(d.DiffusionConfig(dims=4, shape=None, net="mlp", T=20, width=8))
    x = torch.randint(0, 17, (400, 4), generator=gen(13))
    terms = model.bound(x, 17, generator=gen(9))
    assert all((terms[k] >= 0).all() for k in ("prior", "diffusion", "decoder"))
    assert torch.allclose(terms["total"], terms["prior"] + terms["diffusion"] + terms["decoder"])
    # one draw of t per log-spaced stratum, weighted by the stratum's size, estimates the same sum without bias
    sampled = model.bound(x, 17, t_samples=5, generator=gen(10))["diffusion"]
    full = terms["diffusion"]
    standard_error = math.sqrt((full.var() + sampled.var()).item() / len(x))
    assert abs(sampled.mean().item() - full.mean().item()) < 4 * standard_error


def test_prior_term_is_the_closed_form_kl():
    model = d.Diffusion(d.DiffusionConfig(dims=4, shape=None, net="mlp", T=10, width=8))
    x = torch.tensor([[0, 16, 8, 4]])
    y, ab = d.to_unit_range(x, 17).double(), model.schedule.alpha_bar[-1]
    q = torch.distributions.Normal(torch.sqrt(ab) * y, torch.sqrt(1 - ab).expand(4))
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum()
    assert abs(model.bound(x, 17)["prior"].item() - expected.item()) < 1e-5


def test_x_prev_and_eps_objectives_share_the_optimum_mean():
    # an x_prev network's output f is turned into ε̂ so that μ_θ = f exactly
    config = d.DiffusionConfig(dims=3, shape=None, net="mlp", T=30, width=8, objective="x_prev")
    model = d.Diffusion(config)
    xt, t = torch.randn(5, 3, generator=gen(11)), torch.tensor(12)
    f = model.net(xt, t.float().expand(5) / config.T)
    assert torch.allclose(model.mean(xt, t), f, atol=1e-5)


# ----------------------------------------------------------------------------- training dry runs


@pytest.mark.parametrize("net,objective,shape", [("mlp", "eps", None), ("mlp", "x_prev", None),
                                                 ("unet", "eps", (8, 8)), ("unet", "x_prev", (8, 8))])
def test_one_step_training_dry_run(net, objective, shape):
    torch.manual_seed(0)
    dims = 2 if shape is None else 64
    model = d.Diffusion(d.DiffusionConfig(dims=dims, shape=shape, net=net, objective=objective, T=20, width=8,
                                          fourier=2 if net == "mlp" else 0))
    x = torch.rand(32, dims) * 2 - 1
    history = fit(model, d.batch_loss, x, x, epochs=1, batch_size=32, progress=False)
    assert history.epochs == 1 and math.isfinite(history.train[0]) and math.isfinite(history.val[0])
    out = model.sample(4, steps=5, generator=gen(12))
    assert out.shape == (4, dims) and torch.isfinite(out).all()


@pytest.mark.parametrize("shape", [(8, 8), (28, 28)])
def test_flow_matching_dry_run_and_unet_shapes(shape):
    torch.manual_seed(0)
    dims = shape[0] * shape[1]
    model = d.FlowMatching(d.DiffusionConfig(dims=dims, shape=shape, T=10, width=8))
    x = torch.rand(8, dims) * 2 - 1
    history = fit(model, d.batch_loss, x, epochs=1, batch_size=8, progress=False)
    assert math.isfinite(history.train[0])
    out, path = model.sample(2, steps=3, trajectory=True)
    assert out.shape == (2, dims) and len(path) == 4 and out.abs().max() <= 1


def test_fit_with_cooldown_runs_both_phases_and_joins_their_histories(monkeypatch):
    import genlib.train

    calls = []

    def recording_fit(*args, **kwargs):
        calls.append((kwargs["epochs"], kwargs["lr"], kwargs["batch_size"], kwargs["device"]))
        return fit(*args, **kwargs)

    monkeypatch.setattr(genlib.train, "fit", recording_fit)
    torch.manual_seed(0)
    model = d.FlowMatching(d.DiffusionConfig(dims=2, shape=None, net="mlp", width=8, layers=1))
    x = torch.rand(40, 2) * 2 - 1
    settings = d.TrainConfig(epochs=6, batch_size=20, lr=1e-2)
    history = d.fit_with_cooldown(model, x, x[:10], settings, generator=gen(), device="cpu", progress=False)
    assert calls == [(6, 1e-2, 20, "cpu"), (1, pytest.approx(1e-3), 20, "cpu")]  # max(1, 6 // 4) = 1 at lr/10
    assert history.epochs == 7 and len(history.val) == 7 and len(history.seconds) == 7
    assert history.val[history.best_epoch] == min(history.val) and not model.training
    assert d.TrainConfig(epochs=10).cooldown_epochs == 2 and d.TrainConfig(epochs=3).cooldown_epochs == 1


def test_training_reduces_the_loss_on_a_toy():
    torch.manual_seed(0)
    model = d.Diffusion(d.DiffusionConfig(dims=2, shape=None, net="mlp", T=50, width=32, clip=None))
    x = torch.randn(512, 2) * 0.3 + 1.0
    with torch.no_grad():
        before = sum(float(model.loss(x)) for _ in range(5)) / 5
    fit(model, d.batch_loss, x, epochs=15, batch_size=64, lr=3e-3, progress=False)
    with torch.no_grad():
        after = sum(float(model.loss(x)) for _ in range(5)) / 5
    assert after < 0.8 * before


def test_timesteps_are_even_and_end_at_zero():
    assert d.timesteps(10, 5) == [10, 8, 6, 4, 2, 0]
    assert d.timesteps(1000, 3) == [1000, 667, 333, 0]
    assert d.timesteps(7, 7) == list(range(7, -1, -1))


# ----------------------------------------------------------------------------- the lattice-matched schedule and the bound


def test_snr_schedule_has_linear_log_snr_between_its_end_points():
    s = d.NoiseSchedule(d.snr_betas(200, 5.5, -10.0))
    log_snr = torch.log(s.alpha_bar[1:] / (1 - s.alpha_bar[1:]))
    assert torch.allclose(log_snr, torch.linspace(5.5, -10.0, 200, dtype=torch.float64), atol=1e-9)
    assert abs(s.beta[1].item() - 1 / (1 + math.exp(5.5))) < 1e-12  # β_1 = σ_1² = sigmoid(−λ_1)


@pytest.mark.parametrize("levels,fraction", [(17, 0.5), (256, 0.25), (2, 0.1)])
def test_lattice_log_snr_puts_sigma_1_at_the_fraction_of_a_bin(levels, fraction):
    lam = d.lattice_logsnr_max(levels, fraction)
    sigma = math.sqrt(1 / (1 + math.exp(lam)))  # σ² = 1 − ᾱ = sigmoid(−λ)
    assert abs(sigma - fraction * 2 / (levels - 1)) < 1e-12


def test_for_dataset_matches_the_snr_schedule_to_the_data_levels():
    for name, levels in [("digits", 17), ("mnist", 256)]:
        model = d.Diffusion(d.DiffusionConfig.for_dataset(name, schedule="snr", T=100, width=8))
        assert abs(model.schedule.beta[1].sqrt().item() - 1 / (levels - 1)) < 1e-9  # half a bin, δ/2


def test_kl_weight_is_half_the_snr_ratio_minus_one(schedule):
    # L_{t−1} = β_t²/(2 β̃_t α_t (1 − ᾱ_t)) ‖ε − ε̂‖² and that weight is (SNR_{t−1}/SNR_t − 1)/2
    t = torch.arange(2, schedule.T + 1)
    weight = schedule.beta[t] ** 2 / (2 * schedule.beta_tilde[t] * schedule.alpha[t] * (1 - schedule.alpha_bar[t]))
    snr = schedule.alpha_bar / (1 - schedule.alpha_bar)
    assert torch.allclose(weight, (snr[t - 1] / snr[t] - 1) / 2, rtol=1e-9)
    # and kl_terms computes exactly that weight times the squared noise error, for any network
    torch.manual_seed(0)
    model = d.Diffusion(d.DiffusionConfig(dims=3, shape=None, net="mlp", T=schedule.T, width=8))
    model.schedule = schedule
    x = torch.randint(0, 9, (6, 3), generator=gen(1))
    ts = [2, 7, schedule.T]
    terms = model.kl_terms(x, 9, ts, generator=gen(2))
    g, x0 = gen(2), d.to_unit_range(x, 9)
    for k, tk in enumerate(ts):
        eps = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
        xt = d.q_sample(x0, tk, schedule, eps)
        with torch.no_grad():
            err = (model.eps(xt, tk) - eps).pow(2).sum(1)
        expected = (snr[tk - 1] / snr[tk] - 1).item() / 2 * err
        assert torch.allclose(terms[:, k], expected, rtol=1e-3, atol=1e-6)  # float32 network


def test_log_strata_cover_every_step_once():
    for T, k in [(1000, 64), (50, 5), (2, 3), (10, 100)]:
        edges = d.log_strata(T, k)
        assert edges[0] == 2 and edges[-1] == T + 1 and len(edges) - 1 <= max(k, 1) + 1
        assert all(a < b for a, b in zip(edges[:-1], edges[1:]))
    edges = d.log_strata(1000, 64)
    assert edges[1] - edges[0] == 1 and edges[-1] - edges[-2] > 10  # single steps at small t, long strata at large t
    with pytest.raises(ValueError, match="T >= 2"):
        d.log_strata(1, 4)


class LatticeOracle(torch.nn.Module):
    """The exact E[ε | x_t] for data drawn from a known distribution ``probs`` over ``points`` (K, D)."""

    def __init__(self, points, probs, schedule, T):
        super().__init__()
        self.points, self.log_probs, self.schedule, self.T = points, probs.log(), schedule, T
        self.dummy = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, xt, s):
        ab = self.schedule.at("alpha_bar", torch.round(s * self.T).long(), xt)  # (B, 1)
        dist2 = ((xt[:, None, :] - torch.sqrt(ab)[:, None] * self.points[None]) ** 2).sum(-1)  # (B, K)
        weights = torch.softmax(self.log_probs[None] - dist2 / (2 * (1 - ab)), 1)  # posterior over the points
        return (xt - torch.sqrt(ab) * (weights @ self.points)) / torch.sqrt(1 - ab)


def test_bound_with_the_exact_denoiser_is_tight_on_a_known_discrete_distribution():
    # 2 pixels with 5 levels, a random distribution over the 25 images; the exact denoiser
    # E[ε | x_t] in closed form. The bound must be ≥ the true NLL (in expectation) and within 10 % of it.
    g, V = gen(0), 5
    images = torch.cartesian_prod(torch.arange(V), torch.arange(V))  # (25, 2)
    probs = torch.softmax(2 * torch.randn(len(images), generator=g, dtype=torch.float64), 0)
    model = d.Diffusion(d.DiffusionConfig(dims=2, shape=None, net="mlp", T=1000, width=4, clip=None)).double()
    model.net = LatticeOracle(d.to_unit_range(images, V).double(), probs, model.schedule, 1000)
    index = torch.multinomial(probs, 1000, replacement=True, generator=g)
    total = model.bound(images[index], V, t_samples=64, generator=g)["total"]
    nll = -probs.log()[index]
    gap = total - nll
    assert gap.mean() > -3 * gap.std() / math.sqrt(len(gap))
    assert total.mean() < 1.1 * nll.mean()


def test_snr_settings_and_fourier_features_are_checked_and_shaped():
    with pytest.raises(ValueError, match="logsnr_max must exceed"):
        d.DiffusionConfig(schedule="snr", logsnr_max=-11.0)
    with pytest.raises(ValueError, match="freqs"):
        d.DiffusionConfig(freqs=[3.0])
    with pytest.raises(ValueError, match="freqs"):
        d.DiffusionConfig(freqs=(-1.0,))
    with pytest.raises(ValueError, match="must exceed"):
        d.snr_betas(10, 1.0, 2.0)
    net = d.make_net(d.DiffusionConfig(freqs=d.lattice_freqs(17), width=8))
    assert net.inc.in_channels == 1 + 2 * 3
    assert net(torch.randn(5, 64), torch.rand(5)).shape == (5, 64)
    periods = [2 * math.pi / w for w in d.lattice_freqs(17)]
    assert periods == pytest.approx([0.25, 0.125, 0.0625])


class GaussianOracle(torch.nn.Module):
    """The exact E[ε | x_t] for 1-D data N(m, s2)."""

    def __init__(self, m, s2, schedule, T):
        super().__init__()
        self.m, self.s2, self.schedule, self.T = m, s2, schedule, T
        self.dummy = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, xt, s):
        ab = self.schedule.at("alpha_bar", torch.round(s * self.T).long(), xt)
        return torch.sqrt(1 - ab) * (xt - torch.sqrt(ab) * self.m) / (ab * self.s2 + 1 - ab)


def test_heun_solves_the_ddim_ode_better_than_euler_at_equal_evaluations():
    # For N(m, s²) data the DDIM ODE dy/dρ = ρ (y − m)/(s² + ρ²) has the solution
    # y_0 − m = (y_T − m) s/√(s² + ρ_T²): the exact endpoint of each x_T.
    T, m, s2 = 1000, 0.5, 0.3
    model = d.Diffusion(d.DiffusionConfig(dims=1, shape=None, net="mlp", T=T, width=4, clip=None)).double()
    model.net = GaussianOracle(m, s2, model.schedule, T)
    x_T = torch.linspace(-3, 3, 13, dtype=torch.float64)[:, None]
    ab_T = model.schedule.alpha_bar[T].item()
    rho_T = math.sqrt((1 - ab_T) / ab_T)
    exact = m + (x_T / math.sqrt(ab_T) - m) * math.sqrt(s2) / math.sqrt(s2 + rho_T**2)
    errors = {}
    for heun_steps in (25, 50):  # second order pays off once the steps resolve the path (not at 3 steps)
        heun = (model.sample_heun(13, heun_steps, x_T=x_T) - exact).abs().max().item()
        ddim = (model.sample(13, steps=2 * heun_steps, eta=0.0, x_T=x_T) - exact).abs().max().item()
        assert heun < 0.2 * ddim  # at equal network evaluations
        errors[heun_steps] = heun
    assert errors[50] < errors[25] / 3  # error ~ h²: halving the step divides it by about four
    assert torch.allclose(model.sample_heun(13, 200, x_T=x_T), exact, atol=1e-3)


class ContinuousGaussianOracle(torch.nn.Module):
    """The exact E[ε | x_t] for 1-D data N(m, s2) at real times t (ᾱ from d.alpha_bar_at)."""

    def __init__(self, m, s2, schedule, T):
        super().__init__()
        self.m, self.s2, self.schedule, self.T = m, s2, schedule, T
        self.dummy = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, xt, s):
        ab = torch.tensor([d.alpha_bar_at(self.schedule, v) for v in (s * self.T).tolist()], dtype=xt.dtype)[:, None]
        return torch.sqrt(1 - ab) * (xt - torch.sqrt(ab) * self.m) / (ab * self.s2 + 1 - ab)


@pytest.mark.parametrize("name", ["linear", "snr"])
def test_ode_log_density_of_gaussian_data_is_exact(name):
    # mean 0: the ODE starts from N(0, 1) at t = T, which is then the exact marginal up to ᾱ_T (s² − 1) ~ 1e-5
    T, m, s2 = 200, 0.0, 0.2
    model = d.Diffusion(d.DiffusionConfig(dims=1, shape=None, net="mlp", T=T, width=4, clip=None, schedule=name)).double()
    model.net = ContinuousGaussianOracle(m, s2, model.schedule, T)
    x = torch.linspace(-1.5, 2.0, 8, dtype=torch.float64)[:, None]
    for t_start in (1, 20):
        a = model.schedule.alpha_bar[t_start].item()
        exact = torch.distributions.Normal(math.sqrt(a) * m, math.sqrt(a * s2 + 1 - a)).log_prob(x[:, 0])
        assert torch.allclose(model.ode_log_density(x, t_start, steps=400), exact, atol=5e-3)


def test_alpha_bar_at_interpolates_log_snr_and_hits_the_integer_times(schedule):
    for t in (1, 2, schedule.T // 2, schedule.T):
        assert abs(d.alpha_bar_at(schedule, float(t)) - schedule.alpha_bar[t].item()) < 1e-12
    lam = lambda a: math.log(a / (1 - a))
    mid = d.alpha_bar_at(schedule, 7.5)
    expected = (lam(schedule.alpha_bar[7].item()) + lam(schedule.alpha_bar[8].item())) / 2
    assert abs(lam(mid) - expected) < 1e-9


def test_ode_bound_runs_on_the_unet_and_adds_its_terms():
    torch.manual_seed(0)
    model = d.Diffusion(d.DiffusionConfig(width=8, T=100, schedule="snr", logsnr_max=d.lattice_logsnr_max(17)))
    x = torch.randint(0, 17, (3, 64), generator=gen(4))
    out = model.ode_bound(x, 17, steps=4, generator=gen(5))
    assert out["total"].shape == (3,) and torch.isfinite(out["total"]).all()
    assert torch.allclose(out["total"], out["ode"] - out["entropy"] + out["decoder"])


# ----------------------------------------------------------------------------- issue 25: layout; issue 19: guidance


def test_fit_with_cooldown_skips_the_cool_down_after_an_interrupted_first_phase(monkeypatch):
    import genlib.train
    from genlib.train import History

    calls = []

    def interrupted_fit(*args, **kwargs):
        calls.append(kwargs["epochs"])
        return History(train=[1.0], seconds=[0.1], interrupted=True)

    monkeypatch.setattr(genlib.train, "fit", interrupted_fit)
    model = d.FlowMatching(d.FlowMatchingConfig(dims=2, shape=None, net="mlp", width=8, layers=1, clip=None))
    history = d.fit_with_cooldown(model, torch.zeros(4, 2), settings=d.TrainConfig(epochs=6))
    assert calls == [6] and history.interrupted and history.epochs == 1


def test_bound_is_the_sum_of_its_three_term_functions():
    torch.manual_seed(0)
    model = d.Diffusion(d.DiffusionConfig(dims=4, shape=(2, 2), T=30, width=8))
    x = torch.randint(0, 17, (5, 4))
    x0 = d.to_unit_range(x, 17)
    for t_samples in (None, 6):
        terms = model.bound(x, 17, t_samples, generator=gen(3))
        g = gen(3)  # the same draws in the same order: L_T (none), the L_(t-1), then L_0
        with torch.no_grad():
            parts = {"prior": model.prior_term(x0), "diffusion": model.diffusion_term(x0, t_samples, g),
                     "decoder": model.decoder_term(x0, 17, g)}
        for name, value in parts.items():
            assert torch.equal(terms[name], value), name
        assert torch.allclose(terms["total"], sum(parts.values()))
    assert torch.allclose(model.kl_terms(x, 17, torch.arange(2, 31), gen(1)).sum(1),
                          model.bound(x, 17, generator=gen(1))["diffusion"])


def test_flow_matching_has_its_own_config_and_still_takes_a_diffusion_config():
    fm = d.FlowMatchingConfig.for_dataset("digits", width=8)
    assert not hasattr(fm, "T") and not hasattr(fm, "schedule") and not hasattr(fm, "objective")
    assert fm == d.FlowMatchingConfig.from_diffusion(d.DiffusionConfig.for_dataset("digits", width=8, T=10))
    assert d.FlowMatching(d.DiffusionConfig.for_dataset("digits", width=8)).config == fm
    with pytest.raises(ValueError, match="shape"):
        d.FlowMatchingConfig(dims=10, shape=(8, 8))
    with pytest.raises(TypeError, match="FlowMatchingConfig"):
        d.FlowMatching({"dims": 2})
    toy = d.FlowMatchingConfig.for_dataset("moons")
    assert toy.net == "mlp" and toy.clip is None


def conditional_model(**overrides):
    torch.manual_seed(0)
    return d.Diffusion(d.DiffusionConfig(dims=16, shape=(4, 4), T=20, width=8, classes=3, **overrides))


def test_guidance_at_zero_is_the_conditional_model_and_the_null_label_the_unconditional_one():
    model = conditional_model()
    with torch.no_grad():  # a trained-looking network: random label embeddings, so labels matter
        model.net.label.weight.normal_()
    x, t = torch.randn(6, 16, generator=gen()), torch.tensor([1, 5, 9, 13, 17, 20])
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    null = torch.full_like(y, 3)
    cond, uncond = model.eps(x, t, y), model.eps(x, t, None)
    assert torch.equal(model.eps(x, t, y, guidance=0.0), cond)
    assert torch.allclose(uncond, model.eps(x, t, null)) and not torch.allclose(cond, uncond)
    for w in (0.5, 3.0):  # ε̃ = (1 + w) ε(x, y) − w ε(x, ∅); with y = ∅ every w gives the unconditional model
        assert torch.allclose(model.eps(x, t, y, guidance=w), (1 + w) * cond - w * uncond, atol=1e-6)
        assert torch.allclose(model.eps(x, t, None, guidance=w), uncond)
    x_T = torch.randn(6, 16, generator=gen(1))
    same = [model.sample(6, y=y, steps=5, eta=0.0, x_T=x_T, guidance=w) for w in (0.0, 0.0)]
    assert torch.equal(*same)
    assert torch.equal(model.sample(6, steps=5, eta=0.0, x_T=x_T, guidance=2.0),
                       model.sample(6, y=null, steps=5, eta=0.0, x_T=x_T))


def test_label_dropout_trains_both_branches_and_labels_are_checked():
    model = conditional_model(label_dropout=0.5)
    seen = []
    original = model.net.forward
    model.net.forward = lambda x, s, y=None: (seen.append(y.clone()), original(x, s, y))[1]
    y = torch.zeros(400, dtype=torch.long)
    model.loss(torch.rand(400, 16) * 2 - 1, y, generator=gen()).backward()
    dropped = (seen[0] == 3).float().mean().item()
    assert 0.4 < dropped < 0.6 and set(seen[0].tolist()) == {0, 3}
    assert model.net.label.weight.grad[[0, 3]].abs().sum(1).min() > 0
    history = d.fit_with_cooldown(conditional_model(), (torch.rand(16, 16) * 2 - 1, torch.arange(16) % 3),
                                  settings=d.TrainConfig(epochs=1, batch_size=8), progress=False)
    assert history.epochs == 2 and all(math.isfinite(v) for v in history.train)
    with pytest.raises(ValueError, match="y"):
        model.sample(2, y=torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="unconditional"):
        d.Diffusion(d.DiffusionConfig(dims=16, shape=(4, 4), T=20, width=8)).loss(torch.zeros(2, 16), torch.zeros(2).long())
    with pytest.raises(ValueError, match="classes"):
        d.DiffusionConfig(dims=2, shape=None, net="mlp", classes=3)
    with pytest.raises(ValueError, match="label_dropout"):
        d.DiffusionConfig(classes=10, label_dropout=1.5)
