"""Training a chapter's model outside its notebook, and loading it back."""
import pytest
import torch

from genlib import train_family, vae


def test_parameters_follow_the_chapter_then_profile_then_overrides():
    book = train_family.parameters("vae")
    assert book["dataset"] == "digits" and book["device"] == "cpu"
    paper = train_family.parameters("vae", "paper", {"epochs": 3})
    assert paper["dataset"] == "binarized_mnist" and paper["model"] == "conv" and paper["epochs"] == 3
    with pytest.raises(ValueError, match="has no parameter named nope; valid: "):
        train_family.parameters("vae", overrides={"nope": 1})
    with pytest.raises(ValueError, match="unknown family 'gpt'"):
        train_family.parameters("gpt")


def test_train_save_and_load_round_trip(tmp_path, capsys):
    assert train_family.main(["vae", "epochs=1", "latent_dim=4", "--out", str(tmp_path)]) == 0
    assert "vae: 1 epochs" in capsys.readouterr().out
    model, params = train_family.load(tmp_path / "vae.pt", "vae")
    assert isinstance(model, vae.VAE) and params["latent_dim"] == 4 and model.config.latent_dim == 4
    saved = torch.load(tmp_path / "vae.pt", weights_only=True)["model"]
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["vae.pt"]
    with pytest.raises(ValueError, match=r"was trained with latent_dim=4, but this run has latent_dim=32; "):
        train_family.load(tmp_path / "vae.pt", "vae", expect={"latent_dim": 32, "dataset": "digits"})
    history = train_family.load_history(tmp_path / "vae.pt")
    assert history.epochs == 1 and len(history.val) == 1 and history.best_epoch == 0
    capsys.readouterr()
    loaded, again = train_family.load_or_train(tmp_path / "vae.pt", "vae", lambda: 1 / 0, expect={"latent_dim": 4})
    assert loaded.config.latent_dim == 4 and again.epochs == 1
    assert capsys.readouterr().out.startswith(f"loaded {tmp_path / 'vae.pt'}: 1 epochs trained elsewhere")
    assert train_family.load_or_train("", "vae", lambda: ("trained", None)) == ("trained", None)


def test_bad_files_and_arguments_are_one_line(tmp_path, capsys):
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a checkpoint written by genlib.train_family"):
        train_family.load(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="is not a checkpoint written by genlib.train_family"):
        train_family.load_history(tmp_path / "x.pt")
    assert train_family.main(["vae", "epochs=-1", "--out", str(tmp_path)]) == 2
    assert "epochs must be a positive integer" in capsys.readouterr().err
    assert train_family.main(["gan3000", "--out", str(tmp_path)]) == 2
    assert "unknown family 'gan3000'" in capsys.readouterr().err


# A chapter run with checkpoint= (it loads the file and skips training its main model) is checked in
# tests/test_smoke.py, in the same execution as the chapter's smoke-profile run.


def _ebm_is_the_chapters(model, params, history):
    from genlib import ebm

    assert isinstance(model, ebm.EBM) and model.config.n_steps == 2 and model.config.dims == 64
    family = train_family.FAMILIES["ebm"]
    fresh = family.build(family.parameters(params))
    assert not torch.equal(model.buffer.x, fresh.buffer.x)  # the trained chains came back, not new noise


def _gan_is_the_chapters(model, params, history):
    from genlib import gan

    assert isinstance(model, gan.GAN) and model.config.n_classes == 0 and model.config.latent_dim == 4  # unconditional, as the scoreboard
    assert len(history.log["g_loss"]) == 16 == len(history.log["d_real"])  # 1000 images / 64: 16 generator steps


def _pixelcnn_is_the_chapters(model, params, history):
    from genlib import autoregressive

    assert isinstance(model, autoregressive.PixelCNN) and model.config.arch == "gated"
    assert model.config.levels == 17 and model.config.channels == 8 and model.config.n_layers == 2


