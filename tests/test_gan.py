"""GANs (Chapter 5): losses against their formulas, D* against the densities, one-step dry runs."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import norm

from genlib import data, gan, metrics
from genlib.train import fit


def logits_of(d):
    d = torch.as_tensor(d, dtype=torch.float64)
    return torch.log(d / (1 - d))  # logit D


# ----------------------------------------------------------------------------- losses


def test_losses_equal_their_formulas_on_hand_computed_values():
    d_real, d_fake = [0.9, 0.6], [0.2, 0.5]
    # −V = −mean log D(x) − mean log(1 − D(G(z))), written out by hand
    expected = -(math.log(0.9) + math.log(0.6)) / 2 - (math.log(0.8) + math.log(0.5)) / 2
    assert float(gan.discriminator_loss(logits_of(d_real), logits_of(d_fake))) == pytest.approx(expected, rel=1e-12)
    assert float(gan.generator_loss(logits_of(d_fake), "minimax")) == pytest.approx(
        (math.log(0.8) + math.log(0.5)) / 2, rel=1e-12)
    assert float(gan.generator_loss(logits_of(d_fake), "nonsaturating")) == pytest.approx(
        -(math.log(0.2) + math.log(0.5)) / 2, rel=1e-12)
    with pytest.raises(ValueError, match="unknown generator loss 'wasserstein'"):
        gan.generator_loss(logits_of(d_fake), "wasserstein")


def test_loss_gradients_match_the_derivatives_and_non_saturating_is_larger_near_zero():
    d = torch.tensor([0.001, 0.01, 0.1, 0.5, 0.9], dtype=torch.float64)
    grads = {}
    for kind in gan.GENERATOR_LOSSES:
        a = logits_of(d).requires_grad_(True)
        (grads[kind],) = torch.autograd.grad(gan.generator_loss(a, kind) * len(d), a)
    # d/da log(1 − σ(a)) = −σ(a) = −D;   d/da −log σ(a) = −(1 − σ(a)) = −(1 − D)
    assert torch.allclose(grads["minimax"], -d) and torch.allclose(grads["nonsaturating"], -(1 - d))
    assert (grads["nonsaturating"].abs()[d < 0.5] > grads["minimax"].abs()[d < 0.5]).all()
    assert (grads["nonsaturating"].abs()[d <= 0.01] > 50 * grads["minimax"].abs()[d <= 0.01]).all()


def test_value_at_the_optimal_discriminator_is_2_js_minus_log_4():
    rng = np.random.default_rng(0)
    for _ in range(5):
        p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        d_star = gan.optimal_discriminator(torch.tensor(p), torch.tensor(q)).numpy()
        value = (p * np.log(d_star)).sum() + (q * np.log(1 - d_star)).sum()
        js = jensenshannon(p, q) ** 2  # scipy returns the square root of JS (natural log)
        assert value == pytest.approx(2 * js - math.log(4), rel=1e-10)
        # and D* beats any other discriminator on V
        other = np.clip(d_star + rng.normal(0, 0.05, 6), 0.01, 0.99)
        assert (p * np.log(other)).sum() + (q * np.log(1 - other)).sum() < value


def test_r1_penalty_of_a_linear_discriminator_is_half_gamma_norm_w_squared():
    w = torch.tensor([[0.3, -1.2]])
    x = torch.randn(16, 2).requires_grad_(True)
    logits = (x @ w.T).squeeze(1) + 0.7
    assert float(gan.r1_penalty(logits, x, gamma=4.0)) == pytest.approx(2.0 * float((w ** 2).sum()), rel=1e-6)


# ----------------------------------------------------------------------------- D*


def test_a_trained_discriminator_approaches_d_star_on_two_known_densities():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    real = 1.0 + 0.5 * torch.randn(10_000, 1, generator=g)   # p_data = N(1, 0.5²)
    fake = -0.5 + 1.0 * torch.randn(10_000, 1, generator=g)  # p_g = N(-0.5, 1)
    disc = gan.Discriminator(gan.GANConfig(dims=1, hidden=32))
    fit(disc, gan.two_sample_loss, (real, fake), epochs=10, batch_size=256, lr=3e-3, generator=g, progress=False)
    x = torch.linspace(-1.5, 2.0, 50)
    d_star = gan.optimal_discriminator(torch.tensor(norm.pdf(x, 1.0, 0.5)), torch.tensor(norm.pdf(x, -0.5, 1.0)))
    with torch.no_grad():
        d = torch.sigmoid(disc(x[:, None]))
    assert (d - d_star.float()).abs().max() < 0.06


# ----------------------------------------------------------------------------- networks


def test_packed_discriminator_judges_groups():
    config = gan.GANConfig(pack=4)
    model = gan.GAN(config)
    assert model.discriminator(torch.randn(12, 2)).shape == (3,)
    with pytest.raises(ValueError, match="not a multiple of pack=4"):
        model.discriminator(torch.randn(10, 2))
    # a pack is one input: permuting whole packs permutes the logits
    x = torch.randn(8, 2)
    swapped = torch.cat([x[4:], x[:4]])
    assert torch.allclose(model.discriminator(swapped), model.discriminator(x).flip(0))


def test_minibatch_std_feature_makes_each_judgement_depend_on_the_batch():
    torch.manual_seed(0)
    x = torch.randn(16, 2)
    others = torch.cat([x[:1], 5 * torch.randn(15, 2)])  # same first sample, different company
    plain = gan.Discriminator(gan.GANConfig())
    assert torch.allclose(plain(x)[0], plain(others)[0])
    mbstd = gan.Discriminator(gan.GANConfig(minibatch_std=True))
    assert not torch.allclose(mbstd(x)[0], mbstd(others)[0])
    # the extra input is the batch's standard deviation averaged over coordinates
    first = mbstd.net[0]
    expected = first(torch.cat([x, x.std(0).mean().expand(16, 1)], 1))
    hidden = {}
    first.register_forward_hook(lambda module, inputs, output: hidden.update(out=output))
    mbstd(x)
    assert torch.allclose(hidden["out"], expected)


@pytest.mark.parametrize("name,shape", [("digits", (8, 8)), ("mnist", (28, 28))])
def test_conv_and_conditional_shapes(name, shape):
    for n_classes, pack in ((0, 1), (10, 1), (0, 2)):
        config = gan.GANConfig.for_dataset(name, arch="conv", hidden=8, n_classes=n_classes, pack=pack)
        model = gan.GAN(config)
        y = torch.arange(6) % 10 if n_classes else None
        x = model.sample(6, y=y)
        assert x.shape == (6, shape[0] * shape[1]) and 0 <= x.min() and x.max() <= 1
        assert model.discriminator(x, y).shape == (6 // pack,)


def test_config_errors_are_one_line():
    with pytest.raises(ValueError, match=r"pack must be a positive integer \(1, 2, \.\.\.\), got 0"):
        gan.GANConfig(pack=0)
    with pytest.raises(ValueError, match="arch='conv' needs shape"):
        gan.GANConfig(arch="conv")
    with pytest.raises(ValueError, match="unknown generator_loss 'hinge'"):
        gan.TrainConfig(generator_loss="hinge")
    with pytest.raises(ValueError, match="needs labels y"):
        gan.GAN(gan.GANConfig(n_classes=3)).sample(2)


# ----------------------------------------------------------------------------- training


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_adversarial_step_takes_k_discriminator_steps_per_generator_step():
    torch.manual_seed(0)
    model = gan.GAN(gan.GANConfig(hidden=16))
    step = gan.AdversarialStep(model, gan.TrainConfig(k=2, snapshot_every=1, snapshot_size=10))
    x = data.toy("8gaussians", 64)
    g0, d0 = _params(model.generator), _params(model.discriminator)
    step(model, (x,))  # call 1: discriminator only
    assert step.steps == 0 and not _changed(g0, model.generator) and _changed(d0, model.discriminator)
    g1, d1 = _params(model.generator), _params(model.discriminator)
    step(model, (x,))  # call 2: discriminator, then generator
    assert step.steps == 1 and _changed(g1, model.generator) and _changed(d1, model.discriminator)
    assert [s.step for s in step.snapshots] == [0, 1] and step.snapshots[0].samples.shape == (10, 2)
    assert len(step.log["g_loss"]) == 1


@pytest.mark.parametrize("config", [
    gan.GANConfig(hidden=16),
    gan.GANConfig(hidden=16, pack=4),
    gan.GANConfig(hidden=16, minibatch_std=True),
    gan.GANConfig.for_dataset("digits", hidden=8),
    gan.GANConfig.for_dataset("digits", arch="conv", hidden=8, n_classes=10),
])
def test_one_step_dry_run_through_fit(config):
    torch.manual_seed(0)
    model = gan.GAN(config)
    if config.dims == 2:
        batch = (data.toy("8gaussians", 64),)
    else:
        digits = data.digits("train")
        batch = (digits.scaled()[:64],) + ((digits.y[:64],) if config.n_classes else ())
    step = gan.AdversarialStep(model, gan.TrainConfig(r1=1.0 if config.dims == 2 else 0.0))
    before = _params(model)
    history = fit(model, gan.batch_loss, batch, epochs=1, batch_size=64, progress=False, step=step)
    assert history.epochs == 1 and math.isfinite(history.train[0]) and step.steps == 1
    assert _changed(before, model)
    assert history.train[0] == pytest.approx(step.log["d_loss"][0], rel=1e-6)


def test_mode_coverage_separates_a_collapsed_generator():
    # a generator that puts everything on one mode covers 1 of 8 with high quality
    collapsed = metrics.ring_centres()[[2]] + 0.01 * torch.randn(500, 2)
    out = metrics.mode_coverage(collapsed, metrics.ring_centres(), std=0.05)
    assert out["modes"] == 1 and out["high_quality"] == 1.0
