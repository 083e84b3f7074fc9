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
    history = train_family.load_history(tmp_path / "vae.pt")
    assert history.epochs == 1 and len(history.val) == 1 and history.best_epoch == 0


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
