import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from genlib import data


@pytest.mark.parametrize("name", data.TOYS)
def test_toys_are_seeded_and_shaped(name):
    a, b, c = data.toy(name, 500, seed=1), data.toy(name, 500, seed=1), data.toy(name, 500, seed=2)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().max() < 6


def test_eight_gaussians_sit_on_their_circle():
    x = data.toy("8gaussians", 4000, seed=0, noise=0.0)
    radius = x.norm(dim=1)
    assert torch.allclose(radius, torch.full_like(radius, 2.5), atol=1e-5)
    angles = torch.atan2(x[:, 1], x[:, 0]) / (2 * np.pi / 8)
    assert torch.allclose(angles, angles.round(), atol=1e-4)
    assert len(torch.unique(angles.round() % 8)) == 8


def test_rings_have_three_radii():
    r = data.toy("rings", 3000, seed=0, noise=0.0).norm(dim=1)
    assert sorted(torch.unique(r.round()).tolist()) == [1.0, 2.0, 3.0]


def test_unknown_dataset_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"unknown dataset 'blobs'; choose one of: moons, rings"):
        data.toy("blobs")
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'; choose one of: digits, mnist, binarized_mnist, mnist5k"):
        data.images("cifar")


def test_digits_split_is_the_documented_one():
    bunch = load_digits()
    parts = [data.digits(s) for s in data.SPLITS]
    assert [len(p) for p in parts] == [1000, 350, 447]
    joined = torch.cat([p.x for p in parts])
    assert torch.equal(joined, torch.as_tensor(bunch.data, dtype=torch.int64))
    assert torch.equal(torch.cat([p.y for p in parts]), torch.as_tensor(bunch.target))
    train = parts[0]
    assert train.x.min() == 0 and train.x.max() == 16 and train.levels == 17 and train.dims == 64
    assert torch.allclose(train.scaled().max(), torch.tensor(1.0))


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="unknown split 'dev'; choose one of: train, val, test"):
        data.digits("dev")


def test_dequantize_stays_in_its_bin(gen):
    x = data.digits("val").x
    y = data.dequantize(x, 17, generator=gen)
    assert torch.equal(torch.floor(y * 17).long(), x)
    assert y.min() >= 0 and y.max() < 1


# ----------------------------------------------------------------------------- downloads


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_gz(path, payload: bytes) -> str:
    path.write_bytes(gzip.compress(payload))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_read_idx_parses_what_it_is_given(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_gz(tmp_path / "a.gz", idx_bytes(array))
    assert np.array_equal(data.read_idx(tmp_path / "a.gz"), array)
    (tmp_path / "b").write_bytes(idx_bytes(array)[:-1])  # one value short
    with pytest.raises(data.DataError, match="holds 23 values, its header says 24"):
        data.read_idx(tmp_path / "b")


@pytest.fixture
def mirror(tmp_path):
    source = tmp_path / "mirror"
    source.mkdir()
    return source


def test_fetch_downloads_and_verifies(tmp_path, mirror):
    md5 = write_gz(mirror / "f.gz", b"hello")
    cache = tmp_path / "cache"
    path = data.fetch("f.gz", md5, (mirror.as_uri() + "/",), root=cache)
    assert path == cache / "f.gz" and gzip.decompress(path.read_bytes()) == b"hello"
    assert [p.name for p in cache.iterdir()] == ["f.gz"]  # no temp files left


def test_fetch_rejects_a_bad_checksum_and_keeps_nothing(tmp_path, mirror):
    write_gz(mirror / "f.gz", b"tampered")
    cache = tmp_path / "cache"
    with pytest.raises(data.DataError, match="checksum mismatch"):
        data.fetch("f.gz", "0" * 32, (mirror.as_uri() + "/",), root=cache)
    assert list(cache.iterdir()) == []


def test_fetch_falls_back_to_the_next_mirror(tmp_path, mirror):
    md5 = write_gz(mirror / "f.gz", b"hello")
    mirrors = ((tmp_path / "nowhere").as_uri() + "/", mirror.as_uri() + "/")
    assert data.fetch("f.gz", md5, mirrors, root=tmp_path / "cache").exists()


def test_fetch_offline_says_what_to_do(tmp_path):
    with pytest.raises(data.DataError, match=r"could not download f.gz .*Offline\? On a machine with internet run `python -m genlib.data fetch mnist`"):
        data.fetch("f.gz", "0" * 32, ((tmp_path / "nowhere").as_uri() + "/",), root=tmp_path / "cache")


def test_a_corrupted_cached_file_is_reported_not_used(tmp_path, mirror):
    md5 = write_gz(mirror / "f.gz", b"hello")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "f.gz").write_bytes(b"half a fi")
    with pytest.raises(data.DataError, match="is corrupted .* delete it and run again"):
        data.fetch("f.gz", md5, (mirror.as_uri() + "/",), root=cache)


