"""Long runs that never lose work (issue 26): interrupts keep the previous file and leave a resumable one,
``--out`` is checked before training, and bad sizes or files are one line."""
import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genlib import longrun, train, train_family

ROOT = Path(__file__).resolve().parent.parent
TORCHRUN = Path(sys.executable).with_name("torchrun")
TINY = ["latent_dim=2"]  # the VAE of the book profile, with a 2-d latent: about a second an epoch here


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def good(tmp_path):
    """A folder holding a finished ``vae.pt`` (one epoch)."""
    out = tmp_path / "out"
    assert train_family.main(["vae", "epochs=1", *TINY, "--out", str(out)]) == 0
    assert torch.load(out / "vae.pt", weights_only=True)["finished"] is True
    return out


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def wait_for(path: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def interrupt(command, out: Path, target_pid=None):
    """Start ``command``, wait for its first finished epoch (the resume file), send SIGINT; (rc, stdout)."""
    before = digest(out / "vae.pt")
    proc = subprocess.Popen(command, env=env(), cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(out / "vae.resume.pt")
        os.kill(target_pid(proc) if target_pid else proc.pid, signal.SIGINT)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert digest(out / "vae.pt") == before  # the good file is untouched
    assert (out / "vae.resume.pt").exists()  # the work done is kept under another name
    return proc.returncode, stdout


def test_ctrl_c_keeps_the_good_file_leaves_a_resumable_one_and_fails(good):
    rc, stdout = interrupt([sys.executable, "-m", "genlib.train_family", "vae", "epochs=200", *TINY,
                            "--out", str(good)], good)
    assert rc == 130
    assert "vae: interrupted (SIGINT) after" in stdout and "vae.pt was not replaced" in stdout
    assert "run the same command to resume" in stdout


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


@pytest.mark.skipif(not TORCHRUN.exists(), reason="needs torchrun")
@pytest.mark.parametrize("who", ["torchrun", "rank 0"])
def test_ctrl_c_under_torchrun_keeps_the_good_file(good, who):
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "genlib.train_family", "vae",
               "epochs=200", *TINY, "--out", str(good)]
    rank0 = None if who == "torchrun" else (lambda proc: _children(proc.pid)[0])  # the first worker started
    rc, _ = interrupt(command, good, rank0)
    assert rc != 0
    deadline = time.monotonic() + 60
    while any("genlib.train_family" in _cmdline(p) for p in Path("/proc").glob("[0-9]*")):
        assert time.monotonic() < deadline, "a worker was left running"
        time.sleep(0.5)


def _cmdline(proc_dir: Path) -> str:
    try:
        text = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
    return text if str(proc_dir.name) != str(os.getpid()) and "--out" in text and "epochs=200" in text else ""


class _InterruptAt:
    """Stands in for fit's epoch and raises KeyboardInterrupt (a Ctrl-C) at its ``n``-th call."""

    def __init__(self, n):
        self.n, self.calls, self.real = n, 0, train._train_epoch

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.real(*args, **kwargs)


def test_the_same_command_resumes_and_then_cleans_up(good, monkeypatch, capsys):
    args = ["vae", "epochs=4", *TINY, "--out", str(good)]
    monkeypatch.setattr(train, "_train_epoch", _InterruptAt(3))
    assert train_family.main(args) == 130
    assert "after 2 epochs" in capsys.readouterr().out
    assert train_family.load_history(good / "vae.pt").epochs == 1  # still the good one-epoch model
    monkeypatch.undo()
    assert train_family.main(args) == 0
    out = capsys.readouterr().out
    assert "resuming from" in out and "vae: 4 epochs" in out
    assert sorted(p.name for p in good.iterdir()) == ["vae.pt"]  # the resume files are gone
    assert train_family.load_history(good / "vae.pt").epochs == 4


def test_an_interrupted_first_phase_skips_the_cooldown(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train, "_train_epoch", _InterruptAt(2))
    assert train_family.main(["diffusion", "epochs=4", "width=8", "T=10", "--out", str(tmp_path)]) == 130
    assert "interrupted (SIGINT) after 1 epochs" in capsys.readouterr().out
    assert train._train_epoch.calls == 2  # the cool-down phase never started
    assert not (tmp_path / "diffusion.pt").exists() and (tmp_path / "diffusion.resume.pt").exists()


def test_sigterm_is_an_interrupt_too(good, monkeypatch, capsys):
    def term(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs here
        raise AssertionError("SIGTERM was not turned into a stop")

    monkeypatch.setattr(train, "_train_epoch", term)
    assert train_family.main(["vae", "epochs=3", *TINY, "--out", str(good)]) == 143
    assert "interrupted (SIGTERM) after 0 epochs" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is put back


def test_a_file_records_whether_training_finished_and_load_says_so(good):
    state = torch.load(good / "vae.pt", weights_only=True)
    state["finished"] = False
    torch.save(state, good / "half.pt")
    with pytest.warns(train_family.UnfinishedTrainingWarning, match="interrupted after 1 epochs"):
        train_family.load(good / "half.pt", "vae")
    del state["finished"]
    state["history"]["interrupted"] = True  # a file written before the flag existed
    torch.save(state, good / "old.pt")
    with pytest.warns(train_family.UnfinishedTrainingWarning):
        train_family.load(good / "old.pt", "vae")


# ----------------------------------------------------------------------------- --out before training


class _NoTraining:
    def __call__(self, *args, **kwargs):
        raise AssertionError("training started")


@pytest.mark.parametrize("layout, message", [
    ("file", "is a file; give a folder"),
    ("under a file", "which is a file; give a folder"),
])
def test_a_bad_out_fails_before_training(tmp_path, monkeypatch, capsys, layout, message):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if layout == "file" else tmp_path / "f" / "sub"
    monkeypatch.setattr(train, "_train_epoch", _NoTraining())
    assert train_family.main(["vae", "--out", str(out)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_fails_before_training(tmp_path, monkeypatch, capsys):
    tmp_path.chmod(0o500)
    try:
        monkeypatch.setattr(train, "_train_epoch", _NoTraining())
        assert train_family.main(["vae", "--out", str(tmp_path / "x")]) == 2
        assert "is not a writable folder" in capsys.readouterr().err
    finally:
        tmp_path.chmod(0o700)


def test_a_full_disk_fails_before_training(tmp_path, monkeypatch, capsys):
    real = longrun.shutil.disk_usage
    monkeypatch.setattr(longrun.shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    monkeypatch.setattr(train, "_train_epoch", _NoTraining())
    assert train_family.main(["vae", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has 0 MB free, but this run writes about" in err and len(err.strip().splitlines()) == 1


def test_a_disk_that_fills_during_the_run_is_one_line_and_keeps_the_old_file(good, monkeypatch, capsys):
    before = digest(good / "vae.pt")

    def full(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 2112 vs 2006")

    monkeypatch.setattr(torch, "save", full)
    assert train_family.main(["vae", "epochs=1", *TINY, "--out", str(good)]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "genlib" in line]  # not the progress bar
    assert len(err) == 1 and "the disk is probably full" in err[0]
    assert digest(good / "vae.pt") == before and not list(good.glob(".*.part"))
    with pytest.raises(OSError) as info:
        train.save_atomically({"x": 1}, good / "y.pt")
    assert info.value.errno == errno.ENOSPC


def test_checkpoint_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        train.save_atomically({"x": torch.zeros(1)}, tmp_path / "a.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "a.pt").stat().st_mode & 0o777 == 0o644


# ----------------------------------------------------------------------------- one line for bad sizes and files


@pytest.mark.parametrize("overrides, message", [
    (["dataset=[1,2]"], "dataset must be a string like 'digits', got [1, 2]"),
    (["latent_dim=1000000000"], "more than this machine's"),
    (["x" * 100_000 + "=1"], "characters)"),
])
def test_bad_parameters_are_one_line(tmp_path, capsys, overrides, message):
    assert train_family.main(["vae", *overrides, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and len(err) < 400


def test_a_huge_pixelcnn_is_one_line(tmp_path, capsys):
    assert train_family.main(["pixelcnn", "channels=1000000", "--out", str(tmp_path)]) == 2
    assert "GB of weights" in capsys.readouterr().err


def test_a_data_set_that_cannot_be_fetched_is_one_line(tmp_path, monkeypatch, capsys):
    from genlib import data

    def offline(*args, **kwargs):
        raise data.DataError("could not download mnist: no network (set GENLIB_DATA to a folder holding it)")

    monkeypatch.setattr(data, "images", offline)
    assert train_family.main(["vae", "dataset=mnist5k", "--out", str(tmp_path)]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "genlib" in line]
    assert len(err) == 1 and "could not download mnist" in err[0]


def test_checkpoint_files_missing_tampered_or_nan(good):
    with pytest.raises(ValueError, match="nope.pt not found"):
        train_family.load(good / "nope.pt")
    state = torch.load(good / "vae.pt", weights_only=True)
    for name, edit in [("nokey", lambda s: s["params"].pop("latent_dim")),
                       ("resized", lambda s: s["params"].update(latent_dim=3)),
                       ("family", lambda s: s.update(family="gpt"))]:
        tampered = {**state, "params": dict(state["params"])}
        edit(tampered)
        torch.save(tampered, good / f"{name}.pt")
        with pytest.raises(ValueError) as info:
            train_family.load(good / f"{name}.pt")
        assert len(str(info.value).splitlines()) == 1
    nan = {**state, "model": {k: v.clone() for k, v in state["model"].items()}}
    next(v for v in nan["model"].values() if v.is_floating_point()).fill_(float("nan"))
    torch.save(nan, good / "nan.pt")
    with pytest.warns(RuntimeWarning, match="hold NaN or infinite values"):
        train_family.load(good / "nan.pt")
