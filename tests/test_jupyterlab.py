"""The notebooks as people run them: JupyterLab in a browser.

``test_jupyterlab_runs_a_chapter_and_its_slider_redraws``: JupyterLab on loopback with a token, in
headless Chromium: open the smallest chapter that has a live widget, run all its cells, move a slider
with the keyboard as a reader would, and see the figure change.

Every other live widget is checked where its chapter already runs, so no chapter executes twice: the
last cell of each chapter with a live widget, ``widgets.check_live(...)``, moves every control of every
widget through the kernel, and prints whether each changes its figure and whether the redraw times are
within the limits; nbval compares that output with the committed notebook's (``tests/test_widget_lint.py``
checks the cell is there and that its committed output is a pass).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from cdp import Chromium, find_chromium  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
# Slow (a chapter runs in JupyterLab): the quick loop `pytest tests -k "not book_build"` leaves it out.
pytestmark = pytest.mark.book_build
CELL_TIMEOUT = 600


def has_live_widget(notebook: Path) -> bool:
    nb = nbformat.read(notebook, as_version=4)
    return any("widgets.live(" in c.source for c in nb.cells if c.cell_type == "code")


def kernel_env() -> dict:
    env = dict(os.environ)
    env.update(OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
               PYDEVD_DISABLE_FILE_VALIDATION="1", MPLBACKEND="module://matplotlib_inline.backend_inline",
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]))
    return env


# ---- JupyterLab in a browser -------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _smallest_live_chapter() -> Path:
    chosen = os.environ.get("GENLIB_LAB_CHAPTER")
    if chosen:
        return next(p for p in CHAPTERS if p.stem.startswith(chosen))
    return next(p for p in CHAPTERS if has_live_widget(p))  # chapters are in reading order; the first is small


LAB_STATE = r"""
(() => {
  const app = window.jupyterapp;  // --LabApp.expose_app_in_browser
  // a headless window has no focus, so shell.currentWidget stays null: find the notebook's panel
  const panel = app && Array.from(app.shell.widgets("main")).find(w => w.content && w.sessionContext);
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === "code");
  const errors = [];
  cells.forEach((c, i) => c.model.outputs.toJSON().forEach(o => {
    if (o.output_type === "error") errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
  }));
  return {status: kernel ? kernel.status : "none", cells: cells.length,
          executed: cells.filter(c => c.model.executionCount !== null && c.model.sharedModel.source.trim()).length,
          nonEmpty: cells.filter(c => c.model.sharedModel.source.trim()).length,
          pending: panel.content.node.querySelectorAll(".jp-InputArea-prompt").length &&
                   Array.from(panel.content.node.querySelectorAll(".jp-InputArea-prompt"))
                        .filter(p => p.textContent.includes("*")).length,
          errors, sliders: panel.content.node.querySelectorAll(".widget-interact .widget-slider").length};
})()
"""

SLIDER_STATE = r"""
(() => {
  const box = document.querySelector(".jp-Notebook .widget-interact");
  if (!box) return null;
  const slider = box.querySelector(".widget-slider");
  const img = box.querySelector(".jp-OutputArea-output img, .widget-output img");
  const readout = slider && slider.querySelector(".widget-readout");
  return {img: img ? img.src.slice(-200) + img.src.length : null,
          readout: readout ? (readout.value || readout.textContent) : null,
          handle: !!(slider && slider.querySelector(".noUi-handle"))};
})()
"""


@pytest.mark.skipif(find_chromium() is None and os.environ.get("GENLIB_SKIP_BROWSER") == "1",
                    reason="no Chromium and GENLIB_SKIP_BROWSER=1")
def test_jupyterlab_runs_a_chapter_and_its_slider_redraws(tmp_path):
    chapter = _smallest_live_chapter()
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(chapter, work / chapter.name)  # JupyterLab saves what it runs: never the committed file
    token, port = secrets.token_hex(16), _free_port()
    env = kernel_env()
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--LabApp.extension_manager=readonly", "--allow-root",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # the server answers only with the token
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5).read()
                break
            except OSError:
                if lab.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        with pytest.raises(urllib.error.HTTPError):  # and refuses a request without it
            urllib.request.urlopen(f"{base}/api/contents", timeout=10)
        with Chromium(width=1400, height=1000) as browser:
            page = browser.page()
            page.goto(f"{base}/lab/tree/{chapter.name}?token={token}", timeout=120)
            page.wait_for("(() => { const s = " + LAB_STATE + "; return s && s.status === 'idle' && s.cells; })()",
                          timeout=180)
            page.evaluate("(() => { const panel = Array.from(jupyterapp.shell.widgets('main'))"
                          ".find(w => w.content && w.sessionContext); jupyterapp.shell.activateById(panel.id);"
                          " return true; })()")
            page.pump(1)
            page.evaluate("jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
            # no cell counts as run until the kernel runs it now
            page.evaluate("Array.from(jupyterapp.shell.widgets('main')).find(w => w.content && w.sessionContext)"
                          ".content.widgets.forEach(c => { if (c.model.type === 'code') c.model.executionCount = null; })")
            assert page.evaluate(LAB_STATE)["executed"] == 0
            page.evaluate("jupyterapp.commands.execute('notebook:run-all-cells')")
            state = page.wait_for("(() => { const s = " + LAB_STATE + "; return s && s.status === 'idle' && "
                                  "!s.pending && s.executed === s.nonEmpty ? s : null; })()",
                                  timeout=CELL_TIMEOUT, interval=1)
            assert state["errors"] == [], state["errors"]
            before = page.wait_for(SLIDER_STATE.replace("return {img", "if (!box.querySelector('img')) return null;"
                                                                       " return {img"), timeout=60)
            assert before["handle"], "the live widget has no slider"
            page.evaluate("document.querySelector('.jp-Notebook .widget-interact .noUi-handle').focus()")
            for key in ("ArrowRight", "ArrowRight"):
                for kind in ("keyDown", "keyUp"):
                    page.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": key,
                                                         "windowsVirtualKeyCode": 39})
            after = page.wait_for(f"(() => {{ const s = {SLIDER_STATE}; return s && s.img && "
                                  f"s.img !== {json.dumps(before['img'])} ? s : null; }})()", timeout=120)
            assert after["readout"] != before["readout"], "the slider's value did not change"
            shot = ROOT / "_build" / "browser-check"
            shot.mkdir(parents=True, exist_ok=True)
            page.screenshot(shot / f"jupyterlab__{chapter.stem}.png", max_height=3000)
            page.close()
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            lab.kill()
