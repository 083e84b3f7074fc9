"""One training loop for every chapter.

``fit(model, loss, train, val)`` minimises ``loss(model, batch)`` by Adam over minibatches of the
tensor ``train`` (and, optionally, labels), evaluates the same loss on ``val`` after each epoch, stops
early when validation stops improving, and can save and resume checkpoints. Checkpoints hold
weights, optimiser state and the history only (plain tensors and numbers), so they load with
``torch.load(weights_only=True)``. A NaN or infinite loss stops training with
:class:`NonFiniteLossError`; an interrupt (Ctrl-C, a notebook's stop button) returns the history so
far, and the last finished epoch stays in the checkpoint. Inside :func:`genlib.longrun.guarded` (the
command line of :mod:`genlib.train_family`), every call checkpoints to the run's resume file, and a
stop ends the run's later phases too.
"""
from __future__ import annotations

import contextvars
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genlib import checks, distributed, longrun
from genlib.checks import short
from genlib._core import atomic_write

Batch = Sequence[torch.Tensor]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
StepFn = Callable[[nn.Module, Batch], torch.Tensor]  # takes its own optimiser step(s); returns the loss


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message says where."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be resumed from; the message names the file and why."""


@dataclass
class History:
    """Per-epoch record of a run; the notebooks plot it with :func:`genlib.plot.history`."""

    train: list[float] = field(default_factory=list)  # mean training loss per epoch
    val: list[float] = field(default_factory=list)  # mean validation loss per epoch
    seconds: list[float] = field(default_factory=list)  # wall time per epoch
    best_epoch: int = -1  # 0-based epoch with the lowest validation (or training) loss
    stopped_early: bool = False
    interrupted: bool = False
    log: dict[str, list[float]] = field(default_factory=dict)  # extra series, name -> values (see record)

    @property
    def epochs(self) -> int:
        return len(self.train)

    def record(self, **values: float | torch.Tensor) -> None:
        """Append each value (a number or a one-element tensor) to the series ``log[name]``."""
        for name, value in values.items():
            self.log.setdefault(name, []).append(float(value.detach() if isinstance(value, torch.Tensor) else value))

    @property
    def best(self) -> float:
        curve = self.val or self.train
        return curve[self.best_epoch] if curve else math.nan


_RUNNING: contextvars.ContextVar[History | None] = contextvars.ContextVar("genlib_train_running", default=None)


