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


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    """Chapters 7 and 8's models trained for one epoch with tiny networks (train_family's files)."""
    from genlib import train_family

    out = tmp_path_factory.mktemp("checkpoints")
    for family, overrides in [("flow", ["n_layers=2", "hidden=8"]), ("diffusion", ["T=10", "width=4"]),
                              ("flow_matching", ["T=10", "width=4"])]:
        assert train_family.main([family, "epochs=1", *overrides, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("family, density, chapter, latent", [
    ("flow", "bound", 7, True), ("diffusion", "bound", 8, False), ("flow_matching", "none", 8, False)])
def test_chapter_7_and_8_rows_from_checkpoints(scoreboard, tiny_checkpoints, family, density, chapter, latent):
    import torch

    import genlib
    from genlib import data, flows

    trained = scoreboard.FAMILIES[family](0, tiny_checkpoints / f"{family}.pt")
    assert (trained.density, trained.chapter, trained.features is not None) == (density, chapter, latent)
    assert any("loaded from" in note for note in trained.notes)
    samples = trained.sample(5, torch.Generator().manual_seed(0))
    assert samples.shape == (5, 64) and samples.min() >= 0 and samples.max() <= 1
    if density == "none":
        assert trained.test_nll is None
        return
    # the number is the family's own bound on the 17-level test images, with the measurement generator
    test, gen = data.digits("test").x, genlib.seed_everything(0)
    with torch.no_grad():
        if family == "flow":
            expected = flows.evaluate_nll(trained.model, test, draws=10, generator=gen)
        else:
            expected = float(trained.model.bound(test[:100], 17, generator=gen)["total"].mean())
    assert trained.test_nll == pytest.approx(expected, rel=1e-6) and trained.test_nll > 0
    assert scoreboard.FAMILIES[family](0, tiny_checkpoints / f"{family}.pt").test_nll == trained.test_nll
    assert scoreboard.FAMILIES[family](1, tiny_checkpoints / f"{family}.pt").test_nll != trained.test_nll
    if latent:
        assert trained.features(data.digits("test").x[:3]).shape == (3, 64)
        assert scoreboard.capabilities(trained.model) == {"log_prob": True, "sample": True, "latent features": True}
