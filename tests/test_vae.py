"""Tests for genlib.vae: the estimators against a model whose log p(x) and posterior are exact,
the closed forms against torch.distributions, and a one-step dry run of every model."""
import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from genlib import seed_everything, vae
from genlib.train import fit


def tractable(seed=0, dims=6, latent_dim=2, sigma=0.5):
    """A small linear-Gaussian model, three data points from it, and their exact posterior."""
    gen = seed_everything(seed)
    model = vae.LinearGaussian.random(dims, latent_dim, sigma, generator=gen)
    x = model.sample(3, generator=gen)  # (3, D)
    return model, x, gen


def mismatched(posterior: MultivariateNormal, shift=0.5, widen=1.5):
    """A diagonal Gaussian proposal: off the posterior mean and wider than the posterior."""
    std = posterior.variance.sqrt()
    return vae.diag_normal(posterior.mean + shift * std, 2 * torch.log(widen * std))


# ----------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("mu, log_var", [
    ([0.0, 0.0], [0.0, 0.0]),
    ([1.0, -2.0], [0.0, 0.0]),
    ([0.3, 0.1, -0.7], [-2.0, 1.5, 0.2]),
    ([5.0], [-6.0]),
])
def test_kl_normal_std_matches_torch(mu, log_var):
    mu, log_var = torch.tensor(mu, dtype=torch.float64), torch.tensor(log_var, dtype=torch.float64)
    q = vae.diag_normal(mu, log_var)
    p = vae.std_normal(len(mu), dtype=torch.float64)
    assert torch.allclose(vae.kl_normal_std(mu, log_var), kl_divergence(q, p), atol=1e-12)


def test_linear_gaussian_posterior_and_marginal_satisfy_bayes_rule():
    # log p(z | x) = log p(x | z) + log p(z) - log p(x) at arbitrary z: checks both closed forms.
    model, x, gen = tractable()
    z = torch.randn(5, 3, model.latent_dim, generator=gen, dtype=torch.float64)  # (5, B, L)
    lhs = model.posterior(x).log_prob(z)
    rhs = model.log_lik(x, z) + model.prior().log_prob(z) - model.log_prob(x)
    assert torch.allclose(lhs, rhs, atol=1e-10)


@pytest.mark.parametrize("kind", ["diagonal", "full", "posterior"])
def test_elbo_gap_is_kl_to_the_posterior(kind):
    model, x, gen = tractable()
    posterior = model.posterior(x)
    if kind == "diagonal":
        q = mismatched(posterior)
    elif kind == "full":
        A = torch.randn(3, 2, 2, generator=gen, dtype=torch.float64)
        scale_tril = torch.tril(A, -1) * 0.2 + torch.diag_embed(0.2 + A.diagonal(dim1=-2, dim2=-1).abs())
        q = MultivariateNormal(posterior.mean + 0.3, scale_tril=scale_tril)
    else:
        q = posterior
    gap = model.log_prob(x) - model.elbo(x, q)
    expected = kl_divergence(q if kind != "diagonal" else vae._as_mvn(q), posterior)
    assert torch.allclose(gap, expected, atol=1e-9)
    assert (gap > 1e-3).all() if kind != "posterior" else gap.abs().max() < 1e-9


def test_closed_form_elbo_matches_monte_carlo():
    model, x, gen = tractable()
    q = mismatched(model.posterior(x))
    log_w = vae.importance_log_weights(lambda z: model.log_lik(x, z), model.prior(), q, 20000, gen)
    se = log_w.std(0) / math.sqrt(len(log_w))
    assert ((log_w.mean(0) - model.elbo(x, q)).abs() < 5 * se).all()


def test_bounds_are_ordered_elbo_iwae_k_log_p():
    model, x, gen = tractable()
    q = mismatched(model.posterior(x), shift=1.0, widen=2.0)
    log_lik = lambda z: model.log_lik(x, z)  # noqa: E731
    repeats = 2000

    def iwae(k):  # mean and standard error of log (1/k) Σ w over independent repeats
        log_w = vae.importance_log_weights(log_lik, model.prior(), q, repeats * k, gen)
        estimates = vae.log_mean_exp(log_w.reshape(repeats, k, -1), 1)  # (repeats, B)
        return estimates.mean(0), estimates.std(0) / math.sqrt(repeats)

    elbo = model.elbo(x, q)
    (l1, se1), (l5, se5), (l50, se50) = iwae(1), iwae(5), iwae(50)
    log_p = model.log_prob(x)
    assert ((l1 - elbo).abs() < 5 * se1).all()  # L_1 is the ELBO
    assert (elbo + 5 * se5 < l5).all() and (l5 + 5 * (se5 + se50) < l50).all()
    assert (l50 < log_p + 5 * se50).all()


