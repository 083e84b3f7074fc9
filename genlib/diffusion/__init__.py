r"""Diffusion models and flow matching (Chapter 8).

Forward process (fixed, no parameters), for t = 1..T with a noise schedule 0 < β_t < 1:

    q(x_t | x_{t-1}) = N(√(1−β_t) x_{t-1}, β_t I),     i.e. x_t = √(1−β_t) x_{t-1} + √β_t ε_t,
    q(x_t | x_0)     = N(√ᾱ_t x_0, (1−ᾱ_t) I),         ᾱ_t = Π_{s≤t} (1−β_s),  ᾱ_0 = 1.

Reverse process (learned): x_T ~ N(0, I), x_{t-1} ~ p_θ(x_{t-1} | x_t) = N(μ_θ(x_t, t), σ_t² I).
Given x_0, the step back is Gaussian in closed form (the *posterior*)

    q(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I),   μ̃_t = √ᾱ_{t-1} β_t/(1−ᾱ_t) x_0 + √α_t (1−ᾱ_{t-1})/(1−ᾱ_t) x_t,
                                             β̃_t = (1−ᾱ_{t-1})/(1−ᾱ_t) β_t,   α_t = 1 − β_t,

and writing x_0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t turns it into μ̃_t = (x_t − β_t/√(1−ᾱ_t) ε)/√α_t. Two
training objectives (Ho et al. 2020 for the second):

* ``"x_prev"`` — the lecture's stripped-down algorithm: regress x_{t-1} on (x_t, t), ‖f_θ(x_t, t) − x_{t-1}‖²;
* ``"eps"`` — predict the noise, ‖ε_θ(x_t, t) − ε‖² with x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε,

both minimised by the posterior mean E[x_{t-1} | x_t]; the second is the first reparameterised, with
a lower-variance target. The noise predictor is also a score estimate (Tweedie's formula):
∇ log q(x_t) ≈ −ε_θ(x_t, t)/√(1−ᾱ_t).

Sampling (:meth:`Diffusion.sample`): ancestral (η = 1) or deterministic DDIM (η = 0, Song et al.
2021), on all T steps or on an evenly spaced subsequence. The variational bound in nats per image on
integer images (:meth:`Diffusion.bound`) is L_T + Σ_{t=2}^T L_{t-1} + L_0 with a discretised Gaussian
decoder for the last step. :class:`FlowMatching` (Lipman et al. 2023; Liu et al. 2023) regresses
the velocity of straight paths x_t = (1−t) x_0 + t ε and integrates the ODE back with Euler steps.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from genlib import data
from genlib.family import NLL, Family
from genlib.diffusion.schedules import (NETS, NoiseSchedule, OBJECTIVES, SCHEDULES, cosine_betas, lattice_logsnr_max,
                                        linear_betas, make_betas, mean_from_eps, predict_x0, q_posterior, q_sample,
                                        q_step, reverse_step, score_from_eps, snr_betas, timesteps)
from genlib.diffusion.networks import MLPDenoiser, ResBlock, TimeEmbedding, UNet
from genlib.diffusion.model import (Diffusion, DiffusionConfig, alpha_bar_at, config_betas,
                                    discretized_gaussian_log_prob, from_unit_range, gaussian_kl, lattice_freqs,
                                    log_strata, make_net, to_unit_range)
from genlib.diffusion.flow_matching import FlowMatching, FlowMatchingConfig
from genlib.diffusion.training import TrainConfig, batch_loss, fit_with_cooldown


__all__ = ["Diffusion", "DiffusionConfig", "FlowMatching", "FlowMatchingConfig", "MLPDenoiser", "NETS",
           "NoiseSchedule", "OBJECTIVES", "ResBlock", "SCHEDULES", "TimeEmbedding", "TrainConfig", "UNet",
           "alpha_bar_at", "batch_loss", "config_betas", "cosine_betas", "discretized_gaussian_log_prob",
           "fit_with_cooldown", "from_unit_range", "gaussian_kl", "lattice_freqs", "lattice_logsnr_max",
           "linear_betas", "log_strata", "make_betas", "make_net", "mean_from_eps", "predict_x0", "q_posterior",
           "q_sample", "q_step", "reverse_step", "score_from_eps", "snr_betas", "timesteps", "to_unit_range",
           "SAMPLE_STEPS", "BOUND_STRATA", "ANCESTRAL_IMAGES", "FAMILY", "FLOW_MATCHING"]


# ----------------------------------------------------------------------------- the families' declarations


def _config(params) -> DiffusionConfig:
    """Flow matching's U-Net (and the chapter's first DDPM): the book's image config with ``params.schedule``."""
    data.check_dataset(params.dataset, ("digits", "mnist5k", "mnist"))
    return DiffusionConfig.for_dataset(params.dataset, T=params.T, schedule=params.schedule, width=params.width)


def _fixed_config(params) -> DiffusionConfig:
    """Chapter 8's fixed DDPM (section 8): the same U-Net on the lattice-matched ``snr`` schedule, whose
    smallest noise is σ_1 = ``bin_fraction`` of a grey level's bin."""
    data.check_dataset(params.dataset, ("digits", "mnist5k", "mnist"))
    return DiffusionConfig.for_dataset(params.dataset, T=params.T, schedule="snr", width=params.width,
                                       logsnr_max=lattice_logsnr_max(data.LEVELS[params.dataset], params.bin_fraction))


