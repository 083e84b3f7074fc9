"""Check the rendered book as a reader meets it: every page in headless Chromium, offline.

    python scripts/browser_check.py _build/html [--screenshots _build/browser]

Serves the built book on loopback, opens every page at 1400 px and reports each problem a reader
would meet:

* raw TeX left after MathJax ran (``\\(``, ``\\frac``, ...) or a formula MathJax could not typeset;
* an image that did not load;
* a ``to_jshtml`` animation whose frame does not change when stepped;
* a widget snapshot (blank, or controls that look live with no kernel behind them);
* any console error or uncaught exception;
* any request that leaves the machine, and any request that fails (a 404);
* an internal link whose target file or anchor is missing;
* a display equation wider than its column;
* raw TeX in the search results' snippets.

Saves a screenshot of each page (``--screenshots``). Exit status 1 when a problem was found.
"""
from __future__ import annotations

import argparse
import functools
import html
import http.server
import re
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cdp import Chromium  # noqa: E402

SEARCH_TERMS = ("likelihood", "distribution")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

# Runs in each page after MathJax and the equation fitting are done; returns what Python checks.
PAGE_PROBE = r"""
(async () => {
  const out = {rawTex: [], mathErrors: [], images: [], animations: [], widgets: [], wideEquations: [],
               wideCode: [], links: [], title: document.title};
  const skip = "script, style, pre, code, textarea, mjx-container, .highlight, .cell_input, .headerlink";
  const tex = /\\[()\[\]]|\$\$|\\(frac|mathbb|mathcal|mathrm|mathbf|operatorname|sum|prod|int|log|exp|left|right|begin|end|alpha|beta|gamma|theta|mu|sigma|lambda|partial|nabla|cdot|text|hat|bar|tilde|mid|sim|leq?|geq?|in|top|mathop|qquad|quad)(?![a-zA-Z])/;
  const main = document.querySelector("main") || document.body;
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement && node.parentElement.closest(skip)) continue;
    const m = node.textContent.match(tex);
    if (m) {
      const i = node.textContent.indexOf(m[0]);
      out.rawTex.push(node.textContent.slice(Math.max(0, i - 40), i + 60).replace(/\s+/g, " "));
    }
  }
  document.querySelectorAll("mjx-merror, [data-mjx-error]").forEach(e => out.mathErrors.push(
      (e.getAttribute("data-mjx-error") || e.textContent || "").slice(0, 120)));
  const imgs = Array.from(document.images);
  imgs.forEach(img => { img.loading = "eager"; });
  await Promise.all(imgs.map(img => img.decode().catch(() => null)));
  imgs.forEach(img => {
    if (img.closest(".animation")) return;  // checked below, after the animation has drawn
    if (!img.complete || img.naturalWidth === 0)
      out.images.push((img.currentSrc || img.getAttribute("src") || "(no src)").slice(0, 120));
  });
  for (const anim of document.querySelectorAll("div.animation")) {
    const img = anim.querySelector("img");
    const next = anim.querySelector('button[title="Next frame"]');
    const first = img ? img.src : "";
    if (next) next.click();
    await new Promise(r => setTimeout(r, 50));
    const second = img ? img.src : "";
    if (img) await img.decode().catch(() => null);
    out.animations.push({id: img ? img.id : "(no img)", hasFirst: first.startsWith("data:image"),
                         steps: !!next && second !== first && second.startsWith("data:image"),
                         loaded: !!img && img.complete && img.naturalWidth > 0});
  }
  document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').forEach(s => {
    const area = s.parentElement;
    const shown = area && Array.from(area.children).some(c => c.tagName !== "SCRIPT" && c.offsetHeight > 0);
    out.widgets.push(shown ? "a widget snapshot with no kernel behind it" : "a blank widget snapshot");
  });
  document.querySelectorAll(".jupyter-widgets, .widget-interact, .widget-slider, .widget-dropdown").forEach(
      e => { if (!e.closest(".genlib-live-note")) out.widgets.push("widget controls: " + e.className.slice(0, 80)); });
  document.querySelectorAll('mjx-container[display="true"]').forEach(eq => {
    const column = eq.closest("div.math") || eq.parentElement;
    if (eq.scrollWidth > eq.clientWidth + 1 || (column && column.scrollWidth > column.clientWidth + 1))
      out.wideEquations.push(`${eq.scrollWidth}px in ${eq.clientWidth}px: ` +
          (eq.querySelector("mjx-assistive-mml") || eq).textContent.slice(0, 60));
  });
  // a code block whose text is wider than its box: a line is cut off at the column (behind a scrollbar);
  // collapsed (hide-input) cells count too: the reader who opens one sees the same column
  (document.querySelector("main") || document.body).querySelectorAll("div.highlight pre").forEach(pre => {
    if (pre.scrollWidth > pre.clientWidth + 1) {
      const blocks = Array.from(pre.querySelectorAll("span.genlib-line"), b => b.textContent);
      const lines = blocks.length ? blocks : pre.textContent.split("\n");
      const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
      out.wideCode.push(`${pre.scrollWidth}px in ${pre.clientWidth}px: ${longest.trim().slice(0, 60)}`);
    }
  });
  document.querySelectorAll("a[href]").forEach(a => out.links.push(a.href));
  return out;
})()
"""

