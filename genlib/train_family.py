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
(weights, the parameters that built the model, the history, whether training finished), loaded by
:func:`load`.

Long runs never lose work (:mod:`genlib.longrun`): ``--out`` is checked (a writable folder with room
for the files) before the first epoch; every epoch is saved to ``<out>/<family>.resume.pt``; Ctrl-C or
SIGTERM (also to ``torchrun``) exits 130/143 without touching an earlier ``<family>.pt``, and the same
command run again resumes from the resume file, which is removed once the run finishes.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

import genlib
from genlib import checks, data, longrun, run
from genlib import params as chapter_params
from genlib.family import FAMILIES, Family
from genlib.train import History, save_atomically


def _trainable() -> dict[str, Family]:
    """The registered families that are trained and saved (the mixture is fitted where it is used)."""
    return {name: f for name, f in FAMILIES.items() if f.checkpoint}


# ----------------------------------------------------------------------------- parameters and files


def parameters(family: str, profile: str = "book", overrides: dict | None = None) -> dict:
    """The chapter's parameters for ``family`` under ``profile``, with ``overrides`` on top."""
    checks.choice("family", family, _trainable())
    chapter = FAMILIES[family].chapter
    declared = chapter_params.defaults(chapter)
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ValueError(f"chapter {chapter} has no parameter named {checks.clip(', '.join(unknown))}; "
                         f"valid: {', '.join(sorted(declared))}")
    chosen = chapter_params.resolve(chapter, profile, overrides)
    for name, default in declared.items():  # a list where a name is expected fails deep inside, later
        if isinstance(default, str) and not isinstance(chosen[name], str):
            raise ValueError(f"{name} must be a string like {default!r}, got {checks.short(chosen[name])}")
    return chosen


def save(path: Path, family: str, params: dict, model: nn.Module, history: History) -> None:
    """Write the trained model atomically; plain tensors and values only (``weights_only`` loads it).
    ``finished`` records whether its training ran to the end (an interrupted run never writes here)."""
    save_atomically({"family": family, "params": params, "model": model.state_dict(), "history": asdict(history),
                     "finished": not history.interrupted}, path)


