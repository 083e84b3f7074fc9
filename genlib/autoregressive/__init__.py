r"""Autoregressive models: the chain rule as a product of classifiers (Chapter 6).

Any distribution over a sequence (or an image read in raster order, row by row) factorises as

    p(x) = Π_{i=1}^{D} p(x_i | x_1, ..., x_{i-1}),    log p(x) = Σ_i log p(x_i | x_{<i}),

with no approximation. An autoregressive model predicts each factor with one network: a
classifier whose input is everything before position i and whose output is a categorical
distribution over the V values (``levels``) that x_i can take. Training maximises the exact
log-likelihood, a sum of cross-entropies that one forward pass computes for every position at
once; sampling draws x_1, then x_2 given x_1, ..., one position at a time.

For images, the PixelCNN (van den Oord et al. 2016) makes every output depend only on earlier
pixels with *masked* convolutions: the first layer's mask ("A") hides the centre pixel and
everything after it, later masks ("B") let a pixel see its own features (which already depend only on
the past). Stacked 3x3 masks leave a *blind spot*, a wedge of earlier pixels above-right that no
path reaches; the gated PixelCNN (van den Oord et al., NeurIPS 2016) splits the network into a
vertical stack (all rows above) and a horizontal stack (the current row, to the left), which
together see every earlier pixel.

Contents: the masks (:func:`mask_a`, :func:`mask_b`, :func:`mask_vertical`,
:func:`mask_horizontal`), :class:`MaskedConv2d`, the models :class:`PixelCNN` (``arch="pixelcnn"``
or ``"gated"``, chosen by :class:`PixelCNNConfig`; optional class conditioning), their verbs
``log_prob``/``loss``/``sample``/``complete`` (pixel by pixel, and a faster sampler that only
recomputes the window each pixel depends on), :func:`dependency` (which input pixels an output
depends on, by gradients), MADE (Germain et al. 2015: :class:`MADE`, a masked MLP that outputs every
conditional in one pass, in any order — the conditioner of Chapter 7's autoregressive flows — and
:class:`CategoricalMADE`, its image model), dilated causal convolutions (:class:`DilatedCausalModel`),
colour images with masks that order R, G, B (:class:`ColourPixelCNN`), PixelCNN++'s discretised logistic
mixture as an output head (``PixelCNNConfig(output="logistic")``, :func:`logistic_mixture_log_probs`), and
two next-character models of text: an MLP over a window (:class:`CharModel`) and a causal transformer
with a KV cache (:class:`CharTransformer`).

Layout: ``pixelcnn`` (masks, PixelCNN, receptive fields), ``colour``, ``logistic``, ``made``, ``sequence``
(dilated convolutions, text), ``common`` (inverse-CDF draws, the loss, the exact test NLL); every public
name is importable from ``genlib.autoregressive``; the family's declaration is at the end of this file.
"""
from __future__ import annotations

import torch

from genlib import data
from genlib.autoregressive.common import batch_loss, categorical_inverse_cdf, evaluate_nll
from genlib.autoregressive.colour import (COLOURS, ColourConfig, ColourPixelCNN, colour_dependency, colour_grid,
                                          colour_groups, colour_mask)
from genlib.autoregressive.logistic import logistic_mixture_direct, logistic_mixture_log_probs
from genlib.autoregressive.made import (ORDERS, MADE, CategoricalMADE, MADEConfig, MaskedLinear, made_degrees,
                                        made_masks)
from genlib.autoregressive.pixelcnn import (ARCHS, OUTPUTS, MaskedConv2d, PixelCNN, PixelCNNConfig, cone, dependency,
                                            mask_a, mask_b, mask_horizontal, mask_vertical, raster_before,
                                            sampling_seconds)
from genlib.autoregressive.sequence import (Block, CausalConv1d, CausalSelfAttention, CharModel, CharTransformer,
                                            DilatedCausalModel, DilatedConfig, Vocabulary, char_loss, chunks,
                                            text_corpus, transformer_loss, windows)
from genlib.family import NLL, Family

# ----------------------------------------------------------------------------- the family's declaration


def _build(params) -> PixelCNN:
    """Chapter 6, section 5: the gated PixelCNN (the chapter's main model; it also trains a plain one)."""
    train = data.images(params.dataset, "train")
    return PixelCNN(PixelCNNConfig(shape=train.shape, levels=train.levels, arch="gated",
                                   channels=params.channels, n_layers=params.n_layers))


def _train(model: PixelCNN, params, generator: torch.Generator, options: dict):
    from genlib.train import fit

    train, val = (data.images(params.dataset, s).x for s in ("train", "val"))
    return fit(model, batch_loss, train, val, epochs=params.epochs, batch_size=64, lr=3e-3,
               patience=params.epochs, generator=generator, **options)  # patience: keep the best epoch


def _nll(model: PixelCNN, x: torch.Tensor, generator: torch.Generator) -> NLL:
    return NLL(evaluate_nll(model, x).nats, "exact",
               f"NLL: exact, -sum_i log p(x_i | x_<i) of the integer images over the {model.config.levels} levels "
               "(the discrete scale of every row)")


FAMILY = Family(
    name="pixelcnn", chapter="06_autoregressive", model=PixelCNN, build=_build, train=_train, nll=_nll, density="exact",
    samples=lambda model, n, generator: model.sample(n, generator=generator, fast=True).float()
    / (model.config.levels - 1),
    describe=lambda model, params: f"gated PixelCNN ({model.config.channels} channels, {model.config.n_layers} layers)",
    smoke={"epochs": 1, "channels": 8, "n_layers": 2},
    remarks=lambda model, params, seed: [
        f"samples: {model.config.dims} sequential network passes (one per pixel, the windowed fast sampler)",
        "no latent features: an autoregressive model has none"])
