"""Bad input at genlib's boundaries: one line naming the value and what is allowed (issue 6).

Each case failed (silent garbage, a raw index error or a long traceback) before the shared
helpers in ``genlib.checks`` were called where settings and data enter the models.
"""
import math

import pytest
import torch

from genlib import data, density, vae


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message and len(message) < 300, message
    return message


@pytest.mark.parametrize("field, value, message", [
    ("latent_dim", 0, "latent_dim must be a positive integer"),
    ("hidden", -5, "hidden must be a positive integer"),
    ("levels", 1, "levels must be an integer >= 2"),
    ("dropout", 1.0, r"dropout must be in \[0, 1\)"),
    ("dropout", -0.1, r"dropout must be in \[0, 1\)"),
    ("beta", -1.0, "beta must be >= 0"),
    ("n_classes", -1, "n_classes must be a non-negative integer"),
    ("shape", (8, 7), "does not fold dims=64"),
    ("likelihood", "poisson", "unknown likelihood 'poisson'; choose one of"),
])
def test_vae_config_fields(field, value, message):
    with pytest.raises(ValueError, match=message) as err:
        vae.VAEConfig(**{field: value})
    one_line(err)


def test_conv_arch_with_a_shape_it_cannot_take():
    with pytest.raises(ValueError, match="multiples of 4") as err:
        vae.VAEConfig(dims=36, shape=(6, 6), arch="conv")
    one_line(err)


@pytest.mark.parametrize("dataset, bad, message", [
    ("binarized_mnist", 0.5, "0 or 1"),
    ("binarized_mnist", 17.0, "0 or 1"),
    ("digits", 0.25, r"integers 0\.\.16"),  # scaled floats, silently truncated before
    ("digits", 17, r"integers 0\.\.16"),    # a raw index error before
    ("digits", -1, r"integers 0\.\.16"),
])
def test_inputs_outside_the_likelihood_support(dataset, bad, message):
    model = vae.VAE(vae.VAEConfig.for_dataset(dataset, hidden=16, latent_dim=2))
    x = torch.zeros(3, model.config.dims, dtype=torch.float32 if isinstance(bad, float) else torch.int64)
    x[1, 5] = bad
    for score in (model.loss, lambda x: model.log_prob(x, k=2), model.elbo):
        with pytest.raises(ValueError, match=message) as err:
            score(x)
        one_line(err)


def test_a_bernoulli_log_probability_is_never_positive_on_valid_input():
    model = vae.VAE(vae.VAEConfig.for_dataset("binarized_mnist", hidden=16, latent_dim=2))
    x = torch.bernoulli(torch.full((4, 784), 0.3))
    assert (model.log_prob(x, k=3) <= 0).all()


def test_wrong_image_shape_and_bad_k_and_n():
    model = vae.VAE(vae.VAEConfig(hidden=16, latent_dim=2))
    with pytest.raises(ValueError, match=r"shape \(batch, 64\)") as err:
        model.loss(torch.zeros(2, 63, dtype=torch.long))
    one_line(err)
    for k in (0, -3):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            model.log_prob(torch.zeros(2, 64, dtype=torch.long), k=k)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        model.sample(0)


def test_gmm_from_params_checks_shapes_weights_and_covariances():
    mu, cov = torch.zeros(2, 3), torch.eye(3).repeat(2, 1, 1)
    good = density.GaussianMixture.from_params(torch.tensor([0.3, 0.7]), mu, cov)
    assert good.K == 2
    cases = [
        ((torch.tensor([0.3, 0.7]), torch.zeros(3, 3), cov), "expected pi"),
        ((torch.tensor([0.3, 0.7]), mu, torch.eye(2).repeat(2, 1, 1)), "expected pi"),
        ((torch.tensor([0.5, 0.7]), mu, cov), "sum to 1"),
        ((torch.tensor([1.5, -0.5]), mu, cov), "must be >= 0"),
        ((torch.tensor([0.5, 0.5]), mu, -cov), "positive definite"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            density.GaussianMixture.from_params(*args)
        one_line(err)


@pytest.mark.parametrize("model", [density.Gaussian(), density.GaussianMixture(2), density.KDE()])
def test_log_prob_and_sample_before_fit(model):
    with pytest.raises(RuntimeError, match="no parameters yet: call fit") as err:
        model.log_prob(torch.zeros(3, 2))
    one_line(err)
    with pytest.raises(RuntimeError, match="call fit"):
        model.sample(3)


def test_log_prob_of_points_of_another_dimension():
    model = density.Gaussian().fit(torch.randn(50, 2))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)") as err:
        model.log_prob(torch.zeros(4, 3))
    one_line(err)


@pytest.mark.parametrize("kwargs, message", [
    ({"bw_method": 0.0}, "bw_method must be > 0"),
    ({"bw_method": -1.0}, "bw_method must be > 0"),
    ({"bw_method": "scot"}, "unknown bw_method 'scot'"),
    ({"bandwidth": 0.0}, "bandwidth must be > 0"),
    ({"bandwidth": math.nan}, "bandwidth must be a finite number"),
])
def test_kde_settings(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        density.KDE(**kwargs)
    one_line(err)


def test_fitting_on_no_points():
    for model in (density.KDE(), density.Gaussian()):
        with pytest.raises(ValueError, match="at least 1 point, got 0") as err:
            model.fit(torch.zeros(0, 2))
        one_line(err)
    with pytest.raises(ValueError, match="at least 2 points, got 1"):
        density.KDE(bw_method="scott").fit(torch.zeros(1, 2))


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 2.5}, "n must be a positive integer"),
    ({"n": 0}, "n must be a positive integer"),
    ({"noise": -0.1}, "noise must be >= 0"),
    ({"noise": math.nan}, "noise must be a finite number"),
])
def test_toy_data_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        data.toy("moons", **kwargs)
    one_line(err)


def test_dequantize_levels():
    for levels in (0, -2):
        with pytest.raises(ValueError, match="levels must be a positive integer"):
            data.dequantize(torch.zeros(2, 3), levels)
