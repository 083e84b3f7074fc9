"""One training loop for every chapter.

``fit(model, loss, train, val)`` minimises ``loss(model, batch)`` by Adam over minibatches of the
tensor ``train`` (and, optionally, labels), evaluates the same loss on ``val`` after each epoch, stops
early when validation stops improving, and can save and resume checkpoints. Checkpoints hold
weights, optimiser state and the history only (plain tensors and numbers), so they load with
``torch.load(weights_only=True)``. A NaN or infinite loss stops training with
:class:`NonFiniteLossError`; an interrupt (Ctrl-C, a notebook's stop button) returns the history so
far, and the last finished epoch stays in the checkpoint.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

Batch = Sequence[torch.Tensor]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
StepFn = Callable[[nn.Module, Batch], torch.Tensor]  # takes its own optimiser step(s); returns the loss


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message says where."""


@dataclass
class History:
    """Per-epoch record of a run; the notebooks plot it with :func:`genlib.plot.history`."""

    train: list[float] = field(default_factory=list)  # mean training loss per epoch
    val: list[float] = field(default_factory=list)  # mean validation loss per epoch
    seconds: list[float] = field(default_factory=list)  # wall time per epoch
    best_epoch: int = -1  # 0-based epoch with the lowest validation (or training) loss
    stopped_early: bool = False
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train)

    @property
    def best(self) -> float:
        curve = self.val or self.train
        return curve[self.best_epoch] if curve else math.nan


def check_epochs(epochs) -> int:
    """``epochs`` as an int, or a one-line ``ValueError`` that says what is allowed."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer (1, 2, ...), got {epochs!r}")
    return epochs


def batches(tensors: Batch, batch_size: int, shuffle: bool, generator: torch.Generator | None):
    """Yield minibatches (tuples of row slices) of equally long ``tensors``."""
    n = len(tensors[0])
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        yield tuple(t[rows] for t in tensors)


@torch.no_grad()
def evaluate(model: nn.Module, loss: LossFn, data: Batch, batch_size: int = 1024,
             device: torch.device | str = "cpu") -> float:
    """Mean of ``loss`` over ``data``, weighting each batch by its size; the model is left in eval mode."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches(data, batch_size, shuffle=False, generator=None):
        batch = tuple(t.to(device) for t in batch)
        total += float(loss(model, batch)) * len(batch[0])
        count += len(batch[0])
    return total / count


def fit(
    model: nn.Module,
    loss: LossFn,
    train: torch.Tensor | Batch,
    val: torch.Tensor | Batch | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    progress: bool = True,
    step: StepFn | None = None,
) -> History:
    """Train ``model`` by minimising ``loss(model, batch)`` with Adam; return its :class:`History`.

    ``train`` and ``val`` are a tensor or a tuple of equally long tensors (e.g. ``(x, y)``); each
    batch handed to ``loss`` is a tuple of their rows, on ``device``. With ``patience``, training
    stops after that many epochs without a better validation loss and the best weights are
    restored. With ``checkpoint``, the state after every epoch is written there atomically, and
    ``resume=True`` continues from it. ``step(model, batch)``, if given, replaces the default update
    (``loss`` → backward → Adam step) on each training batch and returns the batch's loss; it owns
    its optimisers (a GAN's two players), which the checkpoint does not hold.
    """
    check_epochs(epochs)
    train, val = _as_tuple(train), (None if val is None else _as_tuple(val))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history, start = History(), 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        history, start = load_checkpoint(checkpoint, model, optimizer)
    best_state = _copy_state(model) if history.best_epoch >= 0 else None
    bar = _progress(range(start, epochs), progress)
    try:
        for epoch in bar:
            tic = time.perf_counter()
            history.train.append(_train_epoch(model, loss, optimizer, train, batch_size, device,
                                              generator, epoch, step))
            if val is not None:
                history.val.append(evaluate(model, loss, val, device=device))
            history.seconds.append(time.perf_counter() - tic)
            curve = history.val or history.train
            if history.best_epoch < 0 or curve[-1] < curve[history.best_epoch]:
                history.best_epoch, best_state = epoch, _copy_state(model)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, history)
            _describe(bar, history)
            if patience is not None and epoch - history.best_epoch >= patience:
                history.stopped_early = True
                break
    except KeyboardInterrupt:
        history.interrupted = True
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def _as_tuple(data: torch.Tensor | Batch) -> tuple[torch.Tensor, ...]:
    tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
    if len({len(t) for t in tensors}) != 1:
        raise ValueError(f"tensors in one data set differ in length: {[len(t) for t in tensors]}")
    return tensors


def _train_epoch(model, loss, optimizer, train, batch_size, device, generator, epoch, update=None) -> float:
    model.train()
    total, count = 0.0, 0
    for step, batch in enumerate(batches(train, batch_size, shuffle=True, generator=generator)):
        batch = tuple(t.to(device) for t in batch)
        value = loss(model, batch) if update is None else update(model, batch)
        if not torch.isfinite(value):
            raise NonFiniteLossError(
                f"loss is {float(value.detach())} at epoch {epoch + 1}, step {step + 1}; "
                f"try a smaller learning rate or check the data for NaNs"
            )
        if update is None:
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
        total += float(value.detach()) * len(batch[0])
        count += len(batch[0])
    return total / count


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _progress(epochs: range, enabled: bool):
    if not enabled:
        return epochs
    from tqdm.auto import tqdm

    return tqdm(epochs, desc="epochs", leave=False)


def _describe(bar, history: History) -> None:
    if hasattr(bar, "set_postfix"):
        stats = {"train": f"{history.train[-1]:.3f}"}
        if history.val:
            stats["val"] = f"{history.val[-1]:.3f}"
        bar.set_postfix(stats)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    history: History) -> None:
    """Write weights, optimiser state and history to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "history": asdict(history)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> tuple[History, int]:
    """Load a checkpoint with ``weights_only=True``; return its history and the next epoch."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    history = History(**state["history"])
    history.interrupted = history.stopped_early = False
    return history, history.epochs
