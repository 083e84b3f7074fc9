"""Each chapter's parameters, as a frozen dataclass whose defaults are the book profile.

A chapter's ``parameters`` cell stays papermill's (plain assignments, which ``python -m genlib.run``
overrides); the dataclass here is the same list of names and defaults for code that runs without the
book — :mod:`genlib.train_family`, the scoreboard, an installed wheel. ``tests/test_params.py`` checks
that every chapter's cell equals its dataclass's defaults. Named profiles (``book``, ``paper``, ...) are
the package file ``genlib/profiles.yml``: ``{profile: {"all": {...}, "<chapter stem>": {...}}}``.

    resolve("04_vae", "paper", {"epochs": 3})   # defaults, then the profile, then overrides: a dict
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

PROFILES = Path(__file__).with_name("profiles.yml")


@dataclass(frozen=True)
class PrefaceParams:
    device: str = "cpu"
    dataset: str = "digits"
    epochs: int = 1
    seed: int = 0


@dataclass(frozen=True)
class GenerativeModelsParams:
    device: str = "cpu"
    dataset: str = "moons"
    image_dataset: str = "digits"
    epochs: int = 30
    seed: int = 0
    n_train: int = 500
    n_bandwidths: int = 25
    n_images: int | None = None
    n_steps: int = 40


@dataclass(frozen=True)
class DensityParams:
    device: str = "cpu"
    dataset: str = "8gaussians"
    image_dataset: str = "digits"
    epochs: int = 100  # EM iterations or gradient-ascent steps
    n_components: int = 8
    seed: int = 0


@dataclass(frozen=True)
class EnergyParams:
    device: str = "cpu"
    dataset: str = "moons"
    image_dataset: str = "digits"
    epochs: int = 100
    image_epochs: int = 30
    n_steps: int = 20
    long_steps: int = 500
    jem_epochs: int = 60
    checkpoint: str = ""
    seed: int = 0


@dataclass(frozen=True)
class VAEParams:
    device: str = "cpu"
    dataset: str = "digits"
    model: str = "mlp"
    epochs: int = 60
    latent_dim: int = 32
    betas: list = field(default_factory=lambda: [0.5, 1.0, 4.0, 8.0])
    k_iwae: int = 1000
    n_images: int | None = None
    checkpoint: str = ""
    seed: int = 0


@dataclass(frozen=True)
class GANParams:
    device: str = "cpu"
    dataset: str = "digits"
    epochs: int = 40
    steps: int = 1500
    stable_steps: int = 3000
    r1: float = 0.1
    seeds: list = field(default_factory=lambda: [0])
    mitigation: str = "minibatch_std"
    pack: int = 4
    ring_lr_d: float = 1e-4
    latent_dim: int = 16
    hidden: int = 32
    checkpoint: str = ""
    seed: int = 0


@dataclass(frozen=True)
class AutoregressiveParams:
    device: str = "cpu"
    dataset: str = "digits"
    epochs: int = 8
    channels: int = 32
    n_layers: int = 5
    text_chars: int = 60_000
    text_epochs: int = 2
    timing_sides: list = field(default_factory=lambda: [8, 16, 28])
    timing_rows: int = 1
    n_quality: int = 200
    made_hidden: int = 512
    n_images: int | None = None
    checkpoint: str = ""
    seed: int = 0


@dataclass(frozen=True)
class FlowParams:
    device: str = "cpu"
    dataset: str = "digits"
    toy: str = "moons"
    toy_epochs: int = 40
    epochs: int = 50
    n_layers: int = 8
    hidden: int = 128
    coupling: str = "affine"
    temperatures: list = field(default_factory=lambda: [1.0, 0.7])
    timing_images: int = 256
    checkpoint: str = ""
    seed: int = 0


@dataclass(frozen=True)
class DiffusionParams:
    device: str = "cpu"
    dataset: str = "digits"
    toy: str = "swissroll"
    epochs: int = 10
    fixed_epochs: int = 30
    toy_epochs: int = 60
    T: int = 1000
    toy_T: int = 100
    schedule: str = "linear"
    width: int = 16
    steps_grid: list = field(default_factory=lambda: [5, 10, 20])
    n_quality: int = 300
    bound_images: int = 64
    bound_strata: int = 64
    bin_fraction: float = 0.5
    guided_epochs: int = 10
    guidance_grid: list = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0, 4.0])
    ode_images: int = 4
    ode_steps: int = 40
    checkpoint: str = ""
    seed: int = 0


@dataclass(frozen=True)
class ComparisonParams:
    device: str = "cpu"
    dataset: str = "digits"
    results: str = "../results/scoreboard.json"
    seed: int = 0


CHAPTERS: dict[str, type] = {
    "00_preface": PrefaceParams,
    "01_generative_models": GenerativeModelsParams,
    "02_density_models": DensityParams,
    "03_energy_models": EnergyParams,
    "04_vae": VAEParams,
    "05_gans": GANParams,
    "06_autoregressive": AutoregressiveParams,
    "07_flows": FlowParams,
    "08_diffusion": DiffusionParams,
    "09_comparison": ComparisonParams,
}


def defaults(chapter: str) -> dict:
    """The book-profile parameters of ``chapter`` (its stem, e.g. ``"04_vae"``) as a dict."""
    return asdict(_params_class(chapter)())


def load_profile(name: str, path: Path = PROFILES) -> dict[str, dict]:
    """Profile ``name`` of the profiles file: ``{"all": {...}, "<chapter stem>": {...}}``."""
    profiles = yaml.safe_load(Path(path).read_text()) or {}
    if name not in profiles:
        raise ValueError(f"unknown profile {name!r}; choose one of: {', '.join(profiles)}")
    return profiles[name] or {}


def resolve(chapter: str, profile: str = "book", overrides: dict | None = None) -> dict:
    """``chapter``'s defaults, then the profile's ``all`` and chapter entries, then ``overrides``; a name
    the chapter does not declare is a one-line ``ValueError`` for an override (ignored in a profile's
    ``all``, which applies to every chapter that declares the name)."""
    declared = defaults(chapter)
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ValueError(f"chapter {chapter} has no parameter named {', '.join(unknown)}; "
                         f"valid: {', '.join(sorted(declared))}")
    entries = load_profile(profile)
    wanted = {**(entries.get("all") or {}), **(entries.get(chapter) or {}), **overrides}
    return {**declared, **{k: v for k, v in wanted.items() if k in declared}}


def of(chapter: str, values: dict):
    """The chapter's parameters dataclass holding ``values`` (names it does not declare are dropped,
    missing ones take their defaults): how a saved dict of parameters becomes the object again."""
    cls = _params_class(chapter)
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def _params_class(chapter: str) -> type:
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; choose one of: {', '.join(CHAPTERS)}")
    return CHAPTERS[chapter]
