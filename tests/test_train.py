import math

import pytest
import torch
from torch import nn

from genlib import train


def regression(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(n, 1, generator=g)
    return x, y


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def test_one_step_dry_run_reduces_the_loss():
    model = nn.Linear(3, 1)
    data = regression()
    before = train.evaluate(model, mse, data)
    history = train.fit(model, mse, data, data, epochs=3, batch_size=64, lr=0.05, progress=False)
    assert history.epochs == 3 and len(history.val) == 3 and len(history.seconds) == 3
    assert history.val[-1] < before
    assert history.best_epoch == min(range(3), key=history.val.__getitem__)


def test_evaluate_weights_batches_by_size():
    model = nn.Linear(3, 1)
    x, y = regression(n=100)
    assert train.evaluate(model, mse, (x, y), batch_size=30) == pytest.approx(float(mse(model, (x, y)).detach()), rel=1e-5)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_bad_epochs_name_the_value(bad):
    with pytest.raises(ValueError, match=r"epochs must be a positive integer \(1, 2, \.\.\.\), got"):
        train.fit(nn.Linear(3, 1), mse, regression(), epochs=bad, progress=False)


def test_non_finite_loss_stops_with_a_clear_error():
    x, y = regression()
    y[5] = math.nan
    with pytest.raises(train.NonFiniteLossError, match=r"loss is nan at epoch 1, step 1"):
        train.fit(nn.Linear(3, 1), mse, (x, y), epochs=2, batch_size=1000, progress=False)


def test_early_stopping_restores_the_best_weights():
    x, y = regression()
    val = (x[:64], -y[:64])  # a validation set that training can only get worse on
    model = nn.Linear(3, 1)
    history = train.fit(model, mse, (x, y), val, epochs=50, lr=0.05, patience=3, progress=False)
    assert history.stopped_early and history.epochs == history.best_epoch + 4
    assert train.evaluate(model, mse, val) == pytest.approx(history.val[history.best_epoch], rel=1e-5)


def test_checkpoint_resume_continues_where_it_stopped(tmp_path):
    data = regression()
    path = tmp_path / "ckpt.pt"
    torch.manual_seed(0)
    full = nn.Linear(3, 1)
    ref = train.fit(full, mse, data, data, epochs=4, generator=torch.Generator().manual_seed(1), progress=False)

    torch.manual_seed(0)
    part = nn.Linear(3, 1)
    gen = torch.Generator().manual_seed(1)
    train.fit(part, mse, data, data, epochs=2, checkpoint=path, generator=gen, progress=False)
    resumed_model = nn.Linear(3, 1)
    resumed = train.fit(resumed_model, mse, data, data, epochs=4, checkpoint=path, generator=gen, progress=False)
    assert resumed.epochs == 4
    assert resumed.val == pytest.approx(ref.val, rel=1e-6)
    assert torch.allclose(resumed_model.weight, full.weight, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # atomic: no temp files


def test_checkpoints_load_with_weights_only(tmp_path):
    model = nn.Linear(3, 1)
    train.fit(model, mse, regression(), epochs=1, checkpoint=tmp_path / "c.pt", progress=False)
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert set(state) == {"format", "model", "optimizer", "history", "best_model", "rng", "step"}
    assert state["step"] is None  # no custom step
    assert torch.equal(state["model"]["weight"], model.weight.detach())


def test_an_interrupt_returns_the_history_so_far(tmp_path):
    calls = {"n": 0}

    def interrupting(model, batch):
        calls["n"] += 1
        if calls["n"] > 4:  # 4 batches of 64 = one epoch, then Ctrl-C
            raise KeyboardInterrupt
        return mse(model, batch)

    history = train.fit(nn.Linear(3, 1), interrupting, regression(), epochs=5, batch_size=64,
                        checkpoint=tmp_path / "c.pt", progress=False)
    assert history.interrupted and history.epochs == 1
    saved, _ = train.load_checkpoint(tmp_path / "c.pt", nn.Linear(3, 1))
    assert saved.epochs == 1 and saved.train == history.train


def test_unequal_tensors_are_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        train.fit(nn.Linear(3, 1), mse, (torch.zeros(5, 3), torch.zeros(4, 1)), progress=False)


def test_an_interrupt_during_validation_keeps_the_history_consistent():
    calls = {"n": 0}

    def interrupt_in_validation(model, batch):
        if not model.training:
            calls["n"] += 1
            if calls["n"] == 2:  # the second epoch's validation
                raise KeyboardInterrupt
        return mse(model, batch)

    history = train.fit(nn.Linear(3, 1), interrupt_in_validation, regression(), regression(seed=1),
                        epochs=5, progress=False)
    assert history.interrupted
    assert len(history.train) == len(history.val) == len(history.seconds) == 1


def test_patience_and_resume_return_the_best_weights_not_the_last(tmp_path):
    """A resumed run with early stopping restores the best epoch's weights, as history.best says."""
    x, y = regression()
    val = (x, -y)  # the better the fit to y, the worse the validation loss: the best epoch is the first
    path = tmp_path / "c.pt"
    torch.manual_seed(0)
    first = train.fit(nn.Linear(3, 1), mse, (x, y), val, epochs=3, patience=50, checkpoint=path, progress=False)
    resumed_model = nn.Linear(3, 1)
    history = train.fit(resumed_model, mse, (x, y), val, epochs=6, patience=50, checkpoint=path, progress=False)
    assert history.epochs == 6 and first.epochs == 3 and history.best_epoch == 0
    assert train.evaluate(resumed_model, mse, val) == pytest.approx(history.best, rel=1e-5)


RESUME_SCRIPT = """
import sys, torch
from torch import nn
import genlib
from genlib import train
epochs, path, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
gen = genlib.seed_everything(0)
x = torch.randn(300, 4); y = x @ torch.randn(4, 1)
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))  # dropout: global RNG
loss = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()
h = train.fit(model, loss, (x, y), (x[:50], y[:50]), epochs=epochs, batch_size=32, generator=gen,
              checkpoint=path if path != "-" else None, progress=False)
torch.save({"model": model.state_dict(), "train": h.train, "val": h.val}, out)
"""


def test_a_run_resumed_in_a_new_process_is_the_same_run(tmp_path):
    """Train 8 epochs; or train 4, stop, and resume to 8 in a new process: same weights and history."""
    import subprocess
    import sys

    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    run = lambda *args: subprocess.run([sys.executable, str(script), *map(str, args)], check=True)  # noqa: E731
    run(8, "-", tmp_path / "whole.pt")
    run(4, tmp_path / "c.pt", tmp_path / "half.pt")
    run(8, tmp_path / "c.pt", tmp_path / "resumed.pt")
    whole, resumed = (torch.load(tmp_path / f, weights_only=True) for f in ("whole.pt", "resumed.pt"))
    assert resumed["train"] == pytest.approx(whole["train"], rel=1e-6)
    assert resumed["val"] == pytest.approx(whole["val"], rel=1e-6)
    for name, w in whole["model"].items():
        assert torch.allclose(resumed["model"][name], w, atol=1e-6), name


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"batch_size": -3}, "batch_size must be a positive integer"),
    ({"patience": -1}, "patience must be a non-negative integer"),
    ({"lr": 0}, "lr must be > 0"),
    ({"device": "cuda:7" if not torch.cuda.is_available() else "tpu"}, "device"),
])
def test_bad_settings_are_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        train.fit(nn.Linear(3, 1), mse, regression(), epochs=1, progress=False, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("which", ["train", "val"])
def test_an_empty_data_set_is_one_line(which):
    data = {"train": regression(), "val": regression()}
    data[which] = (torch.zeros(0, 3), torch.zeros(0, 1))
    with pytest.raises(ValueError, match=f"the {which} set is empty"):
        train.fit(nn.Linear(3, 1), mse, data["train"], data["val"], epochs=1, progress=False)


@pytest.mark.parametrize("content", [b"", b"garbage bytes", "foreign", "pickled"])
def test_a_bad_checkpoint_file_is_named_in_one_line(tmp_path, content):
    path = tmp_path / "c.pt"
    if content == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)  # a valid torch file of someone else's
    elif content == "pickled":
        path.write_bytes(b"\x80\x04K\x01.")  # a pickle of the number 1, not a checkpoint
    else:
        path.write_bytes(content)
    with pytest.raises(train.CheckpointError) as err:
        train.fit(nn.Linear(3, 1), mse, regression(), epochs=2, checkpoint=path, progress=False)
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "weights_only=False" not in message


