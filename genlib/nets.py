"""Networks shared by the families: one MLP builder."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn


def mlp(n_in: int, n_out: int, hidden: int, layers: int, dropout: float = 0.0, *,
        act: Callable[[], nn.Module] = nn.GELU, zero_last: bool = False) -> nn.Sequential:
    """(Linear -> ``act`` (-> Dropout)) × ``layers`` hidden layers of width ``hidden``, then a Linear to
    ``n_out``; ``zero_last`` starts the output layer at zero (a coupling that begins as the identity).
    The layers are made in this order, so a seed gives the same initial weights wherever it is used."""
    sizes = [n_in] + [hidden] * layers
    blocks: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        blocks += [nn.Linear(a, b), act()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
    last = nn.Linear(sizes[-1], n_out)
    if zero_last:
        nn.init.zeros_(last.weight), nn.init.zeros_(last.bias)
    return nn.Sequential(*blocks, last)
