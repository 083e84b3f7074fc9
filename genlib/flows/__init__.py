r"""Normalizing flows: exact likelihoods through invertible maps (Chapter 7).

A flow is an invertible, differentiable map f from data x to a latent z of the *same* dimension,
with a simple base density p_Z = N(0, I). The change of variables gives the density of x exactly,

    log p_X(x) = log p_Z(f(x)) + log |det ∂f(x)/∂x|,

and sampling is one pass through the inverse: z ~ N(0, I), x = f⁻¹(z). With f = f_M ∘ … ∘ f_1 the
log-determinant is a sum over layers, Σ_m log |det ∂h_m/∂h_{m-1}| (h_0 = x, h_M = z), so every layer
needs a cheap log-determinant and a cheap inverse. Coupling layers (Dinh et al. 2015, 2017) keep the
coordinates picked by a binary mask m and transform the others given them,

    z = m ⊙ x + (1 − m) ⊙ (x ⊙ exp(s(m ⊙ x)) + t(m ⊙ x)),    log |det| = Σ_d (1 − m_d) s_d,

whose Jacobian is triangular (after reordering) whatever the networks s and t are; the inverse is
x = m ⊙ z + (1 − m) ⊙ (z − t(m ⊙ z)) ⊙ exp(−s(m ⊙ z)). NICE's additive coupling is the case s = 0
(volume preserving). Masks alternate between layers so that every coordinate gets transformed.

Discrete images (V = ``levels`` grey levels) are dequantised, y = (x + u) / V with u ~ U[0, 1)^D,
and squeezed through a logit (a bijection with its own log-determinant); the density of y bounds
the discrete log-likelihood, log P(x) ≥ E_u[log p(y)] − D log V (:func:`genlib.metrics.discrete_log_prob`).

Beyond couplings: :class:`MaskedAutoregressive` (MAF, and IAF with ``inverse=True``; a MADE conditioner,
one pass for the density and D for sampling, or the reverse), Glow's pieces (:func:`squeeze_permutation`,
:class:`InvertibleConv1x1` in LU form, :class:`ConvCoupling`, :class:`Partial` for multi-scale
factoring-out, :func:`glow_layers`) and variational dequantisation (:class:`VariationalDequantizer`:
log P(x) ≥ E_q[log p((x + u)/V) − D log V − log q(u | x)]).

Every bijection here has ``forward(x) -> (z, log_det)`` with log_det = log |det ∂z/∂x| per row
(shape (B,)) and ``inverse(z) -> (x, log_det)`` with log_det = log |det ∂x/∂z| (the negative of the
forward one at the matching point). :class:`Flow` chains them under a standard normal base and has
the verbs of every genlib family: ``log_prob``, ``sample``, ``loss``.
"""
from __future__ import annotations

import torch

from genlib import data
from genlib.family import NLL, Family
from genlib.flows.bijections import (COUPLINGS, MASKS, ActNorm, AffineCoupling, Bijection, Logit, MaskedAutoregressive,
                                     MonotoneWarp, Permute, conditioner, make_mask, std_normal_log_prob)
from genlib.flows.dequantize import VariationalDequantizer
from genlib.flows.flow import Flow, FlowConfig, TrainConfig, batch_loss, build_layers, evaluate_nll
from genlib.flows.glow import ConvCoupling, InvertibleConv1x1, Partial, glow_layers, squeeze_permutation
from genlib.flows.posterior import ContextIAFStep, FlowPosteriorVAE, IAFPosterior

__all__ = ["COUPLINGS", "MASKS", "ActNorm", "AffineCoupling", "Bijection", "ContextIAFStep", "ConvCoupling", "Flow", "FlowConfig", "FlowPosteriorVAE",
           "IAFPosterior",
           "InvertibleConv1x1", "Logit", "MaskedAutoregressive", "MonotoneWarp", "Partial", "Permute", "TrainConfig",
           "VariationalDequantizer", "batch_loss", "build_layers", "conditioner", "evaluate_nll", "glow_layers",
           "make_mask", "squeeze_permutation", "std_normal_log_prob", "FAMILY"]


# ----------------------------------------------------------------------------- the family's declaration


def _build(params) -> Flow:
    """Chapter 7: the coupling flow on dequantised digits."""
    name = params.dataset
    h, w = data.IMAGE_SHAPES[data.check_dataset(name, ("digits", "mnist5k"))]
    return Flow(FlowConfig(dims=h * w, shape=(h, w), levels=data.LEVELS[name], n_layers=params.n_layers,
                           hidden=params.hidden, coupling=params.coupling))


def _train(model: Flow, params, generator: torch.Generator, options: dict):
    from genlib.train import fit

    settings = TrainConfig(epochs=params.epochs)
    train, val = (data.images(params.dataset, s).x for s in ("train", "val"))
    return fit(model, batch_loss, train, val, epochs=settings.epochs, batch_size=settings.batch_size,
               lr=settings.lr, weight_decay=settings.weight_decay, patience=settings.patience,
               generator=generator, **options)


def _nll(model: Flow, x: torch.Tensor, generator: torch.Generator) -> NLL:
    return evaluate_nll(model, x, draws=10, generator=generator)  # as the chapter measures it


_COUPLING_NAMES = {"affine": "RealNVP, affine", "additive": "NICE, additive"}

FAMILY = Family(
    name="flow", chapter="07_flows", model=Flow, build=_build, train=_train, nll=_nll, density="bound",
    samples=lambda model, n, generator: model.sample(n, generator=generator).float() / (model.levels - 1),
    features=lambda model, x: model.encode(x),
    smoke={"epochs": 1, "n_layers": 2, "hidden": 8},
    describe=lambda model, params: (f"Flow ({_COUPLING_NAMES[params.coupling]} couplings, M = {params.n_layers}, "
                                    f"hidden {params.hidden})"),
    remarks=lambda model, params, seed: [
        f"samples: one inverse pass, z ~ N(0, I), floored to the {model.levels} levels",
        f"probe features: z = f((x + 1/2)/{model.levels}), the forward map at the pixel centres (Flow.encode; "
        f"the chapter's latents of section 6), D = {model.config.dims} numbers"])
