"""genlib works as an installed package, without the book: train_family and the scoreboard from a wheel."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.book_build  # a wheel build, a fresh venv and two runs (minutes on 2 cores): not the quick loop


def _run(args: list, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel of this checkout installed (no dependencies: it sees the
    test environment's packages through a .pth file, but not its genlib). Returns its python."""
    root = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ROOT, "-w", root / "dist"],
         cwd=root)
    (wheel,) = (root / "dist").glob("genlib-*.whl")
    _run([sys.executable, "-m", "venv", root / "venv"], cwd=root)
    python = root / "venv" / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([python, "-c", where], cwd=root).stdout.strip())
    (site / "shared.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch, numpy, ...: not genlib
    # --ignore-installed: the shared packages include an editable genlib, which must stay untouched
    _run([python, "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q", wheel], cwd=root)
    return python


def _outside(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the checkout must not be importable
    return {**env, "OMP_NUM_THREADS": "1"}


def test_the_wheel_trains_a_family_from_outside_the_repository(installed, tmp_path):
    where = _run([installed, "-c", "import genlib, pathlib; print(pathlib.Path(genlib.__file__).parent)"],
                 cwd=tmp_path, env=_outside(tmp_path)).stdout.strip()
    assert not Path(where).is_relative_to(ROOT) and (Path(where) / "profiles.yml").is_file()
    done = _run([installed, "-m", "genlib.train_family", "vae", "epochs=1", "--profile", "book",
                 "--out", tmp_path / "ck"], cwd=tmp_path, env=_outside(tmp_path))
    assert "vae: 1 epochs" in done.stdout and (tmp_path / "ck" / "vae.pt").is_file()


def test_the_wheel_runs_the_scoreboard(installed, tmp_path):
    out = tmp_path / "s.json"
    done = _run([installed, "-m", "genlib.scoreboard", "--families", "gmm", "--out", out], cwd=tmp_path,
                env=_outside(tmp_path))
    assert out.is_file() and any(line.startswith("gmm") for line in done.stdout.splitlines())