def test_posterior_proposal_gives_log_p_exactly_with_one_sample():
    model, x, gen = tractable()
    estimate = vae.log_p_importance(lambda z: model.log_lik(x, z), model.prior(), model.posterior(x), 1, gen)
    assert torch.allclose(estimate, model.log_prob(x), atol=1e-9)


@pytest.mark.parametrize("trick", ["prior", "importance"])
def test_estimators_are_unbiased_for_p_not_log_p(trick):
    model, x, gen = tractable(sigma=1.0)  # a broad likelihood, so the prior is a usable proposal
    log_lik = lambda z: model.log_lik(x, z)  # noqa: E731
    runs, k = 20000, 2
    prior = model.prior().expand((runs, len(x)))  # independent draws for each run and data point
    if trick == "prior":
        log_hat = vae.log_p_prior_mc(log_lik, prior, k, gen)  # (runs, B)
    else:
        q = mismatched(model.posterior(x))
        q = vae.diag_normal(q.mean.expand(runs, -1, -1), 2 * q.stddev.log().expand(runs, -1, -1))
        log_hat = vae.log_p_importance(log_lik, model.prior(), q, k, gen)
    ratio = torch.exp(log_hat - model.log_prob(x))  # p̂(x) / p(x), one per run
    se = ratio.std(0) / math.sqrt(runs)
    assert ((ratio.mean(0) - 1).abs() < 4 * se).all()
    assert (log_hat.mean(0) < model.log_prob(x)).all()  # while log p̂ is biased low (Jensen)


def test_reparameterised_gradient_matches_closed_form():
    # E[z²] = mu² + σ² for z ~ N(mu, σ²): d/dmu = 2 mu, d/dσ = 2 σ.
    gen = seed_everything(0)
    mu = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(200_000, generator=gen, dtype=torch.float64)
    z = vae.reparameterize(mu.expand(len(eps)), 2 * torch.log(sigma).expand(len(eps)), eps=eps)
    z.pow(2).mean().backward()
    zd = (mu + sigma * eps).detach()
    se_mu, se_sigma = (2 * zd).std() / math.sqrt(len(eps)), (2 * zd * eps).std() / math.sqrt(len(eps))
    assert abs(mu.grad - 2 * mu.detach()) < 4 * se_mu
    assert abs(sigma.grad - 2 * sigma.detach()) < 4 * se_sigma


def test_reparameterize_draws_from_the_right_gaussian():
    gen = seed_everything(0)
    mu, log_var = torch.tensor([1.0, -2.0]), torch.tensor([0.5, -1.0])
    z = vae.reparameterize(mu.expand(50_000, 2), log_var.expand(50_000, 2), generator=gen)
    assert torch.allclose(z.mean(0), mu, atol=0.03)
    assert torch.allclose(z.var(0), log_var.exp(), rtol=0.03)


# ----------------------------------------------------------------------------- likelihoods


def test_likelihoods_match_torch_distributions():
    gen = seed_everything(0)
    logits = torch.randn(2, 3, 5, 17, generator=gen)  # (k, B, D, levels): broadcasting over k
    x = torch.randint(0, 17, (3, 5), generator=gen)
    expected = torch.distributions.Categorical(logits=logits).log_prob(x).sum(-1)
    assert torch.allclose(vae.Categorical(logits).log_prob(x), expected, atol=1e-5)
    probs = torch.softmax(logits, -1)
    assert torch.allclose(vae.Categorical(logits).mean, (probs * torch.arange(17.0)).sum(-1), atol=1e-5)

    logits = torch.randn(2, 3, 5, generator=gen)
    xb = torch.randint(0, 2, (3, 5), generator=gen).float()
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(xb).sum(-1)
    assert torch.allclose(vae.Bernoulli(logits).log_prob(xb), expected, atol=1e-5)

    mu, log_var, xg = torch.randn(3, 2, 3, 5, generator=gen)
    expected = Normal(mu, torch.exp(0.5 * log_var)).log_prob(xg).sum(-1)
    assert torch.allclose(vae.Gaussian(mu, log_var).log_prob(xg), expected, atol=1e-5)


def test_categorical_sample_frequencies():
    gen = seed_everything(0)
    logits = torch.tensor([[[2.0, 0.0, -1.0]]]).expand(20000, 1, 3)
    x = vae.Categorical(logits).sample(gen)  # (20000, 1)
    freq = torch.bincount(x.flatten(), minlength=3).float() / len(x)
    assert torch.allclose(freq, torch.softmax(logits[0, 0], -1), atol=0.015)


# ----------------------------------------------------------------------------- models


def fake_digits(n=32, classes=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 17, (n, 64), generator=gen), torch.randint(0, classes, (n,), generator=gen)


