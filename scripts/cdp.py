"""A small headless-Chromium driver over the DevTools protocol (websocket-client, no browser download).

    with Chromium() as browser:
        page = browser.page()              # a new tab, with Page/Runtime/Network/Log events on
        page.goto("http://127.0.0.1:8000/index.html")
        page.evaluate("document.title")

Used by ``scripts/browser_check.py`` (the rendered book) and ``tests/test_jupyterlab.py`` (a live
JupyterLab). Chromium is Debian's ``/usr/bin/chromium`` (``scripts/setup.sh`` installs it).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--no-default-browser-check",
         "--disable-features=Translate,MediaRouter,OptimizationHints", "--remote-debugging-port=0",
         "--remote-debugging-address=127.0.0.1"]


def find_chromium() -> str | None:
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in CHROMIUM_CANDIDATES:
        if path := shutil.which(name):
            return path
    return None


class CDPError(RuntimeError):
    pass


class Page:
    """One tab: ``send`` a DevTools command, collect its events in ``events``."""

    def __init__(self, ws_url: str, timeout: float = 60):
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True,
                                              enable_multithread=False)
        self.timeout = timeout
        self.next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")

    def _recv(self, timeout: float) -> dict | None:
        self.ws.settimeout(max(timeout, 0.01))
        try:
            return json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None

    def send(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            message = self._recv(deadline - time.monotonic())
            if message is None:
                continue
            if message.get("id") == ident:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"no answer to {method} within {timeout or self.timeout} s")

    def pump(self, seconds: float) -> None:
        """Read events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = self._recv(left)
            if message and "method" in message:
                self.events.append(message)

    def wait_event(self, name: str, timeout: float | None = None, since: int = 0) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = since
        while True:
            for event in self.events[seen:]:
                if event["method"] == name:
                    return event
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {name} within {timeout or self.timeout} s")
            message = self._recv(left)
            if message and "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str, timeout: float | None = None):
        """The value of a JavaScript expression (promises are awaited); exceptions raise CDPError."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"JavaScript error: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30, interval: float = 0.2):
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            self.pump(interval)

    def goto(self, url: str, timeout: float | None = None) -> None:
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", timeout=timeout)

    def screenshot(self, path: Path, max_height: int = 12000) -> None:
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height),
                "scale": 1}
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": clip}, timeout=120)
        Path(path).write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - closing a dead socket
            pass


class Chromium:
    """Headless Chromium with a fresh profile, on loopback only (every other host name fails to
    resolve, so no request can leave the machine even if a page asks for one)."""

    def __init__(self, width: int = 1400, height: int = 1000, binary: str | None = None):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise FileNotFoundError("no Chromium found (scripts/setup.sh installs Debian's chromium)")
        self.size = (width, height)
        self.process = None
        self.profile = None

    def __enter__(self) -> "Chromium":
        self.profile = tempfile.mkdtemp(prefix="genlib-chromium-")
        command = [self.binary, *FLAGS, f"--user-data-dir={self.profile}",
                   f"--window-size={self.size[0]},{self.size[1]}",
                   "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
                   "about:blank"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])
        return self

    def page(self) -> Page:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank",
                                         method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            target = json.load(response)
        page = Page(target["webSocketDebuggerUrl"])
        page.send("Emulation.setDeviceMetricsOverride", {"width": self.size[0], "height": self.size[1],
                                                         "deviceScaleFactor": 1, "mobile": False})
        return page

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
