"""genlib.energy against independent references: closed-form Gaussian objectives, the grid's exact
normaliser, enumeration of a small RBM, and Metropolis–Hastings' exactness where plain Langevin is biased."""
import itertools
import math

import pytest
import torch

from genlib import data, ebm, energy
from genlib.train import fit


def gaussian_energy(mu: torch.Tensor, precision: torch.Tensor):
    """E(x) = ½ (x − μ)ᵀ Λ (x − μ)."""
    return lambda x: 0.5 * torch.einsum("bi,ij,bj->b", x - mu, precision, x - mu)


def test_score_matching_equals_the_closed_form_for_a_gaussian_model():
    # J = E[½‖Λ(x − μ)‖² − tr Λ] for a Gaussian energy: an independent closed form, per data point
    torch.manual_seed(0)
    mu, precision = torch.tensor([0.5, -1.0]), torch.tensor([[2.0, 0.3], [0.3, 1.0]])
    x = torch.randn(500, 2)
    expected = (0.5 * ((x - mu) @ precision).pow(2).sum(1) - precision.trace()).mean()
    assert torch.allclose(energy.score_matching_loss(gaussian_energy(mu, precision), x), expected, atol=1e-5)


def test_score_matching_is_the_fisher_divergence_up_to_a_constant():
    # data N(0, I), model N(m, I): Fisher divergence ½‖m‖², so J(m) − J(0) = ½‖m‖² (Monte Carlo)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200000, 2, generator=gen)
    j = lambda m: float(energy.score_matching_loss(gaussian_energy(m, torch.eye(2)), x).detach())  # noqa: E731
    m = torch.tensor([1.0, -0.5])
    assert abs((j(m) - j(torch.zeros(2))) - 0.5 * float(m @ m)) < 0.02


def test_denoising_score_matching_has_the_noised_score_as_its_minimiser():
    # data N(0, s²); energy ½ a x² (score −a x). DSM at noise σ is minimised by the score of the
    # noised data N(0, s² + σ²): a* = 1/(s² + σ²). Fit a by grid search on a fixed noise draw.
    gen = torch.Generator().manual_seed(0)
    s, sigma = 1.5, 0.8
    x = s * torch.randn(200000, 1, generator=gen)
    eps = torch.randn(200000, 1, generator=gen)
    a_grid = torch.linspace(0.2, 0.6, 81)
    losses = torch.stack([energy.dsm_loss(lambda z, a=a: 0.5 * a * (z ** 2).sum(1), x, sigma, eps=eps)
                          for a in a_grid])
    a_best = float(a_grid[losses.argmin()])
    assert abs(a_best - 1 / (s ** 2 + sigma ** 2)) < 0.01, a_best
    assert abs(a_best - 1 / s ** 2) > 0.05  # not the clean data's score: the check has power


def test_nce_is_minimised_at_the_true_density_and_learns_log_z():
    # data = noise-free N(μ, I); model −E − c with E the true energy: the population NCE loss is
    # minimised at c = log Z = log 2π, and not at c = log 2π ± 0.5.
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([1.0, 0.0])
    x = mu + torch.randn(40000, 2, generator=gen)
    noise = torch.distributions.MultivariateNormal(torch.zeros(2), 4 * torch.eye(2))
    x_noise = noise.sample((40000,))
    e = gaussian_energy(mu, torch.eye(2))
    loss = lambda c: float(energy.nce_loss(lambda z: -e(z) - c, noise.log_prob, x, x_noise))  # noqa: E731
    true = math.log(2 * math.pi)
    assert loss(true) < loss(true - 0.5) and loss(true) < loss(true + 0.5)
    # and trained from c = 0, the learned constant approaches log Z
    class TrueEnergy(torch.nn.Module):
        def forward(self, z):
            return e(z)

    model = energy.SelfNormalised(TrueEnergy(), log_z=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        energy.nce_loss(model.log_prob, noise.log_prob, x[:2000], x_noise[:2000]).backward()
        opt.step()
    assert abs(float(model.log_z.detach()) - true) < 0.1


def test_nce_logit_at_the_optimum_is_the_log_density_ratio():
    # the Bayes-optimal classifier's logit is log p_data − log(ν q): nce_logit of the true densities
    log_p, log_q = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -2.0])
    assert torch.allclose(energy.nce_logit(log_p, log_q, nu=2.0), log_p - log_q - math.log(2.0))