def test_an_interrupted_download_leaves_no_file(tmp_path, monkeypatch):
    class Response:
        def __init__(self):
            self.calls = 0

        def read(self, size):
            self.calls += 1
            if self.calls > 2:
                raise KeyboardInterrupt
            return b"x" * size

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: Response())
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        data.fetch("f.gz", "0" * 32, ("http://example.invalid/",), root=cache)
    assert list(cache.iterdir()) == []


@pytest.fixture
def fake_mnist(tmp_path, mirror, monkeypatch):
    """A tiny MNIST (20 training, 5 test images) served from a local mirror."""
    rng = np.random.default_rng(0)
    sizes = {"train": 20, "t10k": 5}
    files = {}
    for prefix, n in sizes.items():
        imgs = rng.integers(0, 256, size=(n, 28, 28))
        labels = np.arange(n) % 10
        files[f"{prefix}-images-idx3-ubyte.gz"] = write_gz(mirror / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(imgs))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = write_gz(mirror / f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(labels))
    monkeypatch.setattr(data, "MNIST_FILES", files)
    monkeypatch.setattr(data, "MNIST_MIRRORS", (mirror.as_uri() + "/",))
    monkeypatch.setattr(data, "MNIST_VAL", 4)
    monkeypatch.setenv("GENLIB_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_mnist_parses_splits_and_binarizes(fake_mnist):
    train, val, test = (data.mnist(s) for s in data.SPLITS)
    assert (len(train), len(val), len(test)) == (16, 4, 5)
    assert train.x.shape == (16, 784) and train.levels == 256 and train.shape == (28, 28)
    assert torch.equal(val.y, torch.tensor([6, 7, 8, 9]))
    binary = data.images("binarized_mnist", "train")
    assert set(binary.x.unique().tolist()) <= {0, 1} and binary.levels == 2
    assert torch.equal(binary.x, data.images("binarized_mnist", "train").x)  # static: same draw
    # brighter pixels are on more often
    on = binary.x[train.x > 200].float().mean()
    off = binary.x[train.x < 50].float().mean()
    assert on > 0.7 and off < 0.3
    assert sorted(p.name for p in fake_mnist.iterdir()) == sorted(data.MNIST_FILES)


def test_mnist5k_is_a_balanced_shuffled_offline_split():
    parts = [data.images("mnist5k", s) for s in data.SPLITS]
    assert [len(p) for p in parts] == [3500, 500, 1000]
    assert parts[0].x.shape == (3500, 784) and parts[0].levels == 256 and parts[0].shape == (28, 28)
    assert 0 <= int(parts[0].x.min()) and int(parts[0].x.max()) == 255
    for part in parts:  # the permutation mixes the label-sorted file: every split has every digit
        counts = torch.bincount(part.y, minlength=10)
        assert counts.min() > 0.06 * len(part) and counts.max() < 0.14 * len(part)
    rows = torch.cat([p.x for p in parts])
    assert len(torch.unique(rows, dim=0)) == 5000  # disjoint splits of distinct images


def test_an_unwritable_cache_folder_is_reported_as_such(tmp_path, mirror):
    md5 = write_gz(mirror / "f.gz", b"hello")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder's parent should be")
    with pytest.raises(data.DataError, match="cache folder .* is not writable") as err:
        data.fetch("f.gz", md5, (mirror.as_uri() + "/",), root=blocker / "cache")
    assert "Offline" not in str(err.value) and "\n" not in str(err.value)


def test_a_killed_download_is_cleaned_up_by_the_next_attempt(tmp_path, mirror):
    md5 = write_gz(mirror / "f.gz", b"hello")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".f.gz.abc123.part").write_bytes(b"half a file from a killed process")
    data.fetch("f.gz", md5, (mirror.as_uri() + "/",), root=cache)
    assert [p.name for p in cache.iterdir()] == ["f.gz"]


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_data_folder_means_the_default(monkeypatch, value):
    monkeypatch.setenv("GENLIB_DATA", value)
    assert data.cache_dir() == data.Path.home() / ".cache" / "genlib"


def test_a_relative_data_folder_is_absolute_and_stable(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENLIB_DATA", "cache")
    assert data.cache_dir() == tmp_path / "cache" and data.cache_dir().is_absolute()


def test_fetch_command_fills_the_cache_and_offline_says_how(fake_mnist, tmp_path, monkeypatch, capsys):
    assert data.main(["fetch", "mnist", "mnist5k"]) == 0
    out = capsys.readouterr().out
    assert f"mnist: ready ({tmp_path / 'cache'})" in out and "mnist5k: ready (nothing to download" in out
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(data.MNIST_FILES)
    monkeypatch.setenv("GENLIB_DATA", str(tmp_path / "other"))
    monkeypatch.setattr(data, "MNIST_MIRRORS", ((tmp_path / "offline").as_uri() + "/",))
    assert data.main(["fetch", "binarized_mnist"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "run `python -m genlib.data fetch mnist`" in err
