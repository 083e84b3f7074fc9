"""genlib.train.fit under torchrun: 2 processes (Gloo, CPU) train as one process on the same global batches."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = """
import os, sys, torch
from torch import nn
import genlib
from genlib import train

out, checkpoint, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
rank = int(os.environ.get("RANK", 0))
writes = train.save_checkpoint
def logged(*args, **kwargs):  # which processes write the checkpoint
    with open(out + ".writers", "a") as f:
        f.write(f"{rank}\\n")
    writes(*args, **kwargs)
train.save_checkpoint = logged

gen = genlib.seed_everything(0)
x = torch.randn(203, 4); y = x @ torch.randn(4, 1) + 0.1 * torch.randn(203, 1)  # 203 = 6 * 32 + 11
model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
loss = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()
h = train.fit(model, loss, (x, y), (x[:61], y[:61]), epochs=epochs, batch_size=32, generator=gen,
              checkpoint=None if checkpoint == "-" else checkpoint, progress=False)
torch.save({"model": model.state_dict(), "train": h.train, "val": h.val}, f"{out}.{rank}")
"""

TORCHRUN = Path(sys.executable).with_name("torchrun")


def run(tmp_path, name, checkpoint="-", epochs=5, processes=1):
    script = tmp_path / "fit_script.py"
    script.write_text(SCRIPT)
    out = tmp_path / name
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(script)] if processes == 1 else [
        str(TORCHRUN), "--standalone", f"--nproc_per_node={processes}", str(script)]
    subprocess.run(command + [str(out), str(checkpoint), str(epochs)], check=True, env=env, cwd=tmp_path,
                   timeout=300, capture_output=True)
    return out


def load(out, rank=0):
    return torch.load(f"{out}.{rank}", weights_only=True)


def same_run(a, b):
    assert b["train"] == pytest.approx(a["train"], rel=1e-5)
    assert b["val"] == pytest.approx(a["val"], rel=1e-5)
    for name, w in a["model"].items():
        assert torch.allclose(b["model"][name], w, atol=1e-5), name


pytestmark = pytest.mark.skipif(not TORCHRUN.exists() or not torch.distributed.is_available(),
                                reason="needs torchrun and torch.distributed")


def test_two_processes_train_as_one_and_only_rank_0_writes(tmp_path):
    single = load(run(tmp_path, "single"))
    out = run(tmp_path, "ddp", checkpoint=tmp_path / "c.pt", processes=2)
    same_run(single, load(out, 0))
    same_run(single, load(out, 1))
    assert Path(f"{out}.writers").read_text().split() == ["0"] * 5  # rank 0, once per epoch
    assert sorted(p.name for p in tmp_path.glob("c.pt*")) == ["c.pt"]


def test_a_distributed_run_resumes(tmp_path):
    single = load(run(tmp_path, "single"))
    run(tmp_path, "first", checkpoint=tmp_path / "c.pt", epochs=3, processes=2)
    resumed = load(run(tmp_path, "resumed", checkpoint=tmp_path / "c.pt", epochs=5, processes=2))
    same_run(single, resumed)