def test_mala_is_exact_where_plain_langevin_is_biased():
    # N(0, 1) in 1-D with a large step η = 1.5: ULA's stationary variance is 1/(1 − η/4) = 1.6;
    # MALA's accept/reject step restores variance 1
    gen = torch.Generator().manual_seed(0)
    e = lambda x: 0.5 * (x ** 2).sum(1)  # noqa: E731
    x0 = torch.randn(20000, 1, generator=gen)
    x_mala, acceptance = energy.mala(e, x0, 200, 1.5, generator=gen)
    x_ula = ebm.langevin(e, x0, 200, 1.5, generator=gen)
    se = math.sqrt(2 / 20000)
    assert abs(float(x_mala.var()) - 1) < 4 * se, float(x_mala.var())
    assert abs(float(x_ula.var()) - 1 / (1 - 1.5 / 4)) < 0.05, float(x_ula.var())
    assert 0.3 < acceptance < 1


def test_ais_recovers_an_analytic_and_a_grid_normaliser():
    gen = torch.Generator().manual_seed(0)
    mu, cov = torch.tensor([1.0, -0.5]), torch.tensor([[0.5, 0.2], [0.2, 0.3]])
    e = gaussian_energy(mu, torch.linalg.inv(cov))
    exact = math.log(2 * math.pi) + 0.5 * math.log(float(torch.linalg.det(cov)))
    result = energy.ais_log_z(e, 2, n_chains=1000, n_temps=100, step_size=0.3, generator=gen)
    assert result.se < 0.03 and abs(result.log_z - exact) < 4 * result.se + 0.01, (result.log_z, exact, result.se)
    # a bimodal, unnormalised energy: AIS against the grid's midpoint rule
    def bimodal(x):
        a = -((x - torch.tensor([2.0, 0.0])) ** 2).sum(1) / 0.5
        b = -((x + torch.tensor([2.0, 0.0])) ** 2).sum(1) / 0.5
        return -torch.logsumexp(torch.stack([a, b + math.log(3.0)]), 0) + 1.7
    grid = float(ebm.GridDensity(bimodal, bounds=(-6, 6, -6, 6), steps=300).log_z())
    result = energy.ais_log_z(bimodal, 2, n_chains=1000, n_temps=200, step_size=0.3, generator=gen)
    assert result.se < 0.05 and abs(result.log_z - grid) < 4 * result.se + 0.01, (result.log_z, grid, result.se)
    assert abs(result.log_z - (grid + 0.5)) > 4 * result.se + 0.01  # a wrong answer by half a nat fails


def test_product_of_experts_adds_energies():
    x = torch.randn(5, 2)
    e1, e2 = (lambda z: z[:, 0] ** 2), (lambda z: (z[:, 1] - 1) ** 2)
    assert torch.allclose(energy.product_of_experts(e1, e2)(x), e1(x) + e2(x))
    with pytest.raises(ValueError, match="at least one"):
        energy.product_of_experts()


def small_rbm(seed=0, visible=4, hidden=3):
    rbm = energy.RBM(visible, hidden, torch.Generator().manual_seed(seed))
    with torch.no_grad():  # weights large enough that the distribution is far from uniform
        rbm.W.normal_(0, 1.0, generator=torch.Generator().manual_seed(seed + 1))
        rbm.b.copy_(torch.linspace(-1, 1, visible)), rbm.c.copy_(torch.linspace(0.5, -0.5, hidden))
    return rbm


def test_rbm_log_prob_matches_brute_force_enumeration_of_v_and_h():
    rbm = small_rbm()
    vs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # (16, 4)
    hs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))  # (8, 3)
    with torch.no_grad():
        joint = torch.stack([torch.stack([v @ rbm.b + h @ rbm.c + v @ rbm.W @ h for h in hs]) for v in vs])  # −E(v, h)
        log_p_brute = torch.logsumexp(joint, 1) - torch.logsumexp(joint.reshape(-1), 0)
        assert torch.allclose(rbm.log_prob(vs), log_p_brute, atol=1e-5)
        assert abs(float(torch.logsumexp(rbm.log_prob(vs), 0))) < 1e-5  # sums to one over all 16 v