def read(path: str | Path) -> dict:
    """The saved dictionary at ``path``; a one-line ``ValueError`` for a missing or foreign file."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} not found (train it with: python -m genlib.train_family <family> --out "
                         f"{path.parent})")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not isinstance(state["params"], dict):
            raise TypeError
        state["family"], state["model"]  # noqa: B018 - present
    except Exception:  # noqa: BLE001 - empty, corrupt, someone else's file
        raise ValueError(f"{path} is not a checkpoint written by genlib.train_family") from None
    return state


def unfinished(state: dict) -> str:
    """"" for a checkpoint whose training ran to the end, else why it did not (for a warning)."""
    history = state.get("history") or {}
    if state.get("finished", not history.get("interrupted", False)):
        return ""
    return f"its training was interrupted after {len(history.get('train') or [])} epochs"


def load(path: str | Path, family: str | None = None, device: str = "cpu",
         expect: dict | None = None) -> tuple[nn.Module, dict]:
    """The model saved at ``path`` (rebuilt from its parameters) and those parameters.

    A missing file, one that is not such a checkpoint, one of another family, one whose parameters
    differ from ``expect`` (e.g. the chapter's ``{"dataset": dataset}``) or whose weights do not fit
    its parameters is a one-line ``ValueError``. A model whose training did not finish, or whose
    weights hold NaN or infinite values, loads with a warning that says so."""
    path = Path(path)
    state = read(path)
    name, params, weights = state["family"], state["params"], state["model"]
    if name not in FAMILIES:
        raise ValueError(f"{path} holds an unknown family {checks.short(name)}; known: {', '.join(FAMILIES)}")
    if family is not None and name != family:
        raise ValueError(f"{path} holds a {name!r} model, not {family!r}")
    check_params(path, params, **(expect or {}))
    try:
        chosen = FAMILIES[name]
        model = chosen.build(chosen.parameters(params))
        model.load_state_dict(weights)
    except Exception as err:  # noqa: BLE001 - edited or mixed-up metadata: a missing key, other sizes
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        detail = f"{type(err).__name__}: {detail}" if isinstance(err, KeyError) or not detail else detail
        raise ValueError(f"{path}: its parameters and weights do not match ({checks.short(detail, 100)}); "
                         f"the file was edited or mixed up, train it again") from None
    why = unfinished(state)
    if why:
        warnings.warn(f"{path}: {why}; it is not the finished model (run genlib.train_family again "
                      f"to finish it)", UnfinishedTrainingWarning, stacklevel=2)
    bad = [k for k, v in weights.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        warnings.warn(f"{path}: weights {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} hold NaN or "
                      f"infinite values; the model's outputs will be NaN", RuntimeWarning, stacklevel=2)
    return model.to(genlib.device(device)).eval(), params


class UnfinishedTrainingWarning(UserWarning):
    """A checkpoint whose training was interrupted before its last epoch."""


def check_params(path: str | Path, saved: dict, **expected) -> None:
    """A one-line ``ValueError`` naming the first parameter (dataset, a size) on which the model saved at
    ``path`` (its parameters ``saved``) disagrees with the run that loads it (``expected``)."""
    for name, value in expected.items():
        if saved.get(name) != value:
            raise ValueError(f"{path} was trained with {name}={saved.get(name)!r}, but this run has "
                             f"{name}={value!r}; train it again with this value or change the parameter")


def load_or_train(checkpoint: str | Path | None, family: str, train, *, device: str = "cpu",
                  expect: dict | None = None) -> tuple[nn.Module, History]:
    """A chapter's "load the checkpoint or train" block: the model and history saved at ``checkpoint``
    (checked against ``expect``, e.g. the chapter's ``{"dataset": dataset, "hidden": hidden}``) when
    it is given, printing one line; else ``train()``'s ``(model, history)``."""
    if not checkpoint:
        return train()
    model, _ = load(checkpoint, family, device=device, expect=expect)
    history = load_history(checkpoint)
    print(f"loaded {checkpoint}: {history.epochs} epochs trained elsewhere in {sum(history.seconds):.1f} s, best "
          f"{'validation' if history.val else 'training'} loss {history.best:.3f} (epoch {history.best_epoch + 1})")
    return model, history


def load_history(path: str | Path) -> History:
    """The training history saved with the model at ``path`` (a chapter plots it instead of training)."""
    path = Path(path)
    state = read(path)
    try:
        return History(**state["history"])
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
    say = (lambda *a: print(*a, flush=True)) if rank == 0 else (lambda *a: None)  # noqa: E731
    target = args.out / f"{args.family}.pt"
    try:  # everything that can fail before training fails here, in one line
        params = parameters(args.family, args.profile, run.parse_overrides(args.overrides))
        family = FAMILIES[args.family]
        chosen = family.parameters(params)
        if rank == 0:
            longrun.check_out(args.out)  # a file in the way, read-only: before any work
        need = _weights_bytes(family, chosen)
        if rank == 0:  # the final file, and the resume file (weights, best weights, Adam's two moments)
            longrun.check_out(args.out, 5 * need)
        device = genlib.device(chosen.device)
        generator = genlib.seed_everything(chosen.seed)
        model = _build(family, chosen, need)
    except (ValueError, TypeError) as err:  # bad parameters (fit checks epochs, precision, ...): one line
        return _error(err, 2)
    except data.DataError as err:  # a data set that cannot be fetched (offline): one line
        return _error(err, 1)
    tic, history = time.perf_counter(), None
    try:
        with longrun.guarded(args.out / args.family, rank) as guard:
            note = guard.bind({"family": args.family, "params": params, "precision": args.precision,
                               "compile": args.compile})
            if note:
                say(f"{args.family}: {note}")
            history = family.train(model, chosen, generator, {"device": device, "progress": rank == 0,
                                                              "precision": args.precision, "compile": args.compile})
            if not (history.interrupted or guard.interrupted) and rank == 0:
                save(target, args.family, params, model, history)
                guard.finish()
    except (ValueError, TypeError) as err:
        return _error(err, 2)
    except (data.DataError, OSError, FloatingPointError) as err:  # no data, a full disk, a NaN loss
        return _error(err, 1)
    if guard.interrupted or history is None or history.interrupted:
        guard.signal = guard.signal or signal.SIGINT
        done = history.epochs if history is not None else 0
        kept = f"{target} was not replaced" if target.exists() else f"{target} was not written"
        resume = guard.resume_files()
        then = (f"{resume[-1]} holds the last finished epoch: run the same command to resume"
                if resume else "no epoch had finished")
        say(f"{args.family}: interrupted ({signal.Signals(guard.signal).name}) after {done} epochs; {kept}; {then}")
        return longrun.exit_status(guard)
    say(f"{args.family}: {history.epochs} epochs in {time.perf_counter() - tic:.1f} s, "
        f"best {'validation' if history.val else 'training'} loss {history.best:.3f} -> {target}")
    return 0


def _error(err: BaseException, status: int) -> int:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    print(f"genlib-train-family: error: {text}", file=sys.stderr)
    return status


def _weights_bytes(family: Family, params) -> int:
    """Bytes of the model's weights and buffers, counted on PyTorch's meta device (nothing allocated);
    a model larger than this machine's memory is a one-line ``ValueError``."""
    try:
        with torch.device("meta"):
            model = family.build(params)
        need = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    except (ValueError, TypeError, data.DataError):
        raise
    except Exception:  # noqa: BLE001 - a builder the meta device cannot run: the real build decides
        return 0
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    if memory and 4 * need > memory:  # weights, gradients and Adam's two moments
        raise ValueError(f"these parameters make a model of {longrun.gigabytes(need)} of weights (about "
                         f"{longrun.gigabytes(4 * need)} to train), more than this machine's "
                         f"{longrun.gigabytes(memory)}; choose smaller sizes")
    return need


def _build(family: Family, params, need: int) -> nn.Module:
    try:
        return family.build(params)
    except (RuntimeError, MemoryError) as err:
        if isinstance(err, MemoryError) or "alloc" in str(err) or "out of memory" in str(err):
            raise ValueError(f"not enough memory to build the model (it would need about "
                             f"{longrun.gigabytes(need)} for its weights); choose smaller sizes") from None
        raise


if __name__ == "__main__":
    sys.exit(main())
