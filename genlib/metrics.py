"""Measures shared by the chapters: units of likelihood, and the quality of samples.

A model's negative log-likelihood of one image, ``-log p(x)`` in nats, divided by ``D log 2`` is
its cost in bits per dimension (pixel). Densities fitted to rescaled or dequantised pixels are
turned back into log-probabilities of the integer image with :func:`discrete_log_prob`.
"""
from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genlib import checks, data
from genlib._core import atomic_write


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
# A feature-network Fréchet distance, kernel distance (KID) and k-NN precision/recall, shared by every
# chapter that samples images. This is *not* the Inception FID of the papers: the features are the
# penultimate layer of a small CNN that genlib trains on the same data set, so the numbers are
# comparable only with each other, on the same data, at the same sample size, and always next to
# their floor (real images against the test images, at the same N).

CLASSIFIER_SEED = 0
FEATURE_EPOCHS = 40
# The feature networks' weights for digits and mnist5k, committed (about 150 KB each): training one
# costs about 45 s (digits) to minutes (mnist5k, which every smoke chapter measures with) on a CPU, more
# than a chapter or a fresh clone's test run should spend on a measuring tool.
# ``train_feature_net(dataset)`` recreates them (each file records how).
WEIGHTS = Path(__file__).resolve().parent / "weights"


class FeatureNet(nn.Module):
    """A small CNN ``(B, D) -> (B, 10)`` on square images with pixels in [0, 1]; ``features`` is its
    penultimate layer ``(B, n_features)``. Two conv blocks (3x3 convolutions, batch norm, ReLU), a 2x2
    max-pool between them, average-pooled to 2x2, then a linear layer."""

    def __init__(self, side: int, n_classes: int = 10, width: int = 16, n_features: int = 128):
        super().__init__()
        self.side = side

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.body = nn.Sequential(*block(1, width), *block(width, width), nn.MaxPool2d(2),
                                  *block(width, 2 * width), *block(2 * width, 2 * width), nn.AdaptiveAvgPool2d(2),
                                  nn.Flatten(), nn.Linear(8 * width, n_features), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(n_features, n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(-1, 1, self.side, self.side).float())  # (B, n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, n_classes) logits


def _augment(x: torch.Tensor, side: int, generator: torch.Generator) -> torch.Tensor:
    """Random small affine distortions (rotation ±12°, scale ±12 %, shear, shift ±1/8 of the side)
    of a batch ``(B, side²)``: the writers of the test digits are not those of the training digits."""
    n = len(x)
    u = lambda *shape: torch.rand(*shape, generator=generator) * 2 - 1  # noqa: E731
    angle, scale, shear, shift = u(n) * math.radians(12), 1 + u(n) * 0.12, u(n) * 0.15, u(n, 2) * 0.25
    c, s = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([c, -s + shear, shift[:, 0]], 1), torch.stack([s, c, shift[:, 1]], 1)], 1)
    images = x.reshape(n, 1, side, side)
    grid = nn.functional.affine_grid(theta, images.shape, align_corners=False)
    return nn.functional.grid_sample(images, grid, align_corners=False).reshape(n, -1)


def train_feature_net(dataset: str = "digits", epochs: int = FEATURE_EPOCHS, seed: int = CLASSIFIER_SEED,
                      batch_size: int = 64) -> FeatureNet:
    """Train the feature network on the training and validation images of ``dataset`` (the test images
    stay unseen): AdamW with a one-cycle learning rate, label smoothing, and the distortions of
    :func:`_augment`. Deterministic on one machine for a given ``seed``."""
    data.check_dataset(dataset)
    splits = [data.images(dataset, s) for s in ("train", "val")]
    x = torch.cat([s.x.float() / (s.levels - 1) for s in splits])
    y = torch.cat([s.y for s in splits])
    side = data.IMAGE_SHAPES[dataset][0]
    state = torch.random.get_rng_state()  # leave the caller's random stream untouched
    try:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = FeatureNet(side)
        steps = epochs * math.ceil(len(x) / batch_size)
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps)
        with torch.enable_grad():  # features() may call this under no_grad
            model.train()
            for _ in range(epochs):
                order = torch.randperm(len(x), generator=generator)
                for i in range(0, len(x), batch_size):
                    rows = order[i:i + batch_size]
                    loss = nn.functional.cross_entropy(model(_augment(x[rows], side, generator)), y[rows],
                                                       label_smoothing=0.05)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    schedule.step()
    finally:
        torch.random.set_rng_state(state)
    return model.eval()


def _weights_file(dataset: str) -> Path:
    committed = WEIGHTS / f"{dataset}-features-seed{CLASSIFIER_SEED}-e{FEATURE_EPOCHS}.pt"
    if committed.exists():
        return committed
    return data.cache_dir() / "classifiers" / committed.name


@lru_cache(maxsize=4)
def classifier(dataset: str = "digits", verbose: bool = True) -> FeatureNet:
    """The feature network for ``dataset``: the committed weights for digits and mnist5k; for other data sets
    trained once (:func:`train_feature_net`) and kept in ``genlib.data.cache_dir()/classifiers``.

    The test accuracy is printed so that a reader knows what the features are worth, and kept as
    ``model.test_accuracy``.
    """
    data.check_dataset(dataset)
    test = data.images(dataset, "test")
    path = _weights_file(dataset)
    model = FeatureNet(data.IMAGE_SHAPES[dataset][0])
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
    except (FileNotFoundError, RuntimeError, KeyError, ValueError, OSError, EOFError):
        model = train_feature_net(dataset)
        state = {"model": model.state_dict(), "dataset": dataset, "seed": CLASSIFIER_SEED,
                 "epochs": FEATURE_EPOCHS, "recreate": f"genlib.metrics.train_feature_net({dataset!r})"}
        atomic_write(path, lambda out: torch.save(state, out))  # not genlib.train: models import metrics
    model.eval()
    with torch.no_grad():
        model.test_accuracy = float((model(test.x.float() / (test.levels - 1)).argmax(1) == test.y).float().mean())
    if verbose:
        print(f"feature network ({dataset}, a CNN): test accuracy {model.test_accuracy:.3f}")
    return model


