"""The scoreboard (genlib.scoreboard, run by benchmarks/scoreboard.py): reproducible, and capabilities read off the code."""
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def scoreboard():
    from genlib import scoreboard as module

    return module


def test_a_rerun_with_the_same_seed_gives_the_same_nll(scoreboard):
    first, second = scoreboard.trained("gmm", 0, epochs=3), scoreboard.FAMILIES["gmm"](0, epochs=3)
    assert first.test_nll == second.test_nll and first.name == second.name
    assert scoreboard.trained("gmm", 1, epochs=3).test_nll != first.test_nll


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


TINY = {"ebm": ["image_epochs=1", "n_steps=2"], "gan": ["epochs=1", "latent_dim=4", "hidden=8"],
        "pixelcnn": ["epochs=1", "channels=8", "n_layers=2"], "vae": ["epochs=1", "latent_dim=4"]}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny models of each chapter, written by genlib.train_family (seed 0; pixelcnn also seed 1 and a repeat)."""
    from genlib import train_family

    root = tmp_path_factory.mktemp("checkpoints")
    for family, overrides in TINY.items():
        assert train_family.main([family, *overrides, "--out", str(root / "a")]) == 0
    for folder, seed in (("b", 0), ("c", 1)):
        assert train_family.main(["pixelcnn", *TINY["pixelcnn"], f"seed={seed}", "--out", str(root / folder)]) == 0
    return root


@pytest.mark.parametrize("family, density, has_nll", [
    ("ebm", "energy only", False), ("gan", "none", False), ("pixelcnn", "exact", True), ("vae", "estimate", True)])
def test_chapter_models_load_from_checkpoints(scoreboard, checkpoints, family, density, has_nll, monkeypatch):
    import torch

    from genlib import vae

    iwae = vae.evaluate_nll  # k = 1000 on 447 images takes longer than this test should: k = 5 on 20
    monkeypatch.setattr(vae, "evaluate_nll", lambda model, x, k, generator: iwae(model, x[:20], k=5, generator=generator))
    trained = scoreboard.FAMILIES[family](0, checkpoints / "a" / f"{family}.pt")
    assert trained.density == density and (trained.test_nll is not None) == has_nll
    assert (trained.features is not None) == (family == "vae")
    assert any("loaded from" in note for note in trained.notes) and trained.train_seconds > 0
    x = trained.sample(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 64) and x.min() >= 0 and x.max() <= 1
    if family == "pixelcnn":  # the exact NLL of a barely trained model: between 0 and the uniform model's
        assert 0 < trained.test_nll < scoreboard.D * math.log(scoreboard.LEVELS)


def test_a_checkpoint_gives_the_same_nll_for_the_same_seed(scoreboard, checkpoints):
    first, again, other = (scoreboard.trained("pixelcnn", 0, checkpoints / f / "pixelcnn.pt").test_nll for f in "abc")
    assert first == again and other != first


def test_the_checkpoints_option_loads_what_is_there(scoreboard, checkpoints, tmp_path, capsys):
    import json
    import shutil

    out = tmp_path / "s.json"
    assert scoreboard.main(["--families", "pixelcnn", "--seed", "0", "--checkpoints", str(checkpoints / "a"),
                            "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["key"] == "pixelcnn" and row["density"] == "exact" and row["runs"][0]["probe_accuracy"] is None
    assert any("loaded from" in note for note in row["notes"]) and row["capabilities"]["log_prob"]
    shutil.copy(checkpoints / "a" / "pixelcnn.pt", tmp_path / "gan.pt")  # the wrong family under gan's name
    assert scoreboard.main(["--families", "gan", "--seed", "0", "--checkpoints", str(tmp_path), "--out", str(out)]) == 2
    assert "holds a 'pixelcnn' model, not 'gan'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="has no checkpoint"):
        scoreboard.trained("gmm", 0, tmp_path / "gmm.pt")


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    """Chapters 7 and 8's models trained for one epoch with tiny networks (train_family's files)."""
    from genlib import train_family

    out = tmp_path_factory.mktemp("checkpoints")
    for family, overrides in [("flow", ["n_layers=2", "hidden=8"]), ("diffusion", ["T=10", "width=4", "fixed_epochs=1"]),
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
            expected = flows.evaluate_nll(trained.model, test, draws=10, generator=gen).nats
        else:
            # chapter 8's stratified bound on every test image (the protocol), in the declaration's chunks of 150
            from genlib import diffusion as dm

            expected = float(torch.cat([trained.model.bound(test[i:i + 150], 17, t_samples=dm.BOUND_STRATA,
                                                            generator=gen)["total"]
                                        for i in range(0, len(test), 150)]).mean())
            assert trained.model.config.schedule == "snr"  # the chapter's fixed model, not its first one
            assert any("stratified" in note for note in trained.notes)
    assert trained.test_nll == pytest.approx(expected, rel=1e-6) and trained.test_nll > 0
    assert scoreboard.FAMILIES[family](0, tiny_checkpoints / f"{family}.pt").test_nll == trained.test_nll
    assert scoreboard.FAMILIES[family](1, tiny_checkpoints / f"{family}.pt").test_nll != trained.test_nll
    if latent:
        assert trained.features(data.digits("test").x[:3]).shape == (3, 64)
        assert scoreboard.capabilities(trained.model) == {"log_prob": True, "sample": True, "latent features": True}


def test_the_file_is_what_chapter_9_reads(scoreboard, tmp_path):
    """One cheap row written by the command, read back by genlib.compare; a broken file is one line."""
    import json

    from genlib import compare

    out = tmp_path / "s.json"
    assert scoreboard.main(["--families", "gmm", "--seeds", "0", "--out", str(out)]) == 0
    board = compare.load_scoreboard(out)
    (row,) = board["rows"]
    assert board["format"] == compare.FORMAT and row["key"] == "gmm" and len(row["samples"]) == 16
    assert all(len(image) == 64 and 0 <= min(image) and max(image) <= 16 for image in row["samples"])
    assert row["capabilities"] == compare.capabilities(scoreboard.model_class("gmm"))
    from genlib import family

    assert list(scoreboard.FAMILIES) == list(family.REGISTRY)
    assert {r["key"]: r["model"] for r in compare.registered()} == {
        key: scoreboard.model_class(key).__name__ for key in family.REGISTRY}
    out.write_text(json.dumps({**board, "format": "other"}))
    with pytest.raises(ValueError, match="is not a genlib.scoreboard/2 file; write it with"):
        compare.load_scoreboard(out)
    with pytest.raises(ValueError, match="no scoreboard at"):
        compare.load_scoreboard(tmp_path / "missing.json")


# ----------------------------------------------------------------------------- the command line (issue 26, case 7)


@pytest.fixture
def fake_families(scoreboard, monkeypatch):
    """Two instant 'families' (uniform noise images), so that the command's own logic is what is tested."""
    import torch

    class Noise(torch.nn.Module):
        def sample(self, n, generator=None):
            return torch.rand(n, 64, generator=generator)

    def fake(name):
        def make(seed, checkpoint=None):
            return scoreboard.Trained(Noise(), f"noise {name}", 1, "none", None, 0.01,
                                      lambda n, g: Noise().sample(n, g), None, [f"checkpoint {checkpoint}"])
        return make

    families = {"gmm": fake("gmm"), "vae": fake("vae")}
    monkeypatch.setattr(scoreboard, "FAMILIES", families)
    return families