SEARCH_PROBE = r"""
(() => {
  const results = document.querySelector("#search-results");
  const status = results && results.querySelector(".search-summary, p");
  const pending = document.querySelectorAll('p.context[data-genlib-math="pending"]').length;
  const items = results ? results.querySelectorAll("ul.search li").length : 0;
  const summaries = results ? results.querySelectorAll("p.context").length : 0;
  if (!status || pending || !/search finished|did not match/i.test(results.textContent)) return null;
  const clone = results.cloneNode(true);
  clone.querySelectorAll("mjx-container").forEach(m => m.remove());
  return {items, summaries, math: results.querySelectorAll("p.context mjx-container").length,
          text: clone.textContent};
})()
"""
RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\[a-zA-Z]{2,}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def pages_of(built: Path) -> list[Path]:
    skip = {"_static", "_sources", "_images"}
    return sorted(p for p in built.rglob("*.html") if not skip & set(p.relative_to(built).parts))


_ID = re.compile(r"""\s(?:id|name)\s*=\s*["']([^"']+)["']""")


@functools.lru_cache(maxsize=None)
def anchors(page: Path) -> frozenset[str]:
    return frozenset(html.unescape(a) for a in _ID.findall(page.read_text(errors="replace")))


def link_problems(links: list[str], base: str, built: Path) -> list[str]:
    problems = set()
    for link in links:
        parts = urllib.parse.urlsplit(link)
        if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
            continue  # a link off the book (binder, GitHub) is not a request; it is not followed
        if not link.startswith(base):
            problems.add(f"link outside the book's server: {link}")
            continue
        path = built / urllib.parse.unquote(parts.path.lstrip("/"))
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            problems.add(f"broken link (no file): {link[len(base):]}")
        elif parts.fragment and path.suffix == ".html" and urllib.parse.unquote(parts.fragment) not in anchors(path):
            problems.add(f"broken link (no anchor): {link[len(base):]}")
    return sorted(problems)


