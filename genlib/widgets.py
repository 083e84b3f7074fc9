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


# Every ``live`` widget made in this kernel, in order: :func:`check_live` (the last cell of each chapter
# with a live widget) finds them here, moves each control and confirms the figure it drives changes.
LIVE: list = []

# How fast a live widget must answer, per chapter: the median and the worst redraw after a control moves.
MEDIAN_LIMIT_S = 0.3
WORST_LIMIT_S = 1.0


def live(draw: Draw, figsize=(6, 3), **controls):
    """An ipywidgets ``interactive``: each control (a widget or an ``interact`` abbreviation such as
    ``(0, 10, 1)`` or a list of options) is passed to ``draw(fig, **values)`` by name.

    Show its static form (:func:`animate`) in the next cell: the book replaces this widget by a note."""
    import ipywidgets

    drawn: list = [None]  # the figure of the latest redraw (None if it raised): what check_live compares

    def redraw(**values):
        drawn[0] = None
        fig = plt.figure(figsize=figsize)
        draw(fig, **values)
        plt.show()
        drawn[0] = fig

    box = ipywidgets.interactive(redraw, **controls)
    box.genlib_drawn = drawn
    LIVE.append(box)
    return box


def _alternatives(control) -> list:
    """Up to three other values of a control: the far end, the near end and the middle of its range."""
    value = control.value
    if getattr(control, "options", None):
        options = [o[1] if isinstance(o, tuple) else o for o in control.options]
        others = [o for o in options if o is not value and o != value]
        picks = [others[-1], others[0], others[len(others) // 2]] if others else []
    elif isinstance(value, bool):
        picks = [not value]
    elif hasattr(control, "max") and hasattr(control, "min"):
        middle = type(value)((control.min + control.max) / 2)
        picks = [control.max, control.min, middle]
    else:
        picks = []
    unique = []
    for v in picks:
        if v is not value and v != value and not any(v is u or v == u for u in unique):
            unique.append(v)
    return unique


def _fingerprint(fig) -> str | None:
    if fig is None:
        return None
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the shown figure is closed: render it again, off screen
    canvas.draw()
    return hashlib.sha1(np.asarray(canvas.buffer_rgba()).tobytes()).hexdigest()


def _timed_redraw(box, set_value=None) -> tuple[float, float, str | None]:
    """The kernel's CPU seconds and the wall seconds from a control's move (or ``update()``) to the figure
    shown, and the figure's fingerprint."""
    import time

    cpu, wall = time.process_time(), time.perf_counter()
    if set_value is None:
        box.update()
    else:
        set_value()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, _fingerprint(box.genlib_drawn[0])


def probe_live(boxes=None) -> dict:
    """Move every control of every live widget (``LIVE``) to other values and back; time each redraw.

    Returns ``{"controls": [(widget, name, verdict)], "times": [(cpu_s, widget, name)], "wall": [wall_s]}``;
    a verdict is ``"changes the figure"`` or what is wrong. Each control starts from the chapter's state.

    A redraw's time is the kernel's CPU time (the drawing runs in one thread: on an unloaded machine it is
    the wall time a reader waits; unlike the wall time it does not grow when other jobs share the CPU,
    so the check holds on a busy test machine); the wall times are returned too."""
    from IPython import get_ipython
    from IPython.core.displaypub import CapturingDisplayPublisher

    class Quiet(CapturingDisplayPublisher):  # keeps what is displayed; ipywidgets' Output sets a parent
        def set_parent(self, parent):
            pass

        def clear_output(self, wait=False):  # the base class writes terminal escapes to stdout
            self.outputs.clear()

    boxes = LIVE if boxes is None else boxes
    shell = get_ipython()
    if shell is None:
        return _probe(boxes)
    # The redraws' figures are made and encoded as usual, but not sent: the cell that runs the check
    # shows only its verdicts (nbval compares them), and the widgets' views keep their figures.
    shown, shell.display_pub = shell.display_pub, Quiet()
    try:
        return _probe(boxes)
    finally:
        shell.display_pub = shown


def _probe(boxes) -> dict:
    controls, times, walls = [], [], []
    for i, box in enumerate(boxes, 1):
        if not box.kwargs_widgets:
            controls.append((i, "-", "has no control"))
        for j, control in enumerate(box.kwargs_widgets):
            name = getattr(control, "description", "") or f"control {j + 1}"
            seconds, wall, base = _timed_redraw(box)
            times.append((seconds, i, name))
            walls.append(wall)
            if base is None:
                controls.append((i, name, "draws no figure (the drawing raised an error)"))
                continue
            others = _alternatives(control)
            verdict = "has no other value to try" if not others else "does not change the figure"
            old = control.value
            for other in others:
                seconds, wall, moved = _timed_redraw(box, lambda: setattr(control, "value", other))
                times.append((seconds, i, name))
                walls.append(wall)
                seconds, wall, _ = _timed_redraw(box, lambda: setattr(control, "value", old))
                times.append((seconds, i, name))
                walls.append(wall)
                if moved is None:
                    verdict = f"draws no figure at {other!r} (the drawing raised an error)"
                    break
                if moved != base:
                    verdict = "changes the figure"
            controls.append((i, name, verdict))
    return {"controls": controls, "times": times, "wall": walls}


def check_live(chapter: str = "") -> None:
    """The live check, the last cell of every chapter with a live widget (hidden in the book; nbval
    compares its output): moves every control of every live widget and prints, per control, whether the
    figure changes, then whether the chapter's redraw times are within the limits (median <=
    ``MEDIAN_LIMIT_S``, worst <= ``WORST_LIMIT_S``). The times themselves are printed on a line that
    ``tests/nbval_sanitize.cfg`` masks, so the comparison stays stable; with ``GENLIB_LIVE_TIMES`` set
    to a folder, they are also written there as ``<chapter>.json`` (the test run prints a table)."""
    import json
    import os
    import resource
    import statistics

    result = probe_live()
    print(f"live widgets: {len(LIVE)}")
    for i, name, verdict in result["controls"]:
        print(f"widget {i}, {name!r}: {verdict}")
    seconds = [t for t, _, _ in result["times"]]
    if not seconds:
        return
    median, worst = statistics.median(seconds), max(seconds)
    slow_i, slow_name = max(result["times"])[1:]
    print(f"redraw median <= {MEDIAN_LIMIT_S:g} s: {'yes' if median <= MEDIAN_LIMIT_S else 'NO'}; "
          f"worst <= {WORST_LIMIT_S:g} s: {'yes' if worst <= WORST_LIMIT_S else 'NO'}")
    walls = result["wall"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    kernel_cpu = usage.ru_utime + usage.ru_stime  # the whole chapter so far: what a test run of it costs
    print(f"redraw times: median {median:.3f} s, worst {worst:.3f} s (widget {slow_i}, {slow_name!r}) "
          f"over {len(seconds)} redraws, kernel CPU; wall: median {statistics.median(walls):.3f} s, "
          f"worst {max(walls):.3f} s; the chapter's kernel used {kernel_cpu:.1f} s of CPU")
    folder = os.environ.get("GENLIB_LIVE_TIMES")
    if folder and chapter:
        os.makedirs(folder, exist_ok=True)
        per_control: dict = {}
        for t, i, name in result["times"]:
            per_control.setdefault(f"widget {i} {name}", []).append(t)
        with open(os.path.join(folder, f"{chapter}.json"), "w") as f:
            json.dump({"chapter": chapter, "median": median, "worst": worst, "redraws": len(seconds),
                       "wall_median": statistics.median(walls), "wall_worst": max(walls), "kernel_cpu": kernel_cpu,
                       "controls": {k: {"median": statistics.median(v), "worst": max(v)}
                                    for k, v in per_control.items()}}, f, indent=1)


def report(folder) -> str:
    """The table of the redraw times that :func:`check_live` wrote into ``folder`` (one row a chapter)."""
    import json
    from pathlib import Path

    rows = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    lines = [f"live widget redraw times, kernel CPU (limits: median <= {MEDIAN_LIMIT_S:g} s, "
             f"worst <= {WORST_LIMIT_S:g} s)"]
    for row in rows:
        slowest = max(row["controls"].items(), key=lambda kv: kv[1]["worst"])
        ok = row["median"] <= MEDIAN_LIMIT_S and row["worst"] <= WORST_LIMIT_S
        lines.append(f"  {row['chapter']:<24} median {row['median']:.3f} s  worst {row['worst']:.3f} s  "
                     f"(wall {row['wall_median']:.3f} / {row['wall_worst']:.3f} s; {row['redraws']} redraws; "
                     f"slowest: {slowest[0]})  {'ok' if ok else 'OVER THE LIMIT'}"
                     + (f"  [chapter kernel CPU {row['kernel_cpu']:.0f} s]" if "kernel_cpu" in row else ""))
    return "\n".join(lines)


if __name__ == "__main__":  # python -m genlib.widgets report FOLDER
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "report":
        print(report(sys.argv[2]))
    else:
        sys.exit("usage: python -m genlib.widgets report FOLDER")