def one_step(model, data):
    before = [p.detach().clone() for p in model.parameters()]
    history = fit(model, vae.batch_loss, data, epochs=1, batch_size=16, progress=False,
                  generator=torch.Generator().manual_seed(0))
    assert math.isfinite(history.train[0])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("overrides", [
    dict(), dict(beta=4.0), dict(n_classes=10), dict(arch="conv"), dict(likelihood="gaussian"),
    dict(likelihood="gaussian", fixed_log_var=-2.0),
])
def test_vae_one_step_on_digits_shaped_data(overrides):
    seed_everything(0)
    config = vae.VAEConfig(hidden=32, **overrides)
    x, y = fake_digits()
    x = vae.model_inputs(x, config, torch.Generator().manual_seed(0))
    model = vae.VAE(config)
    one_step(model, (x, y) if config.n_classes else (x,))
    labels = y[:4] if config.n_classes else None
    assert model.sample(4, y=labels, generator=torch.Generator().manual_seed(0)).shape == (4, 64)
    assert model.reconstruct(x[:4], labels).shape == (4, 64)


def test_conv_vae_one_step_on_fake_28x28():
    seed_everything(0)
    config = vae.VAEConfig.for_dataset("binarized_mnist", arch="conv", hidden=32, latent_dim=4)
    x = torch.randint(0, 2, (16, 784), generator=torch.Generator().manual_seed(0)).float()
    model = vae.VAE(config)
    one_step(model, (x,))
    assert model.iwae_bound(x[:3], k=5).shape == (3,)
    assert model.sample(2).shape == (2, 784)


def test_autoencoder_one_step_and_capabilities():
    seed_everything(0)
    model = vae.Autoencoder(vae.VAEConfig(hidden=32, latent_dim=4))
    x, _ = fake_digits()
    one_step(model, (x,))
    assert model.encode(x).shape == (32, 4) and model.reconstruct(x).shape == (32, 64)
    assert not hasattr(model, "log_prob") and not hasattr(model, "sample")


def test_beta_weights_the_kl_term():
    seed_everything(0)
    model = vae.VAE(vae.VAEConfig(hidden=32)).eval()  # eval: no dropout noise between the two calls
    x, _ = fake_digits()
    rec, kl = model.terms(x, generator=torch.Generator().manual_seed(1))
    loss = model.loss(x, beta=3.0, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(loss, (-rec + 3.0 * kl).mean())


def test_conditional_vae_needs_labels():
    model = vae.VAE(vae.VAEConfig(hidden=16, n_classes=10))
    with pytest.raises(ValueError, match="labels"):
        model.sample(2)


def test_bad_config_values_raise():
    with pytest.raises(ValueError, match="likelihood"):
        vae.VAEConfig(likelihood="poisson")
    with pytest.raises(ValueError, match="dataset"):
        vae.VAEConfig.for_dataset("cifar")


def test_iwae_chunking_gives_the_same_value():
    # B * L = 16 normals per sample: torch draws normals in blocks of 16, so chunked and
    # unchunked draws from one seed are the same numbers and the bounds must agree exactly.
    seed_everything(0)
    model = vae.VAE(vae.VAEConfig(hidden=32, latent_dim=4)).eval()
    x, _ = fake_digits(n=4)
    whole = model.iwae_bound(x, k=60, generator=torch.Generator().manual_seed(3), chunk=60)
    chunked = model.iwae_bound(x, k=60, generator=torch.Generator().manual_seed(3), chunk=7)
    assert torch.allclose(whole, chunked, atol=1e-5)


def test_vae_iwae_1_has_the_elbo_as_mean_and_iwae_grows_with_k():
    seed_everything(0)
    model = vae.VAE(vae.VAEConfig(hidden=32, latent_dim=4)).eval()
    x, _ = fake_digits(n=4)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x, generator=gen) for _ in range(3000)])  # analytic KL
        iwae1 = model.iwae_bound(x.repeat(3000, 1), k=1, generator=gen).reshape(3000, 4)  # MC KL
        iwae100 = model.iwae_bound(x, k=100, generator=gen)
    se = (elbo.var(0) / 3000 + iwae1.var(0) / 3000).sqrt()
    assert ((elbo.mean(0) - iwae1.mean(0)).abs() < 5 * se).all()
    assert (iwae100 > elbo.mean(0)).all()


