"""Chapter 8's training recipe: Adam, then a cool-down at a tenth of the learning rate."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


# ----------------------------------------------------------------------------- training


def batch_loss(model: nn.Module, batch) -> torch.Tensor:
    """``model.loss`` on a batch tuple ``(x,)`` or ``(x, y)`` (labels, for a conditional model): the loss
    that :func:`genlib.train.fit` takes."""
    return model.loss(batch[0], batch[1] if len(batch) > 1 else None)


@dataclass(frozen=True)
class TrainConfig:
    """How Chapter 8 trains its image models: Adam at ``lr`` for ``epochs`` passes, then a cool-down of
    max(1, ⌊``cooldown`` · epochs⌋) more passes at ``lr`` · ``cooldown_lr``."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    cooldown: float = 0.25
    cooldown_lr: float = 0.1

    @property
    def cooldown_epochs(self) -> int:
        return max(1, int(self.epochs * self.cooldown))


def fit_with_cooldown(model: nn.Module, train, val=None, settings: TrainConfig = TrainConfig(),
                      generator: torch.Generator | None = None, **options):
    """Train with :func:`genlib.train.fit` in the two phases of ``settings``; ``options`` (device,
    progress, precision, compile) go to both. ``train`` is x or (x, y) (labels for a conditional model).
    If the first phase is interrupted (KeyboardInterrupt), the cool-down does not run. Returns one
    :class:`~genlib.train.History` of all epochs."""
    from genlib.train import History, fit

    first = fit(model, batch_loss, train, val, epochs=settings.epochs, batch_size=settings.batch_size,
                lr=settings.lr, generator=generator, **options)
    if first.interrupted:  # stopped by hand (a notebook's interrupt): no cool-down after a cut first phase
        second = History()
    else:
        second = fit(model, batch_loss, train, val, epochs=settings.cooldown_epochs, batch_size=settings.batch_size,
                     lr=settings.lr * settings.cooldown_lr, generator=generator, **options)
    joined = History(train=first.train + second.train, val=first.val + second.val,
                     seconds=first.seconds + second.seconds, interrupted=first.interrupted or second.interrupted)
    curve = joined.val or joined.train
    joined.best_epoch = min(range(len(curve)), key=curve.__getitem__) if curve else -1
    model.eval()
    return joined