def record(**values: float | torch.Tensor) -> None:
    """Keep extra series in the running :func:`fit`'s history: ``record(kl=kl, recon=recon)`` appends
    each value to ``history.log[name]``, once per call. Any family's ``loss`` or ``step=`` update calls
    it the same way (a GAN's per-generator-step losses, a VAE's two terms per batch); the series are
    saved in checkpoints with the rest of the history. Outside ``fit`` it does nothing. Each value is
    read with ``float()``: on a GPU that waits for the step, so record what is worth it."""
    history = _RUNNING.get()
    if history is not None:
        history.record(**values)


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
    """Mean of ``loss`` over ``data``, weighting each batch by its size; the model is left in eval mode.

    Under ``torchrun`` each process scores its share of the rows and the sums are added up, so every
    process returns the same mean over all of ``data``."""
    model.eval()
    rank, world = distributed.rank_and_world()
    data = tuple(t[rank::world] for t in _as_tuple(data))
    total = torch.zeros(2, dtype=torch.float64)  # (sum of losses, count)
    for batch in batches(data, batch_size, shuffle=False, generator=None):
        batch = tuple(t.to(device) for t in batch)
        total += torch.tensor([float(loss(model, batch)) * len(batch[0]), len(batch[0])], dtype=torch.float64)
    total = distributed.all_sum(total)
    return float(total[0] / total[1])


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
    precision: str = "fp32",
    compile: bool = False,
    step: StepFn | None = None,
) -> History:
    """Train ``model`` by minimising ``loss(model, batch)`` with Adam; return its :class:`History`.

    ``train`` and ``val`` are a tensor or a tuple of equally long tensors (e.g. ``(x, y)``); each
    batch handed to ``loss`` is a tuple of their rows, on ``device``. With ``patience``, training
    stops after that many epochs without a better validation loss and the best weights are
    restored. With ``checkpoint``, the state after every epoch is written there atomically, and
    ``resume=True`` continues from it.

    Launched under ``torchrun`` (``WORLD_SIZE`` > 1), the same call trains data-parallel with
    :class:`~torch.nn.parallel.DistributedDataParallel` (NCCL on CUDA, Gloo on CPU): every process
    draws the same shuffle, takes its share of each global batch, and the gradients are averaged
    with weights that make the update the one a single process makes on the whole batch.
    Validation and the history are reduced across processes; only rank 0 writes checkpoints and
    shows progress. ``precision="bf16"`` computes the loss under bfloat16 autocast; ``compile=True``
    runs the loss through :func:`torch.compile`. Both are off in the book profile.

    ``step(model, batch)``, if given, replaces the default update (``loss`` → backward → Adam step)
    on each training batch and returns the batch's loss; it owns its optimisers (a GAN's two
    players). If it has ``state_dict``/``load_state_dict`` (as :class:`genlib.gan.AdversarialStep`),
    the checkpoint holds that state too, and a resumed run continues it. It runs in a single process only.

    ``loss`` and ``step`` keep extra series (a GAN's two losses, a VAE's two terms) with
    :func:`record`; they land in ``history.log``.
    """
    _check_settings(epochs, batch_size, lr, weight_decay, patience, precision)
    guard = longrun.active()  # a command-line run (genlib.train_family): resumable, stops cleanly
    if guard is not None:
        if guard.interrupted:  # an earlier phase was interrupted: the later ones do not start
            return History(interrupted=True)
        if checkpoint is None:
            checkpoint, resume = guard.checkpoint_for_next_fit(), True
    rank, world = distributed.init(device)
    if step is not None and world > 1:
        raise ValueError("a custom step= update runs in a single process; launch without torchrun")
    device = distributed.local_device(device, world)
    train = _as_tuple(train, "train")
    val = None if val is None else _as_tuple(val, "val")
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    trainer = _trainer(model, loss, device, world, compile)
    autocast = _autocast(device, precision)
    progress = progress and rank == 0
    checkpoint_writer = checkpoint if rank == 0 else None
    history, best_state = _resume(checkpoint, resume, model, optimizer, generator, step)
    start = history.epochs
    if patience is not None and history.best_epoch >= 0 and start - 1 - history.best_epoch >= patience:
        history.stopped_early, start = True, epochs  # it had already stopped early: nothing to add
    bar = _progress(range(start, epochs), progress)
    running = _RUNNING.set(history)  # genlib.train.record(...) appends to this run's history.log
    try:
        for epoch in bar:
            tic = time.perf_counter()
            train_loss = _train_epoch(trainer, optimizer, train, batch_size, device, generator, epoch, autocast,
                                      None if step is None else lambda batch: step(model, batch))
            val_loss = None if val is None else evaluate(model, loss, val, device=device)
            best_state = _record(history, epoch, train_loss, val_loss, time.perf_counter() - tic, model, best_state)
            if checkpoint_writer is not None:
                save_checkpoint(checkpoint_writer, model, optimizer, history, best_state, generator, step)
            _describe(bar, history)
            if patience is not None and epoch - history.best_epoch >= patience:
                history.stopped_early = True
                break
    except KeyboardInterrupt:
        history.interrupted = True
        if guard is not None:
            guard.interrupted = True
    finally:
        _RUNNING.reset(running)
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def _check_settings(epochs, batch_size, lr, weight_decay, patience, precision) -> None:
    check_epochs(epochs)
    checks.positive_int("batch_size", batch_size)
    checks.positive("lr", lr)
    checks.non_negative("weight_decay", weight_decay)
    if patience is not None:
        checks.non_negative_int("patience", patience)
    checks.choice("precision", precision, PRECISIONS)


def _resume(checkpoint, resume: bool, model: nn.Module, optimizer, generator, step=None) -> tuple[History, dict | None]:
    """The history and best weights to continue from: the checkpoint's (loaded into ``model``,
    ``optimizer``, ``step`` and the random states) when ``resume`` and it exists, else a fresh start."""
    if checkpoint is not None and resume and Path(checkpoint).exists():
        return load_checkpoint(checkpoint, model, optimizer, generator, step)
    return History(), None


def _record(history: History, epoch: int, train_loss: float, val_loss: float | None, seconds: float,
            model: nn.Module, best_state: dict | None) -> dict | None:
    """Append one finished epoch to ``history``; returns the best weights so far (a copy of the model's
    when this epoch is the best). The epoch counts only once both losses are known: an interrupt in
    between leaves no half-record."""
    history.train.append(train_loss)
    if val_loss is not None:
        history.val.append(val_loss)
    history.seconds.append(seconds)
    curve = history.val or history.train
    if history.best_epoch < 0 or curve[-1] < curve[history.best_epoch]:
        history.best_epoch, best_state = epoch, _copy_state(model)
    return best_state


def _as_tuple(data: torch.Tensor | Batch, name: str = "data") -> tuple[torch.Tensor, ...]:
    tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TypeError(f"{name} must be a tensor or a tuple of tensors")
    if len({len(t) for t in tensors}) != 1:
        raise ValueError(f"tensors in the {name} set differ in length: {[len(t) for t in tensors]}")
    if len(tensors[0]) == 0:
        raise ValueError(f"the {name} set is empty")
    return tensors


