"""Measures shared by the chapters: units of likelihood, and the quality of samples.

A model's negative log-likelihood of one image, ``-log p(x)`` in nats, divided by ``D log 2`` is
its cost in bits per dimension (pixel). Densities fitted to rescaled or dequantised pixels are
turned back into log-probabilities of the integer image with :func:`discrete_log_prob`.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from genlib import checks


def nats_to_bpd(nats: float | torch.Tensor, dims: int) -> float | torch.Tensor:
    """Negative log-likelihood in nats per image -> bits per dimension: ``nats / (D ln 2)``."""
    return nats / (dims * math.log(2))


def discrete_log_prob(log_density: torch.Tensor, dims: int, levels: int) -> torch.Tensor:
    """Log-probability of an integer image from a density of its dequantised form.

    If ``y = (x + u) / levels`` with ``u ~ U[0, 1)^D`` and ``p`` is a density of ``y``, then
    ``P(x) = ∫ p((x + u) / levels) levels^-D du`` and, by Jensen,
    ``log P(x) >= E_u[log p(y)] - D log(levels)``. One sample of ``u`` gives an unbiased estimate
    of that bound: pass ``log_density = log p(y)``.
    """
    return log_density - dims * math.log(levels)


def uniform_nats(dims: int, levels: int) -> float:
    """NLL of the uniform model over ``levels**dims`` images: the baseline every model must beat."""
    return dims * math.log(levels)


# ----------------------------------------------------------------------------- sample quality
#
# A classifier-feature Fréchet distance and k-NN precision/recall, shared by every chapter that
# samples images. This is *not* the Inception FID of the papers: the features are the penultimate
# layer of a small classifier that genlib trains on the same data set (seconds on a CPU), so the
# numbers are comparable only with each other, on the same data, and always next to their floor
# (the distance between the training and the test images).

CLASSIFIER_SEED = 0


class ImageClassifier(nn.Module):
    """An MLP ``(B, D) -> (B, 10)`` on pixels scaled to [0, 1]; ``features`` is its penultimate layer."""

    def __init__(self, dims: int, n_classes: int = 10, hidden: int = 256, n_features: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dims, hidden), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Linear(hidden, n_features), nn.ReLU())
        self.head = nn.Linear(n_features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1).float())  # (B, n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, n_classes) logits


def _classifier_loss(model: ImageClassifier, batch) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


@lru_cache(maxsize=4)
def classifier(dataset: str = "digits", epochs: int = 60, verbose: bool = True) -> ImageClassifier:
    """The feature network for ``dataset``: trained once with a fixed seed, then cached.

    The weights are kept in ``genlib.data.cache_dir()/classifiers`` (atomic write) and in memory;
    the test accuracy is printed so that a reader knows what the features are worth, and kept as
    ``model.test_accuracy``.
    """
    from genlib import data
    from genlib.train import History, fit, load_checkpoint, save_checkpoint

    data.check_dataset(dataset)
    train, val, test = (data.images(dataset, s) for s in ("train", "val", "test"))
    scale = lambda s: s.x.float() / (s.levels - 1)  # noqa: E731
    path = data.cache_dir() / "classifiers" / f"{dataset}-seed{CLASSIFIER_SEED}-e{epochs}.pt"
    state = torch.random.get_rng_state()  # leave the caller's random stream untouched
    try:
        torch.manual_seed(CLASSIFIER_SEED)
        model = ImageClassifier(train.dims)
        try:
            load_checkpoint(path, model)
        except (FileNotFoundError, RuntimeError, KeyError, ValueError, OSError):
            generator = torch.Generator().manual_seed(CLASSIFIER_SEED)
            with torch.enable_grad():  # features() may call this under no_grad
                fit(model, _classifier_loss, (scale(train), train.y), (scale(val), val.y), epochs=epochs,
                    batch_size=64, lr=1e-3, patience=10, generator=generator, progress=False)
            save_checkpoint(path, model, torch.optim.Adam(model.parameters()), History())
    finally:
        torch.random.set_rng_state(state)
    model.eval()
    with torch.no_grad():
        model.test_accuracy = float((model(scale(test)).argmax(1) == test.y).float().mean())
    if verbose:
        print(f"feature classifier ({dataset}, seed {CLASSIFIER_SEED}): test accuracy {model.test_accuracy:.3f}")
    return model


@torch.no_grad()
def features(x: torch.Tensor, dataset: str = "digits") -> np.ndarray:
    """Classifier features ``(N, 64)`` of images ``x`` ``(N, D)`` or ``(N, H, W)`` scaled to [0, 1]."""
    model = classifier(dataset, verbose=False)
    return model.features(x.detach().cpu().float().flatten(1)).double().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` (N, F) and ``b`` (M, F).

    ``‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2})``, the square root taken
    through symmetric eigendecompositions (stable for singular covariances).
    """
    a = checks.features("a", a, min_rows=2)  # a covariance needs two points; NaN would give LinAlgError
    b = checks.features("b", b, min_rows=2, width=a.shape[1])
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(root_a @ cov_b @ root_a)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(cross))


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((m + m.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of feature sets ``fake`` vs ``real``.

    Each set's manifold is the union of balls around its points with radius the distance to the
    k-th nearest neighbour within the set. Precision: the fraction of fake points inside the real
    manifold (quality); recall: the fraction of real points inside the fake manifold (diversity).
    """
    checks.positive_int("k", k)  # k = 0: every radius is 0; k < 0: indexes from the far end
    real = checks.features("real", real, min_rows=k + 1)  # the k-th neighbour within the set must exist
    fake = checks.features("fake", fake, min_rows=k + 1, width=real.shape[1])
    return _coverage(real, fake, k), _coverage(fake, real, k)


def _coverage(manifold: np.ndarray, queries: np.ndarray, k: int) -> float:
    from scipy.spatial.distance import cdist

    within = cdist(manifold, manifold)
    radii = np.sort(within, axis=1)[:, k]  # column 0 is the point itself
    inside = cdist(queries, manifold) <= radii[None, :]
    return float(inside.any(axis=1).mean())


def sample_quality(x: torch.Tensor, reference: torch.Tensor, dataset: str = "digits", k: int = 3) -> dict:
    """Fréchet distance and precision/recall of images ``x`` against ``reference`` (both scaled to [0, 1])."""
    f_x, f_ref = features(x, dataset), features(reference, dataset)
    precision, recall = precision_recall(f_ref, f_x, k)
    return {"frechet": frechet_distance(f_x, f_ref), "precision": precision, "recall": recall}


def quality_floor(dataset: str = "digits", k: int = 3) -> dict:
    """:func:`sample_quality` of the training images against the test images: the best to hope for."""
    from genlib import data

    train, test = data.images(dataset, "train"), data.images(dataset, "test")
    return sample_quality(train.x.float() / (train.levels - 1), test.x.float() / (test.levels - 1), dataset, k)


# ----------------------------------------------------------------------------- modes of a Gaussian mixture
#
# The mode-collapse protocol of the GAN literature (VEEGAN, PacGAN): samples from a generator
# trained on a ring (or grid) of narrow Gaussians are assigned to their nearest mode; a sample is
# *high quality* when it lies within 3 standard deviations of that mode, and a mode is *covered*
# when it receives at least ``min_count`` high-quality samples.


def ring_centres(k: int = 8, radius: float = 2.5) -> torch.Tensor:
    """Means of ``k`` Gaussians evenly spaced on a circle, the first at angle 0: shape (k, 2).
    The defaults are ``genlib.data.toy("8gaussians")``'s."""
    angle = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return (radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)).float()


def mode_coverage(x: torch.Tensor, centres: torch.Tensor, std: float, min_count: int = 1) -> dict:
    """Modes covered and the fraction of high-quality samples among ``x`` (N, 2).

    Each sample goes to its nearest centre (``centres`` (K, 2)); it is high quality when its distance
    is below ``3 std``. Returns ``modes`` (how many centres got ≥ ``min_count`` high-quality samples),
    ``high_quality`` (fraction of all samples) and ``counts`` (K,) high-quality samples per mode.
    """
    x = torch.as_tensor(x, dtype=torch.float32).detach().cpu()
    centres = torch.as_tensor(centres, dtype=torch.float32)
    if x.dim() != 2 or x.shape[1] != centres.shape[1] or len(x) == 0:
        raise ValueError(f"x must have shape (N, {centres.shape[1]}) with N >= 1, got {tuple(x.shape)}")
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std!r}")
    distance, nearest = torch.cdist(x, centres).min(1)  # (N,), (N,)
    good = distance < 3 * std
    counts = torch.bincount(nearest[good], minlength=len(centres))  # (K,)
    return {"modes": int((counts >= min_count).sum()), "high_quality": float(good.float().mean()),
            "counts": counts}