def test_a_checkpoint_of_another_model_shape_is_named(tmp_path):
    path = tmp_path / "c.pt"
    train.fit(nn.Linear(3, 1), mse, regression(), epochs=1, checkpoint=path, progress=False)
    x, y = regression()
    with pytest.raises(train.CheckpointError, match="holds weights for a different model") as err:
        train.fit(nn.Linear(3, 2), mse, (x, y.repeat(1, 2)), epochs=2, checkpoint=path, progress=False)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_bf16_autocast_trains_and_unknown_precision_is_one_line():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    history = train.fit(model, mse, regression(), epochs=3, lr=0.05, precision="bf16", progress=False)
    assert history.train[-1] < history.train[0]
    with pytest.raises(ValueError, match="unknown precision 'fp8'; choose one of: fp32, bf16"):
        train.fit(model, mse, regression(), epochs=1, precision="fp8", progress=False)
def test_a_step_hook_replaces_the_update_and_owns_its_optimiser():
    data = regression()
    model = nn.Linear(3, 1)
    sgd = torch.optim.SGD(model.parameters(), lr=0.05)
    seen = []

    def step(m, batch):  # the caller's own update: plain SGD on the squared error
        value = mse(m, batch)
        sgd.zero_grad()
        value.backward()
        sgd.step()
        seen.append(float(value.detach()) * len(batch[0]))
        return value.detach()

    reference = nn.Linear(3, 1)
    reference.load_state_dict(model.state_dict())
    history = train.fit(model, mse, data, epochs=2, batch_size=64, generator=torch.Generator().manual_seed(0),
                        progress=False, step=step)
    assert len(seen) == 8 and history.train[0] == pytest.approx(sum(seen[:4]) / 256)
    # the same SGD steps by hand, in the same batch order: fit's own Adam never touched the weights
    ref_sgd = torch.optim.SGD(reference.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        for batch in train.batches(data, 64, shuffle=True, generator=gen):
            ref_sgd.zero_grad()
            mse(reference, batch).backward()
            ref_sgd.step()
    assert torch.allclose(model.weight, reference.weight, atol=1e-6)


def test_a_step_hook_returning_nan_is_caught():
    with pytest.raises(train.NonFiniteLossError, match="loss is nan at epoch 1, step 1"):
        train.fit(nn.Linear(3, 1), mse, regression(), epochs=1, progress=False,
                  step=lambda m, b: torch.tensor(math.nan))


def test_record_keeps_extra_series_in_the_history_and_its_checkpoint(tmp_path):
    """genlib.train.record, called from any loss or step= update, appends to the running fit's
    history.log (saved and resumed with the checkpoint); outside fit it does nothing."""
    def loss(m, batch):
        value = mse(m, batch)
        train.record(doubled=2 * value, rows=len(batch[0]))
        return value

    train.record(ignored=1.0)  # no fit running: nothing to keep, no error
    data, path = regression(), tmp_path / "run.pt"
    history = train.fit(nn.Linear(3, 1), loss, data, epochs=1, batch_size=64, checkpoint=path, progress=False)
    assert history.log["rows"] == [64.0] * 4 and "ignored" not in history.log
    assert history.train[0] == pytest.approx(sum(history.log["doubled"]) / 8)
    resumed = train.fit(nn.Linear(3, 1), loss, data, epochs=2, batch_size=64, checkpoint=path, progress=False)
    assert len(resumed.log["rows"]) == 8 and resumed.log["doubled"][:4] == history.log["doubled"]


def test_a_stop_in_the_first_phase_skips_the_diffusion_cooldown(monkeypatch):
    """In a notebook (no genlib.longrun guard), Ctrl-C during fit_with_cooldown's first phase ends the
    run: the cool-down phase does not start."""
    from genlib import diffusion

    calls = []

    def interrupted(model, batch):
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(diffusion.training, "batch_loss", interrupted)
    history = diffusion.fit_with_cooldown(nn.Linear(3, 3), torch.zeros(8, 3), settings=diffusion.TrainConfig(epochs=2),
                                          progress=False)
    assert history.interrupted and history.epochs == 0 and calls == [1]
