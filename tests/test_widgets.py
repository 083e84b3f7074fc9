import matplotlib

matplotlib.use("Agg")

from genlib import widgets  # noqa: E402


def draw(fig, value):
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, value])


def test_animate_has_one_frame_per_value_and_stable_ids():
    first, again = widgets.animate(draw, [1, 2, 3]).data, widgets.animate(draw, [1, 2, 3]).data
    assert first == again  # no random ids: re-running a chapter gives the same output
    assert first.count("frames[") >= 3
    assert widgets.animate(draw, [1, 2, 4]).data != first


def test_live_passes_controls_to_draw_by_name():
    seen = []

    def record(fig, k=0):
        seen.append(k)

    box = widgets.live(record, k=(1, 9, 2))
    assert box.children[0].description == "k"
    box.children[0].value = 7
    assert seen[-1] == 7


def test_animation_makes_no_request_off_the_machine():
    html = widgets.animate(draw, [1, 2]).data
    assert "font-awesome" not in html and 'class="fa ' not in html
    assert not __import__("re").search(r'(?:href|src)="(?:https?:)?//', html)
    assert html.count('title="Next frame"') == 1 and "\u25b6|" in html  # the controls keep a visible label


def test_live_widgets_are_registered_for_the_live_checks():
    box = widgets.live(lambda fig, k=0: None, k=(1, 9, 2))
    assert widgets.LIVE[-1] is box


def _checked(capsys, *boxes, limits=None):
    widgets.LIVE[:] = list(boxes)
    try:
        widgets.check_live()
    finally:
        widgets.LIVE.clear()
    return _lines(capsys)


def _lines(capsys):  # outside a kernel the widgets' Output clears the terminal: drop those lines
    return [line for line in capsys.readouterr().out.splitlines() if line.strip("\x1b[2K.")]


def test_check_live_reports_each_control_and_the_time_limits(capsys, tmp_path, monkeypatch):
    import json

    def draw2(fig, a=1, b="x", still=0):
        ax = fig.add_subplot(1, 1, 1)
        ax.plot([0, 1], [0, a + len(b)])

    box = widgets.live(draw2, a=(1, 9, 1), b=["x", "yy", "zzz"], still=(0, 3, 1))
    start = [c.value for c in box.kwargs_widgets]
    monkeypatch.setenv("GENLIB_LIVE_TIMES", str(tmp_path))
    widgets.LIVE[:] = [box]
    widgets.check_live("99_x")
    widgets.LIVE.clear()
    out = _lines(capsys)
    assert out[:4] == ["live widgets: 1", "widget 1, 'a': changes the figure", "widget 1, 'b': changes the figure",
                       "widget 1, 'still': does not change the figure"]
    assert out[4] == "redraw median <= 0.3 s: yes; worst <= 1 s: yes"
    assert out[5].startswith("redraw times: median ") and len(out) == 6
    saved = json.loads((tmp_path / "99_x.json").read_text())
    assert saved["redraws"] == 3 * (1 + 2 * 2) and set(saved["controls"]) == {"widget 1 a", "widget 1 b", "widget 1 still"}
    assert "99_x" in widgets.report(tmp_path) and "ok" in widgets.report(tmp_path)
    assert [c.value for c in box.kwargs_widgets] == start  # every control is put back


def test_check_live_fails_on_a_slow_or_broken_redraw(capsys, monkeypatch):
    import time

    def slow(fig, k=0):  # 0.35 s of CPU: the limit is on the kernel's CPU time
        start = time.process_time()
        while time.process_time() - start < 0.35:
            pass
        fig.add_subplot(1, 1, 1).plot([0, k])

    out = _checked(capsys, widgets.live(slow, k=(0, 2, 1)))
    assert out[1] == "widget 1, 'k': changes the figure"
    assert out[2] == "redraw median <= 0.3 s: NO; worst <= 1 s: yes"

    def broken(fig, k=0):
        if k == 2:  # the control starts at 1
            raise ValueError("boom")
        fig.add_subplot(1, 1, 1)

    out = _checked(capsys, widgets.live(broken, k=(0, 2, 1)))
    assert out[1].startswith("widget 1, 'k': draws no figure at 2")


def test_check_live_in_a_kernel_shows_only_its_verdicts(monkeypatch, tmp_path):
    """Through a real kernel (as nbval and papermill run it): the redraws' figures and clear_output
    messages are not sent, so the check's cell holds one stdout stream of verdicts. Its times go to a
    folder of its own, not to the test run's (``make test`` reports that one at the end)."""
    import nbclient
    import nbformat

    monkeypatch.setenv("GENLIB_LIVE_TIMES", str(tmp_path))  # the kernel inherits the environment

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from genlib import widgets\n"
                                  "def draw(fig, k=0):\n    fig.add_subplot(1, 1, 1).plot([0, k])\n"
                                  "widgets.live(draw, k=(0, 4, 1))"),
        nbformat.v4.new_code_cell('widgets.check_live("99_x")')])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(nb, timeout=120).execute()
    outputs = nb.cells[-1].outputs
    assert [o.output_type for o in outputs] == ["stream"]
    assert outputs[0].text.startswith("live widgets: 1\nwidget 1, 'k': changes the figure\nredraw median")
    assert [p.name for p in tmp_path.iterdir()] == ["99_x.json"]
