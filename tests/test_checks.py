"""The shared validation helpers: one line naming the bad value and what is allowed."""
import math

import pytest
import torch

from genlib import checks


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None])
def test_positive_int_rejects(bad):
    with pytest.raises(ValueError, match="must be a positive integer") as err:
        checks.positive_int("latent_dim", bad)
    assert "\n" not in str(err.value) and "latent_dim" in str(err.value)


def test_numbers_and_intervals():
    assert checks.positive("lr", 1e-3) == 1e-3
    for bad in (0, -1, math.nan, math.inf, "x"):
        with pytest.raises(ValueError):
            checks.positive("lr", bad)
    assert checks.in_unit_interval("dropout", 0.0) == 0.0
    for bad in (1.0, -0.1, 2):
        with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
            checks.in_unit_interval("dropout", bad)
    assert checks.in_unit_interval("p", 1.0, closed_right=True) == 1.0


def test_choice_names_the_options():
    with pytest.raises(ValueError, match="unknown arch 'rnn'; choose one of: mlp, conv"):
        checks.choice("arch", "rnn", ("mlp", "conv"))


def test_long_values_are_not_echoed_in_full():
    with pytest.raises(ValueError) as err:
        checks.positive_int("n", "x" * 10_000)
    assert len(str(err.value)) < 200


def test_support_binary_and_categorical():
    checks.support("x", torch.tensor([0.0, 1.0]), "binary")
    with pytest.raises(ValueError, match="0 or 1"):
        checks.support("x", torch.tensor([0.0, 0.5]), "binary")
    checks.support("x", torch.tensor([0, 16]), "categorical", levels=17)
    checks.support("x", torch.tensor([0.0, 16.0]), "categorical", levels=17)
    for bad in (torch.tensor([17]), torch.tensor([-1]), torch.tensor([0.25])):
        with pytest.raises(ValueError, match=r"integers 0\.\.16"):
            checks.support("x", bad, "categorical", levels=17)
    with pytest.raises(ValueError, match="NaN"):
        checks.support("x", torch.tensor([math.nan]), "real")


def test_images_shape():
    checks.images("x", torch.zeros(3, 64), dims=64)
    with pytest.raises(ValueError, match=r"shape \(batch, 64\)"):
        checks.images("x", torch.zeros(3, 63), dims=64)
    with pytest.raises(ValueError, match="empty"):
        checks.images("x", torch.zeros(0, 64), dims=64)