def network_problems(events: list[dict]) -> list[str]:
    problems = []
    requests = {}
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            requests[params["requestId"]] = url
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("data", "blob", "about", "file", "chrome", "devtools") and \
                    parts.hostname not in LOCAL_HOSTS:
                problems.append(f"request off the machine: {url[:160]}")
        elif method == "Network.responseReceived":
            status = params["response"]["status"]
            # /favicon.ico is the browser's own guess, asked by no page; a static host answers 404 too
            if status >= 400 and not params["response"]["url"].endswith("/favicon.ico"):
                problems.append(f"HTTP {status}: {params['response']['url'][:160]}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            url = requests.get(params["requestId"], "?")
            problems.append(f"failed to load ({params.get('errorText')}): {url[:160]}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            problems.append(f"uncaught exception: {text.splitlines()[0][:200]}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            problems.append(f"console error: {text[:200]}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            if entry.get("url", "").endswith("/favicon.ico"):
                continue
            problems.append(f"console error: {entry.get('text', '')[:160]} {entry.get('url', '')[:120]}")
    return list(dict.fromkeys(problems))


_REFRESH = re.compile(r"""<meta\s+http-equiv=["']Refresh["']\s+content=["']\d+;\s*url=([^"']+)["']""", re.I)


def redirect_target(page: Path) -> str | None:
    """The target of a page that is only a meta-refresh redirect (Jupyter Book's index.html), else None."""
    text = page.read_text(errors="replace")
    match = _REFRESH.search(text)
    return match.group(1) if match and len(text) < 1000 else None


def check_redirect(path: Path, target: str, base: str, built: Path) -> tuple[list[str], dict]:
    """A redirect page is not visited: the browser would leave it mid-check. Its target must exist."""
    link = urllib.parse.urljoin(base + path.relative_to(built).as_posix(), target)
    return link_problems([link], base, built), {"animations": 0, "links": 1, "title": f"→ {target}"}


def check_page(page, url: str, base: str, built: Path, shot: Path | None) -> tuple[list[str], dict]:
    page.goto(url)
    # MathJax typesets after the load event; genlib-book.js marks the page once equations are fitted
    page.wait_for("document.documentElement !== null && "
                  "document.documentElement.dataset.genlibEquationsFitted === '1'", timeout=60)
    page.evaluate("window.MathJax && MathJax.startup && MathJax.startup.promise ? "
                  "MathJax.startup.promise.then(() => true) : true")
    probe = page.evaluate(PAGE_PROBE, timeout=120)
    page.pump(0.3)  # late requests (fonts, lazy images)
    problems = [f"raw TeX: …{t}…" for t in probe["rawTex"]]
    problems += [f"MathJax could not typeset: {t}" for t in probe["mathErrors"]]
    problems += [f"image did not load: {s}" for s in probe["images"]]
    for anim in probe["animations"]:
        if not (anim["hasFirst"] and anim["loaded"]):
            problems.append(f"animation {anim['id']} shows no frame")
        elif not anim["steps"]:
            problems.append(f"animation {anim['id']}: the frame does not change when stepped")
    problems += probe["widgets"]
    problems += [f"display equation wider than its column: {w}" for w in probe["wideEquations"]]
    problems += [f"code line cut off at the column: {w}" for w in probe["wideCode"]]
    problems += link_problems(probe["links"], base, built)
    problems += network_problems(page.events)
    if shot is not None:
        page.screenshot(shot)
    facts = {"animations": len(probe["animations"]), "links": len(probe["links"]),
             "title": probe["title"]}
    return problems, facts


def check_search(page, base: str) -> tuple[list[str], dict]:
    problems, facts = [], {}
    for term in SEARCH_TERMS:
        page.goto(f"{base}search.html?q={urllib.parse.quote(term)}")
        found = page.wait_for(SEARCH_PROBE, timeout=60)
        while True:  # each snippet is fetched on its own: wait until their number stops growing
            page.pump(1.0)
            again = page.wait_for(SEARCH_PROBE, timeout=60)
            if again["summaries"] == found["summaries"]:
                break
            found = again
        facts[term] = {k: found[k] for k in ("items", "summaries", "math")}
        for match in RAW_TEX.finditer(found["text"]):
            i = match.start()
            problems.append(f"search '{term}': raw TeX in a snippet: …{found['text'][max(0, i - 40):i + 40]}…")
        problems += [f"search '{term}': {p}" for p in network_problems(page.events)]
        if not found["items"]:
            problems.append(f"search '{term}' found nothing")
    return list(dict.fromkeys(problems)), facts


def check_book(built: Path, screenshots: Path | None = None, log=print, pages: list[str] | None = None,
               search: bool = True) -> dict[str, list[str]]:
    """Every problem found, by page (relative path); an empty dict when the book is sound.
    ``pages``: only these (relative paths); ``search``: also check the search results."""
    built = Path(built).resolve()
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    server = serve(built)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    report: dict[str, list[str]] = {}
    try:
        with Chromium() as browser:
            page = browser.page()
            for path in pages_of(built):
                name = path.relative_to(built).as_posix()
                if pages is not None and name not in pages:
                    continue
                start = time.monotonic()
                shot = screenshots / (name.replace("/", "__")[:-5] + ".png") if screenshots else None
                target = redirect_target(path)
                if target is not None:
                    problems, facts = check_redirect(path, target, base, built)
                else:
                    problems, facts = check_page(page, base + name, base, built, shot)
                log(f"{name}: {len(problems)} problem(s), {facts['animations']} animation(s), "
                    f"{facts['links']} link(s), {time.monotonic() - start:.1f} s")
                if problems:
                    report[name] = problems
            if search:
                problems, facts = check_search(page, base)
                log(f"search: {facts}")
                if problems:
                    report["search.html?q=..."] = problems
            page.close()
    finally:
        server.shutdown()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("built", type=Path, help="the built book (e.g. _build/html)")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for one PNG per page")
    args = parser.parse_args(argv)
    start = time.monotonic()
    report = check_book(args.built, args.screenshots)
    for name, problems in report.items():
        print(f"\n{name}:")
        for problem in problems:
            print(f"  - {problem}")
    print(f"\nbrowser check: {sum(map(len, report.values()))} problem(s) on {len(report)} page(s), "
          f"{time.monotonic() - start:.0f} s")
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main())