@pytest.mark.parametrize("family, overrides, chapter_defaults, check", [
    ("ebm", ["image_epochs=1", "n_steps=2"], {"image_dataset": "digits", "image_epochs": 30, "n_steps": 20},
     _ebm_is_the_chapters),
    ("gan", ["epochs=1", "latent_dim=4", "hidden=8"], {"dataset": "digits", "epochs": 40, "latent_dim": 16},
     _gan_is_the_chapters),
    ("pixelcnn", ["epochs=1", "channels=8", "n_layers=2"], {"dataset": "digits", "epochs": 8, "channels": 32},
     _pixelcnn_is_the_chapters),
])
def test_chapter_models_round_trip(tmp_path, family, overrides, chapter_defaults, check):
    book = train_family.parameters(family)
    assert {k: book[k] for k in chapter_defaults} == chapter_defaults  # the chapter's parameters cell
    assert train_family.main([family, *overrides, "--out", str(tmp_path)]) == 0
    model, params = train_family.load(tmp_path / f"{family}.pt", family)
    saved = torch.load(tmp_path / f"{family}.pt", weights_only=True)["model"]
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert all(str(params[k]) == v for k, v in (o.split("=") for o in overrides))
    history = train_family.load_history(tmp_path / f"{family}.pt")
    assert history.epochs == 1
    check(model, params, history)


def test_a_chapter_refuses_a_checkpoint_of_other_parameters(tmp_path, capsys):
    train_family.check_params("x.pt", {"dataset": "digits", "hidden": 32}, dataset="digits", hidden=32)
    with pytest.raises(ValueError, match=r"x.pt was trained with hidden=8, but this run has hidden=32; "):
        train_family.check_params("x.pt", {"dataset": "digits", "hidden": 8}, dataset="digits", hidden=32)
    assert train_family.main(["gan", "epochs=1", "--precision", "bf16", "--out", str(tmp_path)]) == 2
    assert "runs in fp32 and uncompiled" in capsys.readouterr().err


def test_chapter_7_and_8_parameters_are_resolved():
    book = train_family.parameters("flow")
    assert (book["dataset"], book["n_layers"], book["hidden"], book["coupling"]) == ("digits", 8, 128, "affine")
    paper = train_family.parameters("flow", "paper")
    assert paper["dataset"] == "mnist5k" and paper["n_layers"] == 12 and paper["hidden"] == 1024
    for family in ("diffusion", "flow_matching"):
        book = train_family.parameters(family)
        assert (book["dataset"], book["T"], book["width"], book["schedule"]) == ("digits", 1000, 16, "linear")
        assert train_family.parameters(family, "paper")["width"] == 64


@pytest.mark.parametrize("family, overrides, cls, epochs", [
    ("flow", ["epochs=1", "n_layers=2", "hidden=8"], "Flow", 1),
    ("diffusion", ["fixed_epochs=1", "T=10", "width=4"], "Diffusion", 2),  # 1 epoch + 1 cool-down epoch at lr/10
    ("flow_matching", ["epochs=1", "T=10", "width=4"], "FlowMatching", 2),
])
def test_chapter_7_and_8_round_trip(tmp_path, capsys, family, overrides, cls, epochs):
    assert train_family.main([family, *overrides, "--out", str(tmp_path)]) == 0
    assert f"{family}: {epochs} epochs" in capsys.readouterr().out
    model, params = train_family.load(tmp_path / f"{family}.pt", family)
    assert type(model).__name__ == cls and not model.training
    saved = torch.load(tmp_path / f"{family}.pt", weights_only=True)["model"]
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    if family == "flow":
        assert model.config.n_layers == 2 and model.config.hidden == 8 and params["coupling"] == "affine"
    else:
        assert model.config.width == 4 and params["T"] == 10 and model.config.shape == (8, 8)
    assert train_family.load_history(tmp_path / f"{family}.pt").epochs == epochs
    wrong = {"n_layers": 8} if family == "flow" else {"width": 16}  # the chapter's, not the file's
    with pytest.raises(ValueError, match=f"was trained with {next(iter(wrong))}="):
        train_family.load(tmp_path / f"{family}.pt", family, expect={"dataset": "digits", **wrong})
