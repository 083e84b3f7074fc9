"""Interactive figures that work both with a kernel and in the static book.

A chapter writes one drawing function ``draw(fig, value)`` and gets two views of it:

* :func:`live` — an ipywidgets slider that redraws on every move (JupyterLab, with a kernel);
* :func:`animate` — the same drawing precomputed at a few values as a self-contained HTML
  animation (play, step, scrub) that stays interactive in the rendered book, where no kernel runs.

The book never shows a ``live`` widget: without a kernel its controls would move and redraw nothing.
``scripts/build_book.py`` replaces every widget view by a note pointing at the ``animate`` form, which
the cell right after a ``live`` cell must show (``tests/test_widget_lint.py`` enforces it).
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
    html = stable_ids(offline_controls(animation.to_jshtml(default_mode="once")))
    plt.close(fig)
    return HTML(html)


# matplotlib's animation controls are font-awesome icons from a CDN stylesheet: the book must make
# no request off the machine, so each icon becomes a plain text symbol (every button keeps its title).
_ICONS = {
    "fa fa-minus": "\u2212",                         # decrease speed: −
    "fa fa-fast-backward": "|\u25c0\u25c0",          # first frame: |◀◀
    "fa fa-step-backward": "|\u25c0",                # previous frame: |◀
    "fa fa-play fa-flip-horizontal": "\u25c0",       # play backwards: ◀
    "fa fa-pause": "\u275a\u275a",                   # pause: ❚❚
    "fa fa-play": "\u25b6",                          # play: ▶
    "fa fa-step-forward": "\u25b6|",                 # next frame: ▶|
    "fa fa-fast-forward": "\u25b6\u25b6|",           # last frame: ▶▶|
    "fa fa-plus": "+",                               # increase speed
}


def offline_controls(html: str) -> str:
    """``to_jshtml`` output with no external stylesheet: the font-awesome link is dropped and each
    icon is replaced by a text symbol, so the animation works offline, in JupyterLab and in the book."""
    html = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">\s*', "", html)

    def icon(match):
        return f'<span aria-hidden="true">{_ICONS[match.group(1)]}</span>'

    html = re.sub(r'<i class="(fa [^"]+)"></i>', icon, html)
    if re.search(r'(?:href|src)="(?:https?:)?//|class="fa ', html):
        raise RuntimeError("animate: the animation HTML still refers to an external resource or icon font")
    return html


def stable_ids(html: str) -> str:
    """Replace matplotlib's random animation id (a uuid4) by a hash of the animation itself, so
    that re-running a chapter with the same frames gives byte-identical output."""
    ids = set(re.findall(r"_anim_img([0-9a-f]{32})", html))
    for old in ids:
        new = hashlib.sha1(html.replace(old, "").encode()).hexdigest()[:32]
        html = html.replace(old, new)
    return html


# Every ``live`` widget made in this kernel, in order: the live checks (tests/test_jupyterlab.py)
# find a chapter's widgets here, move each control and confirm the figure it drives changes.
LIVE: list = []


def live(draw: Draw, figsize=(6, 3), **controls):
    """An ipywidgets ``interactive``: each control (a widget or an ``interact`` abbreviation such as
    ``(0, 10, 1)`` or a list of options) is passed to ``draw(fig, **values)`` by name.

    Show its static form (:func:`animate`) in the next cell: the book replaces this widget by a note."""
    import ipywidgets

    def redraw(**values):
        fig = plt.figure(figsize=figsize)
        draw(fig, **values)
        plt.show()

    box = ipywidgets.interactive(redraw, **controls)
    LIVE.append(box)
    return box