def test_no_family_a_missing_checkpoints_folder_and_a_bad_out_fail_before_any_work(scoreboard, fake_families,
                                                                                    tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(scoreboard.metrics, "quality_floor_runs", lambda *a, **k: calls.append(1))
    out = tmp_path / "s.json"
    assert scoreboard.main(["--families", ",", "--out", str(out)]) == 2
    assert "names no family" in capsys.readouterr().err
    assert scoreboard.main(["--families", "vae", "--checkpoints", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    for bad, why in ((tmp_path / "file" / "s.json", "is a file, not a folder"), (tmp_path, "is a folder")):
        assert scoreboard.main(["--families", "vae", "--out", str(bad)]) == 2
        assert why in capsys.readouterr().err
    assert calls == [] and not out.exists()


def test_seeds_give_one_run_each_and_nothing_part_is_left(scoreboard, fake_families, tmp_path):
    import json

    from genlib import compare

    out = tmp_path / "s.json"
    assert scoreboard.main(["--families", "gmm,vae", "--seeds", "0", "1", "2", "--out", str(out)]) == 0
    board = compare.load_scoreboard(out)
    assert board["seeds"] == [0, 1, 2] and [r["key"] for r in board["rows"]] == ["gmm", "vae"]
    row = board["rows"][0]
    assert [run["seed"] for run in row["runs"]] == [0, 1, 2] and len(compare.values(row, "kid")) == 3
    assert compare.values(row, "test_nll_nats") is None
    assert all(v * 16 == round(v * 16) for image in row["samples"] for v in [x / 16 for x in image])
    assert len(board["floor"]["frechet"]) == 3  # disjoint 447-image subsets
    assert list(tmp_path.glob("*.part")) == []
    assert json.loads(out.read_text())["rows"][1]["runs"][2]["seed"] == 2


def test_a_subset_run_merges_into_the_file_or_refuses(scoreboard, fake_families, tmp_path, capsys, monkeypatch):
    from genlib import compare

    out = tmp_path / "s.json"
    assert scoreboard.main(["--families", "gmm,vae", "--seeds", "0", "--out", str(out)]) == 0
    fake_families["vae"] = lambda seed, checkpoint=None: scoreboard.Trained(
        None, "changed vae", 4, "none", None, 0.02, lambda n, g: torch_rand(n, g), None, [])
    assert scoreboard.main(["--families", "vae", "--seeds", "0", "--out", str(out)]) == 0
    board = compare.load_scoreboard(out)
    assert [r["family"] for r in board["rows"]] == ["noise gmm", "changed vae"]  # gmm kept, vae replaced
    assert scoreboard.main(["--families", "vae", "--seeds", "1", "--out", str(out)]) == 2
    assert "merges into the file only with the same seeds" in capsys.readouterr().err

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scoreboard.os, "replace", no_space)
    assert scoreboard.main(["--families", "gmm,vae", "--seeds", "0", "--out", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.glob("*.part")) == [] and compare.load_scoreboard(out)["rows"][1]["family"] == "changed vae"


def torch_rand(n, g):
    import torch

    return torch.rand(n, 64, generator=g)


def test_a_family_missing_from_the_checkpoints_folder_is_announced(scoreboard, fake_families, tmp_path, capsys):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "gmm.pt").write_text("")  # the mixture is never loaded; vae is missing
    assert scoreboard.main(["--families", "vae", "--seeds", "0", "--checkpoints", str(tmp_path / "ck"),
                            "--out", str(tmp_path / "s.json")]) == 0
    assert "vae, seed 0: no" in capsys.readouterr().out


def test_rows_are_the_chapters_headline_models():
    """Issue 25: the GAN row is chapter 5's unconditional DCGAN with R1; the DDPM row is chapter 8's fixed
    (lattice-matched) model, its bound the chapter's stratified estimator."""
    from genlib import diffusion as dm
    from genlib import family, gan, params

    assert not family.get("gan").labels
    model = family.get("gan").build(params.GANParams())
    assert model.config.n_classes == 0 and model.config == gan.digits_config()
    chosen = params.DiffusionParams()
    assert family.get("diffusion").build(chosen).config.schedule == "snr"
    assert family.get("diffusion").budget == ("fixed_epochs",) and dm.BOUND_STRATA == chosen.bound_strata
