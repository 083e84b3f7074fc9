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


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The HTML book, built once per session from the committed notebooks with warnings as errors
    (shared by tests/test_book_build.py and tests/test_browser.py)."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("build_book", root / "scripts" / "build_book.py")
    build_book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_book)
    out = tmp_path_factory.mktemp("book")
    assert build_book.main(["--executed", str(root / "book"), "--output", str(out)]) == 0
    return out / "_build" / "html"
