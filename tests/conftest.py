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


def pytest_terminal_summary(terminalreporter):
    """The smoke profile's chapter times (tests/test_smoke.py), one line each, at the end of the run."""
    import sys

    smoke = next((m for name, m in sys.modules.items() if name.endswith("test_smoke") and hasattr(m, "TIMES")), None)
    if smoke is None or not smoke.TIMES:
        return
    terminalreporter.write_sep("-", f"smoke profile: wall time per chapter (budget {smoke.SMOKE_BUDGET_S} s "
                                    f"each on a quiet 2-core machine)")
    for stem, seconds in smoke.TIMES.items():
        over = "  over the budget" if seconds > smoke.SMOKE_BUDGET_S else ""
        terminalreporter.write_line(f"{stem:<24} {seconds:6.1f} s{over}")
