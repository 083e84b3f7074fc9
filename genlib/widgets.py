"""Interactive figures that work both with a kernel and in the static book.

A chapter writes one drawing function ``draw(fig, value)`` and gets two views of it:

* :func:`live` — an ipywidgets slider that redraws on every move (JupyterLab, with a kernel);
* :func:`animate` — the same drawing precomputed at a few values as a self-contained HTML
  animation (play, step, scrub) that stays interactive in the rendered book, where no kernel runs.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation

Draw = Callable[..., None]


def animate(draw: Draw, values: Sequence, figsize=(6, 3), interval: int = 500, dpi: int = 72):
    """An HTML animation with one frame per value: frame ``i`` shows ``draw(fig, values[i])``."""
    from IPython.display import HTML

    fig = plt.figure(figsize=figsize, dpi=dpi)

    def frame(i):
        fig.clear()
        draw(fig, values[i])

    animation = FuncAnimation(fig, frame, frames=len(values), interval=interval)
    html = stable_ids(animation.to_jshtml(default_mode="once"))
    plt.close(fig)
    return HTML(html)


def stable_ids(html: str) -> str:
    """Replace matplotlib's random animation id (a uuid4) by a hash of the animation itself, so
    that re-running a chapter with the same frames gives byte-identical output."""
    ids = set(re.findall(r"_anim_img([0-9a-f]{32})", html))
    for old in ids:
        new = hashlib.sha1(html.replace(old, "").encode()).hexdigest()[:32]
        html = html.replace(old, new)
    return html


def live(draw: Draw, figsize=(6, 3), **controls):
    """An ipywidgets ``interactive``: each control (a widget or an ``interact`` abbreviation such as
    ``(0, 10, 1)`` or a list of options) is passed to ``draw(fig, **values)`` by name."""
    import ipywidgets

    def redraw(**values):
        fig = plt.figure(figsize=figsize)
        draw(fig, **values)
        plt.show()

    return ipywidgets.interactive(redraw, **controls)
