import pytest
import torch

import genlib


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    genlib.seed_everything(0)
    yield


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