def _train_epoch(trainer, optimizer, train, batch_size, device, generator, epoch, autocast,
                 update=None) -> float:
    """One pass over ``train`` in shuffled global batches; the mean training loss over all rows.
    ``update(batch)``, if given, makes the step itself and returns the batch's loss."""
    rank, world = distributed.rank_and_world()
    trainer.train()
    total = torch.zeros(2, dtype=torch.float64)  # (sum of losses, count) over all processes
    for step, batch in enumerate(batches(train, batch_size, shuffle=True, generator=generator)):
        mine = distributed.share(batch, rank, world)  # this process's rows of the global batch
        n_mine, n_all = len(mine[0]), len(batch[0])
        if n_mine == 0:  # fewer rows than processes: take part with a zero-weight row
            mine, n_mine = tuple(t[:1] for t in batch), 0
        mine = tuple(t.to(device) for t in mine)
        with autocast:
            value = trainer(*mine) if update is None else update(mine)  # mean loss over this process's rows
        # DDP averages gradients over the W processes; weighting each mean by W n_mine / n_all makes
        # that average the gradient of the mean loss over the whole global batch.
        weighted = value * (world * n_mine / n_all)
        step_total = distributed.all_sum(torch.tensor([float(value.detach()) * n_mine, n_mine], dtype=torch.float64))
        if not torch.isfinite(step_total[0]):
            raise NonFiniteLossError(
                f"loss is {float(step_total[0] / step_total[1])} at epoch {epoch + 1}, step {step + 1}; "
                f"try a smaller learning rate or check the data for NaNs"
            )
        if update is None:
            optimizer.zero_grad(set_to_none=True)
            weighted.backward()
            optimizer.step()
        total += step_total
    return float(total[0] / total[1])


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


# ----------------------------------------------------------------------------- the update

PRECISIONS = ("fp32", "bf16")


class _LossModule(nn.Module):
    """``loss(model, batch)`` as a module, so DistributedDataParallel and torch.compile can wrap it."""

    def __init__(self, model: nn.Module, loss: LossFn):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        return self.loss(self.model, batch)


def _trainer(model: nn.Module, loss: LossFn, device: torch.device, world: int, compile: bool) -> nn.Module:
    trainer = distributed.wrap(_LossModule(model, loss), device, world)
    return torch.compile(trainer) if compile else trainer


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    history: History, best_state: dict[str, torch.Tensor] | None = None,
                    generator: torch.Generator | None = None, step=None) -> None:
    """Write weights, optimiser state, history, the best weights so far, a custom ``step``'s state (if it
    has ``state_dict``) and every random state the next epoch will use (``generator``'s, torch's,
    NumPy's, Python's) to ``path``, atomically (temp file + rename), so that a resumed run continues
    exactly as an uninterrupted one."""
    state = {"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "history": asdict(history), "best_model": best_state, "rng": _rng_state(generator),
             "step": step.state_dict() if hasattr(step, "state_dict") else None}
    save_atomically(state, path)


def save_atomically(state: dict, path: str | Path) -> None:
    """``torch.save(state, path)`` through a temporary file in the same folder and a rename, so that
    ``path`` holds either the old file or the whole new one, never a partial write."""
    try:
        atomic_write(path, lambda out: torch.save(state, out))
    except RuntimeError as err:
        if any(s in str(err) for s in ("unexpected pos", "PytorchStreamWriter", "file write failed")):
            raise longrun.disk_full_error(Path(path), err) from None
        raise


CHECKPOINT_FORMAT = "genlib.train/2"


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    generator: torch.Generator | None = None, step=None) -> tuple[History, dict | None]:
    """Load a checkpoint (``weights_only=True``) into ``model`` (and ``optimizer``, and a custom ``step``
    that has ``load_state_dict``), restore the random states, and return its history and best weights.
    A file that is not a genlib checkpoint, or one written for a model of another shape, raises a
    one-line :class:`CheckpointError`."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        fields = state["format"], state["model"], state["history"]
    except Exception:  # noqa: BLE001 - empty, truncated, pickled objects, another program's file
        raise CheckpointError(f"{path} is not a genlib checkpoint (empty, corrupt or written by "
                              f"something else); delete it or point checkpoint= at another file") from None
    if fields[0] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} was written by another version of genlib.train ({short(fields[0])}); "
                              f"delete it to start over")
    if hasattr(step, "load_state_dict") and state.get("step") is None:
        raise CheckpointError(f"{path} holds no state for this run's custom step (a run without one wrote it); "
                              f"delete it to start over")
    try:
        model.load_state_dict(state["model"])
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
        if hasattr(step, "load_state_dict"):
            step.load_state_dict(state["step"])
    except (RuntimeError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()
        detail = next((line.strip() for line in first if "size mismatch" in line or "Missing" in line), first[0])
        raise CheckpointError(f"{path} holds weights for a different model ({short(detail, 120)}); "
                              f"delete it or use the model it was written for") from None
    _set_rng_state(state.get("rng"), generator)
    history = History(**state["history"])
    history.interrupted = history.stopped_early = False
    return history, state.get("best_model")


def _rng_state(generator: torch.Generator | None) -> dict:
    np_state = np.random.get_state(legacy=False)
    return {
        "generator": None if generator is None else generator.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": np_state["state"]["pos"], "has_gauss": np_state["has_gauss"],
                  "gauss": np_state["gauss"]},
        "python": random.getstate(),
    }


def _set_rng_state(state: dict | None, generator: torch.Generator | None) -> None:
    if not state:
        return
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "has_gauss": np_state["has_gauss"],
                         "gauss": np_state["gauss"],
                         "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]}})
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