def test_rbm_gibbs_sampler_has_the_exact_marginal():
    rbm = small_rbm(seed=2)
    gen = torch.Generator().manual_seed(0)
    v = rbm.sample(20000, k=50, generator=gen)  # (20000, 4)
    vs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    with torch.no_grad():
        p = rbm.log_prob(vs).exp()  # (16,)
    codes = (v * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()  # itertools.product order
    freq = torch.bincount(codes, minlength=16).double() / len(v)
    chi2 = float((len(v) * (freq - p) ** 2 / p).sum())
    assert chi2 < 40, chi2  # 15 degrees of freedom: P(chi² > 40) ≈ 5e-4
    wrong = torch.roll(p, 1)  # the same test rejects the wrong marginal
    assert float((len(v) * (freq - wrong) ** 2 / wrong).sum()) > 100


def test_rbm_cd_and_pcd_raise_the_exact_likelihood():
    gen = torch.Generator().manual_seed(0)
    x = (data.digits("train").scaled()[:300] > 0.5).float()
    for persistent in (False, True):
        rbm = energy.RBM(64, 8, torch.Generator().manual_seed(0))
        with torch.no_grad():
            before = float(rbm.log_prob(x).mean())
        loss = energy.RBMContrastiveDivergence(k=1, persistent=persistent, n_chains=50, generator=gen)
        fit(rbm, loss, x, epochs=5, batch_size=50, lr=0.01, generator=gen, progress=False)
        with torch.no_grad():
            assert float(rbm.log_prob(x).mean()) > before + 5
    with pytest.raises(ValueError, match="0 or 1"):
        loss(rbm, (torch.full((2, 64), 0.5),))
    with pytest.raises(ValueError, match="too many"):
        energy.RBM(4, 21).log_z()


def test_jem_energy_is_minus_logsumexp_and_one_step_trains():
    gen = torch.Generator().manual_seed(0)
    config = energy.JEMConfig(hidden=16, n_steps=2, buffer_size=50)
    model = energy.JEM(config, gen)
    images = data.digits("train")
    x, y = images.scaled()[:32], images.y[:32]
    assert torch.allclose(model.energy(x), -torch.logsumexp(model.logits(x), 1))
    # p(y | x) of the energy view: exp(f[y]) / Σ exp(f) = exp(f[y] + E(x))
    assert torch.allclose((model.logits(x) + model.energy(x)[:, None]).exp().sum(1), torch.ones(32), atol=1e-5)
    before = [p.detach().clone() for p in model.parameters()]
    loss = energy.JEMLoss(gen)
    history = fit(model, loss, (x, y), epochs=1, batch_size=32, generator=gen, progress=False)
    assert math.isfinite(history.train[0]) and loss.step == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert model.sample(3, gen).shape == (3, 64) and model.classify(x).shape == (32,)
    with pytest.raises(ValueError, match="step_size must be > 0"):
        energy.JEMConfig(step_size=0.0)


def test_the_toy_losses_dry_run_through_fit():
    x = data.toy("moons", n=64)
    gen = torch.Generator().manual_seed(0)
    noise = energy.GaussianNoise.fit(x, scale=1.5)
    draws = noise.sample(50000, gen)
    assert torch.allclose(draws.mean(0), x.mean(0), atol=0.03)
    assert torch.allclose(torch.cov(draws.T), 2.25 * torch.cov(x.T), rtol=0.05, atol=0.01)
    reference = torch.distributions.MultivariateNormal(x.mean(0), 2.25 * torch.cov(x.T))
    assert torch.allclose(noise.log_prob(x), reference.log_prob(x), atol=1e-4)
    config = ebm.EBMConfig(hidden=8, buffer_size=0)
    for model, loss in ((ebm.EBM(config), energy.ScoreMatchingLoss()),
                        (ebm.EBM(config), energy.DenoisingScoreMatchingLoss(0.2, gen)),
                        (energy.SelfNormalised(ebm.EnergyNet(2, 8, 2)), energy.NCELoss(noise, nu=2, generator=gen))):
        before = [p.detach().clone() for p in model.parameters()]
        history = fit(model, loss, x, epochs=1, batch_size=64, generator=gen, progress=False)
        assert math.isfinite(history.train[0])
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        energy.DenoisingScoreMatchingLoss(0.0)