def _digest(array: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).digest()


def _remembered(store: dict, key: tuple, compute):
    """``store[key]``, computing it first if absent; a store keeps its 8 latest keys (a chapter's few
    reference sets, scored against many sample sets)."""
    if key not in store:
        if len(store) >= 8:
            store.pop(next(iter(store)))  # the oldest
        store[key] = compute()
    return store[key]


_FEATURES: dict = {}  # (dataset, shape, digest of the pixels) -> features
_RADII: dict = {}  # (k, shape, digest of the features) -> each point's k-th neighbour distance


@torch.no_grad()
def features(x: torch.Tensor, dataset: str = "digits") -> np.ndarray:
    """Feature-network features ``(N, 128)`` of images ``x`` ``(N, D)`` or ``(N, H, W)`` scaled to [0, 1].

    The last few sets are remembered by a digest of their pixels, so a reference set scored against many
    sample sets (a chapter's sweep over steps or scales) goes through the network once."""
    x = x.detach().cpu().float().flatten(1)
    f = _remembered(_FEATURES, (dataset, tuple(x.shape), _digest(x.numpy())),
                    lambda: classifier(dataset, verbose=False).features(x).double().numpy())
    return f.copy()  # a caller may write into it


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

    inside = cdist(queries, manifold) <= _radii(manifold, k)[None, :]
    return float(inside.any(axis=1).mean())


def _radii(manifold: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest neighbour within the set (N,)."""
    from scipy.spatial.distance import cdist

    return _remembered(_RADII, (k, manifold.shape, _digest(manifold)),  # column 0 below is the point itself
                       lambda: np.sort(cdist(manifold, manifold), axis=1)[:, k])


def kernel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Kernel (inception) distance, KID (Bińkowski et al. 2018): the unbiased estimate of the squared
    maximum mean discrepancy between feature sets ``a`` (M, F) and ``b`` (N, F) with the cubic
    polynomial kernel ``k(u, v) = (u·v / F + 1)³``::

        KID = Σ_{i≠j} k(a_i, a_j) / (M(M−1)) + Σ_{i≠j} k(b_i, b_j) / (N(N−1)) − 2 Σ_{i,j} k(a_i, b_j) / (MN)

    Unlike the Fréchet distance it has no bias at small N: its expectation is 0 when both sets come from
    one distribution (single estimates can then be negative), so sets of different sizes compare fairly.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"kernel_distance needs two feature sets (M, F), (N, F) with M, N >= 2, "
                         f"got shapes {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("kernel_distance of features with NaN or inf")
    dims, m, n = a.shape[1], len(a), len(b)
    k_aa, k_bb, k_ab = ((u @ v.T / dims + 1) ** 3 for u, v in ((a, a), (b, b), (a, b)))
    return float((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1)) + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
                 - 2 * k_ab.mean())


def sample_quality(x: torch.Tensor, reference: torch.Tensor, dataset: str = "digits", k: int = 3) -> dict:
    """Fréchet distance, kernel distance (KID) and precision/recall of images ``x`` against
    ``reference`` (both scaled to [0, 1]). Compare only results at equal N, next to :func:`quality_floor`."""
    f_x, f_ref = features(x, dataset), features(reference, dataset)
    precision, recall = precision_recall(f_ref, f_x, k)
    return {"frechet": frechet_distance(f_x, f_ref), "kid": kernel_distance(f_x, f_ref), "precision": precision,
            "recall": recall}


def quality_floor_runs(dataset: str = "digits", k: int = 3, n: int | None = None) -> list[dict]:
    """:func:`sample_quality` of real images against the test images, at the models' sample size.

    The pool of real images the models may have seen (training and validation splits) is cut, in a
    fixed shuffled order, into as many disjoint subsets of ``n`` images (default: as many as the test
    set has) as it holds; each is scored against the test images like a model's ``n`` samples. The
    Fréchet distance and precision/recall depend on N, so a floor at another N cannot be compared with
    a model. Returns one dict per subset.
    """
    splits = [data.images(dataset, s) for s in ("train", "val")]
    test = data.images(dataset, "test")
    pool = torch.cat([s.x.float() / (s.levels - 1) for s in splits])
    n = len(test.x) if n is None else n
    if not (isinstance(n, int) and 2 <= n <= len(pool)):
        raise ValueError(f"n must be an integer in [2, {len(pool)}] (the real images available), got {n!r}")
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(CLASSIFIER_SEED))
    reference = test.x.float() / (test.levels - 1)
    return [sample_quality(pool[order[i * n:(i + 1) * n]], reference, dataset, k) for i in range(len(pool) // n)]


def quality_floor(dataset: str = "digits", k: int = 3, n: int | None = None) -> dict:
    """The median over :func:`quality_floor_runs` of each measure: the best a model's ``n`` samples can
    hope for against the test images (``n`` defaults to the test set's size)."""
    runs = quality_floor_runs(dataset, k, n)
    return {key: float(np.median([r[key] for r in runs])) for key in runs[0]}


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
