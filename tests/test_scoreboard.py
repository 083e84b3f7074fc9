"""The scoreboard (benchmarks/scoreboard.py): reproducible, and capabilities read off the code."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def scoreboard():
    spec = importlib.util.spec_from_file_location("scoreboard", ROOT / "benchmarks" / "scoreboard.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["scoreboard"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_rerun_with_the_same_seed_gives_the_same_nll(scoreboard):
    first, second = scoreboard.gmm(0), scoreboard.gmm(0)
    assert first.test_nll == second.test_nll and first.name == second.name
    assert scoreboard.gmm(1).test_nll != first.test_nll


def test_capabilities_are_read_off_the_classes(scoreboard):
    from genlib import density, vae

    assert scoreboard.capabilities(vae.VAE(vae.VAEConfig(hidden=8, latent_dim=2))) == {
        "log_prob": True, "sample": True, "latent features": True}
    assert scoreboard.capabilities(vae.Autoencoder(vae.VAEConfig(hidden=8, latent_dim=2))) == {
        "log_prob": False, "sample": False, "latent features": True}
    assert scoreboard.capabilities(density.KDE())["latent features"] is False


def test_unknown_families_are_one_line(scoreboard, capsys, tmp_path):
    assert scoreboard.main(["--families", "gmm,nope", "--out", str(tmp_path / "s.json")]) == 2
    assert "unknown family nope" in capsys.readouterr().err
