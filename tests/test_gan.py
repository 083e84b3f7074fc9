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


def test_hinge_and_critic_losses_equal_their_formulas():
    real, fake = torch.tensor([2.0, 0.5, -0.3]), torch.tensor([-1.5, 0.2])
    d, g = gan.hinge_losses(real, fake)
    # max(0, 1 − a) on real: 0, 0.5, 1.3; max(0, 1 + a) on fake: 0, 1.2
    assert float(d) == pytest.approx((0 + 0.5 + 1.3) / 3 + (0 + 1.2) / 2)
    assert float(g) == pytest.approx(-(-1.5 + 0.2) / 2)
    assert float(gan.critic_loss(real, fake)) == pytest.approx((-1.5 + 0.2) / 2 - (2.0 + 0.5 - 0.3) / 3)


def test_gradient_penalty_against_hand_computed_critics():
    w = torch.tensor([0.6, -2.0, 1.0])
    real, fake = torch.randn(32, 3), torch.randn(32, 3) + 2

    def linear(x, y=None):  # ∇f = w everywhere: penalty λ (‖w‖ − 1)²
        return x @ w

    assert float(gan.gradient_penalty(linear, real, fake, 10.0)) == pytest.approx(10 * (float(w.norm()) - 1) ** 2,
                                                                                 rel=1e-5)

    def quadratic(x, y=None):  # ∇f(x̂) = x̂: penalty λ mean (‖x̂‖ − 1)² at x̂ = u x + (1 − u) x̃
        return 0.5 * x.pow(2).sum(1)

    got = gan.gradient_penalty(quadratic, real, fake, 2.0, generator=torch.Generator().manual_seed(3))
    u = torch.rand(32, 1, generator=torch.Generator().manual_seed(3))
    between = u * real + (1 - u) * fake
    assert float(got.detach()) == pytest.approx(float(2.0 * (between.norm(dim=1) - 1).pow(2).mean()), rel=1e-5)


