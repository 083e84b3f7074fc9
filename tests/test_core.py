import numpy as np
import pytest
import torch

import genlib


def test_auto_device_is_available():
    assert genlib.device("auto").type in {"cpu", "cuda", "mps"}
    assert genlib.device("cpu") == torch.device("cpu")


def test_unknown_device_names_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"unknown device 'tpu'; choose one of: auto, cpu, cuda, mps"):
        genlib.device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"device 'cuda' is not available on this machine; choose one of: auto, cpu") as err:
        genlib.device("cuda")
    assert "\n" not in str(err.value)


def test_seed_everything_makes_every_source_repeat():
    g1 = genlib.seed_everything(7)
    a = (torch.rand(3), np.random.rand(3), torch.rand(3, generator=g1))
    g2 = genlib.seed_everything(7)
    b = (torch.rand(3), np.random.rand(3), torch.rand(3, generator=g2))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])
    genlib.seed_everything(8)
    assert not torch.equal(torch.rand(3), a[0])


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_bad_seed_is_rejected(bad):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        genlib.seed_everything(bad)