def test_evaluate_nll_averages_per_image_bounds_in_batches():
    seed_everything(0)
    model = vae.VAE(vae.VAEConfig(hidden=32, latent_dim=4)).eval()
    x, _ = fake_digits(n=10)
    gen = torch.Generator().manual_seed(0)
    one_elbo = vae.evaluate_elbo(model, x, batch_size=3, generator=gen, samples=200)
    one = vae.evaluate_nll(model, x, k=(1, 10, 200), batch_size=3, generator=gen)
    assert one_elbo.kind == "bound" and all(nll.kind == "estimate" for nll in one.values())
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        elbo = -torch.stack([model.elbo(x, generator=g) for _ in range(200)]).mean()
        iwae = -model.iwae_bound(x, k=200, generator=g).mean()
        iwae10 = -torch.stack([model.iwae_bound(x, k=10, generator=g) for _ in range(100)]).mean()
    assert one_elbo.nats == pytest.approx(float(elbo), rel=0.01)
    assert one[200].nats == pytest.approx(float(iwae), rel=0.01)
    assert one[10].nats == pytest.approx(float(iwae10), rel=0.01)  # 20 groups of 10 weights: L_10's estimate
    assert one[200].nats < one[10].nats < one[1].nats  # tighter bounds: lower negative log-likelihoods
    nats, kind = vae.evaluate_nll(model, x, k=20, generator=gen)  # one k: one NLL, unpacking as (nats, kind)
    assert kind == "estimate" and nats > 0
    with pytest.raises(ValueError, match="divide"):
        vae.evaluate_nll(model, x, k=(3, 10))


def test_gaussian_decoder_nll_counts_the_dequantisation_jacobian():
    seed_everything(0)
    config = vae.VAEConfig(hidden=32, latent_dim=4, likelihood="gaussian")
    model = vae.VAE(config).eval()
    x = vae.model_inputs(fake_digits(n=6)[0], config, torch.Generator().manual_seed(0))
    nll = vae.evaluate_elbo(model, x, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        density = -model.elbo(x, generator=torch.Generator().manual_seed(0)).mean()
    assert nll.nats == pytest.approx(float(density) + 64 * math.log(17), rel=1e-6)


# ----------------------------------------------------------------------------- gradient estimators, rate per latent


def test_rate_per_latent_sums_to_the_mean_rate():
    gen = torch.Generator().manual_seed(0)
    mu, log_var = torch.randn(20, 5, generator=gen), torch.randn(20, 5, generator=gen)
    per_latent = vae.rate_per_latent(mu, log_var)
    assert per_latent.shape == (5,)
    assert torch.allclose(per_latent.sum(), vae.kl_normal_std(mu, log_var).mean())
    one = kl_divergence(Normal(mu[:, 2], torch.exp(0.5 * log_var[:, 2])), Normal(0.0, 1.0)).mean()
    assert torch.allclose(per_latent[2], one)


def test_score_function_and_reparameterised_gradients_agree_in_mean_not_in_variance():
    """d/dmu E[z^2] = 2 mu for z ~ N(mu, sigma^2): both estimators are unbiased, REINFORCE is noisier."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    sigma = 1.3
    eps = torch.randn(200_000, generator=gen, dtype=torch.float64)
    z_rep = vae.reparameterize(mu.expand(len(eps)), torch.full_like(eps, 2 * math.log(sigma)), eps=eps)
    (g_rep,) = torch.autograd.grad(z_rep.pow(2).mean(), mu)
    assert float(g_rep) == pytest.approx(1.4, abs=0.02)
    per_sample_rep = 2 * (mu.detach() + sigma * eps)  # d/dmu of (mu + sigma eps)^2, per sample
    z = (mu.detach() + sigma * eps)  # draws that are not differentiated
    log_q = Normal(mu, sigma).log_prob(z)
    surrogate = vae.reinforce_surrogate(z.pow(2), log_q)
    (g_sf,) = torch.autograd.grad(surrogate.mean(), mu)
    per_sample_sf = z.pow(2) * (z - mu.detach()) / sigma**2
    assert float(g_sf) == pytest.approx(float(per_sample_sf.mean()))  # the surrogate's gradient is the formula
    assert float(per_sample_sf.mean()) == pytest.approx(1.4, abs=0.05)
    assert float(per_sample_rep.mean()) == pytest.approx(1.4, abs=0.02)
    assert float(per_sample_rep.var()) == pytest.approx(4 * sigma**2, rel=0.02)  # Var[2(mu + sigma eps)]
    assert per_sample_sf.var() > 4 * per_sample_rep.var()
    base = vae.reinforce_surrogate(z.pow(2), Normal(mu, sigma).log_prob(z), baseline=float(z.pow(2).mean()))
    (g_base,) = torch.autograd.grad(base.mean(), mu)
    assert float(g_base) == pytest.approx(1.4, abs=0.05)


def test_a_sample_drawn_without_reparameterisation_carries_no_gradient():
    mu = torch.tensor(0.5, requires_grad=True)
    z = Normal(mu, 1.0).sample((10,))
    assert not z.requires_grad  # backpropagation cannot reach mu through .sample()
    assert Normal(mu, 1.0).rsample((10,)).requires_grad