def test_spectral_norm_makes_every_weight_of_d_have_largest_singular_value_one():
    torch.manual_seed(0)
    disc = gan.Discriminator(gan.GANConfig(hidden=16, spectral_norm=True))
    x = torch.randn(64, 2)
    for _ in range(30):  # one power iteration per training-mode call
        disc(x)
    linears = [m for m in disc.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    for m in linears:  # the weight the layer uses is W / σ_max(W): its largest singular value is 1
        assert float(torch.linalg.svdvals(m.weight.detach())[0]) == pytest.approx(1.0, abs=1e-3)
    # hence D is 1-Lipschitz (leaky ReLU is): |D(a) − D(b)| ≤ ‖a − b‖
    disc.eval()
    a, b = torch.randn(200, 2), torch.randn(200, 2)
    with torch.no_grad():
        assert ((disc(a) - disc(b)).abs() <= (a - b).norm(dim=1) + 1e-5).all()
    plain = gan.Discriminator(gan.GANConfig(hidden=16))
    assert max(float(torch.linalg.svdvals(m.weight.detach())[0]) for m in plain.modules()
               if isinstance(m, torch.nn.Linear)) != pytest.approx(1.0, abs=1e-3)


# ----------------------------------------------------------------------------- the Dirac-GAN


def test_dirac_gan_wasserstein_simultaneous_steps_spiral_out_exactly():
    # ψ ← ψ − η θ, θ ← θ + η ψ: a rotation scaled by √(1 + η²) per step
    path = gan.dirac_gan(1.0, 0.5, steps=100, lr=0.1, loss="wasserstein")
    assert path.shape == (101, 2)
    r2 = path.pow(2).sum(1)
    assert torch.allclose(r2, 1.25 * (1 + 0.01) ** torch.arange(101, dtype=torch.float64), rtol=1e-10)


def test_dirac_gan_near_equilibrium_rotates_at_half_speed_and_r1_damps_it():
    # near 0, σ(ψθ) ≈ 1/2: the GAN's field is the Wasserstein one times 1/2
    small = gan.dirac_gan(1e-4, 0.0, steps=50, lr=0.2, loss="gan")
    r2 = small.pow(2).sum(1)
    assert float(r2[-1] / r2[0]) == pytest.approx((1 + 0.01) ** 50, rel=1e-4)
    alternating = gan.dirac_gan(1.0, 0.0, steps=2000, lr=0.1, loss="wasserstein", simultaneous=False)
    assert alternating.norm(dim=1).max() < 1.1 and alternating.norm(dim=1)[-500:].min() > 0.9  # an orbit
    damped = gan.dirac_gan(1.0, 0.0, steps=2000, lr=0.1, loss="gan", r1=1.0)
    assert float(damped[-1].norm()) < 1e-3
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        gan.dirac_gan(1.0, 0.0, steps=2, lr=0.1, loss="hinge")


# ----------------------------------------------------------------------------- inversion and memorisation


def test_invert_finds_a_code_for_an_image_the_generator_can_make():
    torch.manual_seed(0)
    model = gan.GAN(gan.GANConfig(dims=8, latent_dim=3, hidden=16))
    g = torch.Generator().manual_seed(1)
    target = model.sample(5, generator=g)  # in the range of G
    start = ((model.sample(5, generator=torch.Generator().manual_seed(7)) - target).pow(2).sum(1)).mean()
    z, x_hat = gan.invert(model, target, steps=400, lr=0.05, generator=torch.Generator().manual_seed(2))
    assert z.shape == (5, 3) and x_hat.shape == (5, 8)
    error = (x_hat - target).pow(2).sum(1)
    # the problem is not convex: most codes are found exactly, a few runs end in a local minimum
    assert int((error < 1e-3 * start).sum()) >= 4
    with pytest.raises(ValueError, match=r"x must have shape \(N, 8\)"):
        gan.invert(model, torch.zeros(5, 7))


def test_nearest_neighbours_against_a_loop():
    rng = np.random.default_rng(0)
    x, ref = rng.normal(size=(7, 4)), rng.normal(size=(20, 4))
    distance, index = gan.nearest_neighbours(torch.tensor(x), torch.tensor(ref))
    for i in range(7):
        d = [math.dist(x[i], r) for r in ref]
        assert int(index[i]) == int(np.argmin(d)) and float(distance[i]) == pytest.approx(min(d))
    copies, _ = gan.nearest_neighbours(torch.tensor(ref[:3]), torch.tensor(ref))
    assert torch.equal(copies, torch.zeros(3, dtype=copies.dtype))


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
    with pytest.raises(ValueError, match="unknown loss 'least-squares'"):
        gan.TrainConfig(loss="least-squares")
    with pytest.raises(ValueError, match="gp must be >= 0, got -1.0"):
        gan.TrainConfig(gp=-1.0)
    with pytest.raises(ValueError, match=r"unknown ring option\(s\) \['lr'\]"):
        gan.RingExperiment().run(0, lr=1e-3)


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
@pytest.mark.parametrize("game", [dict(r1=1.0), dict(loss="hinge"), dict(loss="wasserstein", gp=10.0)])
def test_one_step_dry_run_through_fit(config, game):
    torch.manual_seed(0)
    model = gan.GAN(config)
    if config.dims == 2:
        batch = (data.toy("8gaussians", 64),)
    else:
        digits = data.digits("train")
        batch = (digits.scaled()[:64],) + ((digits.y[:64],) if config.n_classes else ())
    step = gan.AdversarialStep(model, gan.TrainConfig(**game))
    before = _params(model)
    history = fit(model, gan.batch_loss, batch, epochs=1, batch_size=64, progress=False, step=step)
    assert history.epochs == 1 and math.isfinite(history.train[0]) and step.steps == 1
    assert _changed(before, model)
    assert history.train[0] == pytest.approx(step.log["d_loss"][0], rel=1e-6)
    assert step.log["g_grad"][0] > 0


def test_ema_replaces_the_generator_by_the_running_average_of_its_weights():
    torch.manual_seed(0)
    model = gan.GAN(gan.GANConfig(hidden=8))
    step = gan.AdversarialStep(model, gan.TrainConfig(ema=0.5))
    x = data.toy("8gaussians", 32)
    weights = [_params(model.generator)]
    for _ in range(2):
        step(model, (x,))
        weights.append(_params(model.generator))
    step.finish(model)
    # avg ← ½ avg + ½ θ from avg = θ0: after two steps ¼ θ0 + ¼ θ1 + ½ θ2
    for p, w0, w1, w2 in zip(model.generator.parameters(), *weights):
        assert torch.allclose(p, 0.25 * w0 + 0.25 * w1 + 0.5 * w2, atol=1e-6)
    with pytest.raises(ValueError, match=r"ema must be in \[0, 1\)"):
        gan.TrainConfig(ema=1.0)


def test_spectral_norm_conv_discriminator_trains_one_step():
    torch.manual_seed(0)
    model = gan.GAN(gan.GANConfig.for_dataset("digits", arch="conv", hidden=8, spectral_norm=True))
    step = gan.AdversarialStep(model, gan.TrainConfig(loss="hinge"))
    step(model, (data.digits("train").scaled()[:32],))
    assert step.steps == 1 and math.isfinite(step.log["d_loss"][0])


def test_mode_coverage_separates_a_collapsed_generator():
    # a generator that puts everything on one mode covers 1 of 8 with high quality
    collapsed = metrics.ring_centres()[[2]] + 0.01 * torch.randn(500, 2)
    out = metrics.mode_coverage(collapsed, metrics.ring_centres(), std=0.05)
    assert out["modes"] == 1 and out["high_quality"] == 1.0


def test_adversarial_step_state_round_trip_continues_exactly():
    # a resumed GAN needs both Adam states and the weight average, not only the weights
    x = data.toy("8gaussians", 32)
    torch.manual_seed(0)
    model = gan.GAN(gan.GANConfig(hidden=8))
    step = gan.AdversarialStep(model, gan.TrainConfig(ema=0.5))
    for _ in range(2):
        step(model, (x,))
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    saved = step.state_dict()
    torch.manual_seed(1)
    step(model, (x,))
    expected = _params(model)
    resumed = gan.GAN(gan.GANConfig(hidden=8))
    resumed.load_state_dict(weights)
    again = gan.AdversarialStep(resumed, gan.TrainConfig(ema=0.5))
    again.load_state_dict(saved)
    torch.manual_seed(1)
    again(resumed, (x,))
    assert again.steps == step.steps == 3 and again.log == step.log
    for a, b in zip(_params(resumed), expected):
        assert torch.allclose(a, b)
    with pytest.raises(ValueError, match="weight average"):
        gan.AdversarialStep(resumed, gan.TrainConfig()).load_state_dict(saved)


def test_a_gan_resumed_from_fits_checkpoint_is_the_uninterrupted_run(tmp_path):
    # train.fit's checkpoint holds the AdversarialStep's state (both Adam states, the average, the log)
    x = data.toy("8gaussians", 64)

    def run(epochs, path=None, model=None, step=None):
        from genlib.train import fit

        model = model or gan.GAN(gan.GANConfig(hidden=8))
        step = step or gan.AdversarialStep(model, gan.TrainConfig(ema=0.5), gen)
        fit(model, gan.batch_loss, x, epochs=epochs, batch_size=16, checkpoint=path, generator=gen,
            progress=False, step=step)
        return model, step

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    full, full_step = run(3)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    run(2, tmp_path / "g.pt")
    torch.manual_seed(5)  # the fresh model's own weights and Adam states are all replaced
    resumed = gan.GAN(gan.GANConfig(hidden=8))
    fresh_step = gan.AdversarialStep(resumed, gan.TrainConfig(ema=0.5), gen)
    resumed, resumed_step = run(3, tmp_path / "g.pt", resumed, fresh_step)
    assert resumed_step.steps == full_step.steps == 12 and resumed_step.log == full_step.log
    for a, b in zip(_params(resumed), _params(full)):
        assert torch.equal(a, b)
    plain = gan.GAN(gan.GANConfig(hidden=8))  # a file written without a step's state is refused for one
    from genlib import train

    train.fit(plain, gan.batch_loss, x, epochs=1, checkpoint=tmp_path / "p.pt", progress=False)
    with pytest.raises(train.CheckpointError, match="no state for this run's custom step"):
        train.load_checkpoint(tmp_path / "p.pt", plain, step=gan.AdversarialStep(plain))
