"""A model family, declared once, and the one registry of families.

Each family module ends with a :class:`Family` record: its name, the chapter whose parameters
(:mod:`genlib.params`) and profile entry configure it, the model class, and the few functions that
everything outside the module needs —

* ``build(params) -> model``: an untrained model from the chapter's parameters dataclass;
* ``train(model, params, generator, options) -> History``: the chapter's training recipe (``options``:
  ``device``, ``progress``, ``precision``, ``compile``);
* ``nll(model, x, generator) -> NLL``: test negative log-likelihood of integer images ``x`` in nats per
  image on their discrete scale, and its kind (``exact``, ``bound`` or ``estimate``); ``None`` when the
  family has no likelihood; ``density`` declares the kind (or, without one, ``"none"``, ``"energy only"``);
* ``samples(model, n, generator) -> (n, D)``: draws in one declared space, :data:`SPACE`;
* ``features(model, x) -> (N, F)``: latent features of integer images, if the family has an encoder;
* ``describe(model, params) -> str``: a one-line name of the trained model; ``remarks(model, params,
  seed) -> list[str]``: what a reader of the scoreboard should know about its row;
* ``inputs(model, x, levels, generator)``: integer images as the model's ``loss`` takes them (the levels,
  [0, 1], [−1, 1], dequantised); ``labels``: whether the model is trained on (image, label) pairs;
* ``smoke``: parameter overrides that make a seconds-long model (the contract test, smoke runs).

The model classes keep one written contract: ``loss(x, y=None, *, generator=None)`` is the training
loss of a batch (a scalar; an unconditional model refuses labels), ``sample(n, *, y=None,
generator=None)`` draws ``n`` samples; configs are frozen dataclasses; training goes through
:func:`genlib.train.fit` (with the family's loss, or its ``step`` for a GAN). ``tests/test_family_contract.py``
checks it for every registered family.

:data:`REGISTRY` lists the families: :mod:`genlib.train_family`, :mod:`genlib.scoreboard`,
:mod:`genlib.compare` and the tests loop over it and keep no per-family code. Adding a family is one
module ending in its ``FAMILY = Family(...)`` and one line in :data:`REGISTRY`.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

KINDS = ("exact", "bound", "estimate")
SPACE = "unit"  # samples are (n, D) pixel intensities in [0, 1]: grey level l of L is l / (L - 1)

# name -> "module:attribute" of the family's declaration (imported when first asked for)
REGISTRY: dict[str, str] = {
    "gmm": "genlib.density:FAMILY",
    "vae": "genlib.vae:FAMILY",
    "ebm": "genlib.ebm:FAMILY",
    "gan": "genlib.gan:FAMILY",
    "pixelcnn": "genlib.autoregressive:FAMILY",
    "flow": "genlib.flows:FAMILY",
    "diffusion": "genlib.diffusion:FAMILY",
    "flow_matching": "genlib.diffusion:FLOW_MATCHING",
}


@dataclass(frozen=True)
class NLL:
    """A test negative log-likelihood in nats per image and what kind of number it is; unpacks as
    ``nats, kind``. ``note`` says how it was computed (shown with the scoreboard's row)."""

    nats: float
    kind: str
    note: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"an NLL is one of {', '.join(KINDS)}, got {self.kind!r}")

    def __iter__(self) -> Iterator:
        return iter((self.nats, self.kind))


def _no_remarks(model, params, seed: int) -> list[str]:
    return []


def _integers(model, x: torch.Tensor, levels: int, generator: torch.Generator | None) -> torch.Tensor:
    return x


@dataclass(frozen=True)
class Family:
    """One family's declaration (see the module's docstring for the contract of each function)."""

    name: str
    chapter: str                          # e.g. "04_vae": its parameters dataclass and profile entry
    model: type                           # the model class (capabilities are read off it)
    build: Callable[[Any], Any]
    train: Callable[..., Any]             # (model, params, generator, options) -> History
    samples: Callable[[Any, int, torch.Generator], torch.Tensor]
    describe: Callable[[Any, Any], str]
    nll: Callable[[Any, torch.Tensor, torch.Generator], NLL] | None = None
    features: Callable[[Any, torch.Tensor], torch.Tensor] | None = None
    remarks: Callable[[Any, Any, int], list[str]] = _no_remarks
    inputs: Callable[[Any, torch.Tensor, int, torch.Generator | None], torch.Tensor] = _integers
    labels: bool = False                  # trained on (image, label) pairs: loss and sample take y
    smoke: dict = field(default_factory=dict)  # parameter overrides for a seconds-long model
    density: str = "none"                 # the kind of its nll (KINDS), or without one "none" / "energy only"
    dataset_key: str = "dataset"          # the parameter naming the image data set it trains on
    checkpoint: bool = True               # False: fitted in seconds where it is used, never saved
    budget: tuple[str, ...] = ()          # the parameters that set its training budget (() : every epoch/step one)

    @property
    def params(self) -> type:
        """The chapter's parameters dataclass (defaults: the book profile)."""
        from genlib import params

        return params.CHAPTERS[self.chapter]

    @property
    def chapter_number(self) -> int:
        return int(self.chapter[:2])

    def parameters(self, values: dict | None = None):
        """The parameters dataclass holding ``values`` (a dict, e.g. saved with a checkpoint)."""
        from genlib import params

        return params.of(self.chapter, values or {})


class _Registry(Mapping):
    """The families of :data:`REGISTRY`, each imported from its module on first use."""

    def __getitem__(self, name: str) -> Family:
        if name not in REGISTRY:
            raise KeyError(name)
        module, attribute = REGISTRY[name].split(":")
        declared = getattr(importlib.import_module(module), attribute)
        if not isinstance(declared, Family) or declared.name != name:
            raise TypeError(f"{REGISTRY[name]} is not the Family record of {name!r}")
        return declared

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


FAMILIES: Mapping[str, Family] = _Registry()


def get(name: str) -> Family:
    """The family called ``name``; an unknown name is a one-line ``ValueError``."""
    from genlib import checks

    checks.choice("family", name, REGISTRY)
    return FAMILIES[name]