def _fit(model: nn.Module, params, epochs: int, generator: torch.Generator, options: dict):
    """Chapter 8's recipe for its image models: ``epochs`` passes, then a quarter as many at lr/10."""
    train = to_unit_range(data.images(params.dataset, "train").x, data.LEVELS[params.dataset])
    return fit_with_cooldown(model, train, None, TrainConfig(epochs=epochs), generator=generator, **options)


def _train(model: nn.Module, params, generator: torch.Generator, options: dict):
    """Flow matching: ``epochs`` passes (and the cool-down), as the chapter trains it."""
    return _fit(model, params, params.epochs, generator, options)


def _train_fixed(model: nn.Module, params, generator: torch.Generator, options: dict):
    """The fixed DDPM: ``fixed_epochs`` passes (and the cool-down), as the chapter trains it."""
    return _fit(model, params, params.fixed_epochs, generator, options)


_SMOKE = {"epochs": 1, "T": 10, "width": 4}
SAMPLE_STEPS = 100  # Euler steps of flow matching's sampler (FlowMatching.sample's default), and the DDPM's DDIM steps
BOUND_STRATA = 64   # the scoreboard's bound: strata of t (chapter 8's default bound_strata), over every test image
ANCESTRAL_IMAGES = 100  # the ancestral line's samples per seed: T U-Net passes each (minutes per seed at 447)


def _levels(model) -> int:
    return data.LEVELS["digits"] if model.config.shape == data.IMAGE_SHAPES["digits"] else 256  # else MNIST


def _nll(model: Diffusion, x: torch.Tensor, generator: torch.Generator) -> NLL:
    """Chapter 8's stratified estimate of the bound (:meth:`Diffusion.bound` with ``t_samples``) on every
    image of ``x``, in chunks of 150 images."""
    levels, T = _levels(model), model.T
    total = torch.cat([model.bound(x[i:i + 150], levels, t_samples=BOUND_STRATA, generator=generator)["total"]
                       for i in range(0, len(x), 150)])  # (images,) nats
    error = float(total.std()) / math.sqrt(len(total))
    strata = len(log_strata(T, BOUND_STRATA)) - 1
    return NLL(float(total.mean()), "bound",
               f"NLL: the variational bound L_T + sum of L_(t-1), t = 2..{T} + L_0 with the discretised Gaussian decoder "
               f"on the {levels} levels (Diffusion.bound), the sum by chapter 8's stratified estimator: {strata} "
               f"log-spaced strata of t, one t and one x_t per stratum and image, weighted by the stratum's size "
               f"(unbiased); over all {len(total)} test images; standard error over the images {error:.1f} nats")


def _describe_fixed(model: Diffusion, params) -> str:
    return (f"DDPM (U-Net width {params.width}, T = {params.T}, lattice-matched snr schedule; "
            f"DDIM, {SAMPLE_STEPS} steps)")


FAMILY = Family(
    name="diffusion", chapter="08_diffusion", model=Diffusion, train=_train_fixed, nll=_nll, density="bound",
    build=lambda params: Diffusion(_fixed_config(params)),
    inputs=lambda model, x, levels, generator: to_unit_range(x, levels), smoke={**_SMOKE, "fixed_epochs": 1},
    budget=("fixed_epochs",),
    # the scoreboard's protocol: DDIM at flow matching's budget of network evaluations (SAMPLE_STEPS); the
    # ancestral chain over all T steps is its second line (genlib.scoreboard.SECOND_LINES)
    samples=lambda model, n, generator: from_unit_range(model.sample(n, steps=min(SAMPLE_STEPS, model.T), eta=0.0,
                                                                     generator=generator)),
    describe=_describe_fixed,
    remarks=lambda model, params, seed: [
        f"chapter 8's fixed model (section 8): noise prediction on the lattice-matched snr schedule, sigma_1 = "
        f"{params.bin_fraction} of a grey level's bin, trained for fixed_epochs = {params.fixed_epochs} epochs and a "
        "quarter as many at lr/10",
        f"samples: DDIM (eta = 0) in {SAMPLE_STEPS} steps, {SAMPLE_STEPS} U-Net passes per image: the same number of "
        "network evaluations as flow matching's Euler steps; x_0 in [-1, 1] mapped to [0, 1]",
        "no log_prob (only the bound) and no latent features: no encoder (running DDIM backwards would give a "
        "deterministic x_T, not measured here)"])

FLOW_MATCHING = Family(
    name="flow_matching", chapter="08_diffusion", model=FlowMatching, train=_train,
    build=lambda params: FlowMatching(_config(params)),
    inputs=lambda model, x, levels, generator: to_unit_range(x, levels), smoke=_SMOKE, budget=("epochs",),
    samples=lambda model, n, generator: from_unit_range(model.sample(n, steps=SAMPLE_STEPS, generator=generator)),
    describe=lambda model, params: f"Flow matching (U-Net width {params.width}; Euler, {SAMPLE_STEPS} steps)",
    remarks=lambda model, params, seed: [
        "the chapter trains it on the digits with the DDPM's U-Net and recipe",
        f"samples: Euler integration of dx/dt = v(x, t) from t = 1 to 0 in {SAMPLE_STEPS} steps "
        "(FlowMatching.sample's default; the chapter's section 10 also tries 5-20); x_0 mapped to [0, 1]",
        "NLL: none. The chapter computes no likelihood; the ODE gives one by the instantaneous change of variables "
        "(log p(x_0) = log N(x_1) + integral of div v dt) with dequantisation, not computed here",
        "no latent features: no encoder (integrating the ODE forwards gives a deterministic z, not measured)"])
