"""Train a chapter's model outside its notebook: on a CPU, one GPU, or many under ``torchrun``.

    python -m genlib.train_family vae --out checkpoints/                     # the book profile
    python -m genlib.train_family vae --profile paper --out checkpoints/     # the paper profile
    torchrun --nproc_per_node=4 -m genlib.train_family vae --profile paper --out checkpoints/
    python -m genlib.train_family vae epochs=5 --precision bf16 --out runs/  # overrides, as in genlib.run

The model, its data and its training settings are the chapter's: the defaults of the chapter's
parameters (:mod:`genlib.params`, equal to its ``parameters`` cell), then the profile's values for that
chapter (``genlib/profiles.yml``), then ``name=value`` overrides — the precedence of :mod:`genlib.run`.
Each family is declared once, in its module (:mod:`genlib.family`); this module only dispatches to the
declaration's ``build`` and ``train`` (:func:`genlib.train.fit`, which runs data-parallel under
``torchrun``). Rank 0 writes one file, ``<out>/<family>.pt``
(weights, the parameters that built the model, the history), loaded by :func:`load`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

import genlib
from genlib import checks, params, run
from genlib.family import FAMILIES, Family
from genlib.train import History, save_atomically


def _trainable() -> dict[str, Family]:
    """The registered families that are trained and saved (the mixture is fitted where it is used)."""
    return {name: f for name, f in FAMILIES.items() if f.checkpoint}


# ----------------------------------------------------------------------------- parameters and files


def parameters(family: str, profile: str = "book", overrides: dict | None = None) -> dict:
    """The chapter's parameters for ``family`` under ``profile``, with ``overrides`` on top."""
    checks.choice("family", family, _trainable())
    return params.resolve(FAMILIES[family].chapter, profile, overrides)


def save(path: Path, family: str, params: dict, model: nn.Module, history: History) -> None:
    """Write the trained model atomically; plain tensors and values only (``weights_only`` loads it)."""
    save_atomically({"family": family, "params": params, "model": model.state_dict(), "history": asdict(history)},
                    path)


def load(path: str | Path, family: str | None = None, device: str = "cpu",
         expect: dict | None = None) -> tuple[nn.Module, dict]:
    """The model saved at ``path`` (rebuilt from its parameters) and those parameters.

    A file that is not such a checkpoint, one of another family, or one whose parameters differ from
    ``expect`` (e.g. the chapter's ``{"dataset": dataset}``) is a one-line ``ValueError``."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        name, params, weights = state["family"], state["params"], state["model"]
    except Exception:  # noqa: BLE001 - missing, empty, corrupt, someone else's file
        raise ValueError(f"{path} is not a checkpoint written by genlib.train_family") from None
    if family is not None and name != family:
        raise ValueError(f"{path} holds a {name!r} model, not {family!r}")
    check_params(path, params, **(expect or {}))
    chosen = FAMILIES[name]
    model = chosen.build(chosen.parameters(params))
    model.load_state_dict(weights)
    return model.to(genlib.device(device)).eval(), params


def check_params(path: str | Path, saved: dict, **expected) -> None:
    """A one-line ``ValueError`` naming the first parameter (dataset, a size) on which the model saved at
    ``path`` (its parameters ``saved``) disagrees with the run that loads it (``expected``)."""
    for name, value in expected.items():
        if saved.get(name) != value:
            raise ValueError(f"{path} was trained with {name}={saved.get(name)!r}, but this run has "
                             f"{name}={value!r}; train it again with this value or change the parameter")


def load_history(path: str | Path) -> History:
    """The training history saved with the model at ``path`` (a chapter plots it instead of training)."""
    try:
        saved = torch.load(Path(path), map_location="cpu", weights_only=True)["history"]
        return History(**saved)
    except Exception:  # noqa: BLE001
        raise ValueError(f"{path} is not a checkpoint written by genlib.train_family") from None


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genlib-train-family", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("family", help=f"one of: {', '.join(_trainable())}")
    parser.add_argument("overrides", nargs="*", help="name=value parameters of the family's chapter")
    parser.add_argument("--profile", default="book", help="parameter set from genlib/profiles.yml")
    parser.add_argument("--out", type=Path, default=Path("checkpoints"), help="folder for <family>.pt")
    parser.add_argument("--precision", default="fp32", help="fp32 or bf16 (autocast)")
    parser.add_argument("--compile", action="store_true", help="run the loss through torch.compile")
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    try:
        values = parameters(args.family, args.profile, run.parse_overrides(args.overrides))
        family = FAMILIES[args.family]
        chosen = family.parameters(values)
        device = genlib.device(chosen.device)
        generator = genlib.seed_everything(chosen.seed)
        model = family.build(chosen)
        tic = time.perf_counter()
        history = family.train(model, chosen, generator, {"device": device, "progress": rank == 0,
                                                          "precision": args.precision, "compile": args.compile})
    except ValueError as err:  # bad parameters (fit checks epochs, precision, ...): one line
        print(f"genlib-train-family: error: {err}", file=sys.stderr)
        return 2
    if rank == 0:
        target = args.out / f"{args.family}.pt"
        save(target, args.family, values, model, history)
        print(f"{args.family}: {history.epochs} epochs in {time.perf_counter() - tic:.1f} s, "
              f"best {'validation' if history.val else 'training'} loss {history.best:.3f} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
