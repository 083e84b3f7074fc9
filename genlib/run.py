"""The chapter runner: execute chapters through papermill with a profile and overrides.

    python -m genlib.run                                 # every chapter, book profile
    python -m genlib.run 02 device=cuda n_components=5   # one chapter, with overrides
    python -m genlib.run --all --profile paper --out runs/paper

Chapters are the jupytext sources ``book/NN_*.py``; a chapter may be named by its number (``02``),
its stem (``02_density_models``) or its slug (``density_models``). Each is converted in memory and
executed into ``--out`` (default ``_build/executed``), never in place on the committed notebooks.
Profiles are parameter sets kept in one file shipped with the package, ``genlib/profiles.yml``;
``key=value`` overrides go on top (values are read as YAML, so ``epochs=50`` is an int and
``betas=[1,4]`` a list). A failing chapter is reported with its error and the others still run; the
exit status is 0 only if all passed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import re
import queue
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from genlib import params
from genlib.checks import clip, short

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHAPTER_PATTERN = re.compile(r"^(\d\d)_(\w+)\.py$")


@dataclass(frozen=True)
class Chapter:
    path: Path  # book/NN_slug.py

    @property
    def stem(self) -> str:
        return self.path.stem

    def matches(self, name: str) -> bool:
        number, slug = self.stem.split("_", 1)
        return name in (self.stem, number, slug, str(int(number)))


def chapters(book: Path = BOOK) -> list[Chapter]:
    """The chapters of the book, in order: every ``NN_slug.py`` under ``book``."""
    return [Chapter(p) for p in sorted(book.glob("*.py")) if CHAPTER_PATTERN.match(p.name)]


def select(names: list[str], book: Path = BOOK) -> list[Chapter]:
    """The chapters named (all of them if ``names`` is empty); an unknown name is a ValueError."""
    found = chapters(book)
    if not names:
        return found
    picked = []
    for name in names:
        hits = [c for c in found if c.matches(name)]
        if not hits:
            raise ValueError(f"unknown chapter {name!r}; choose one of: {', '.join(c.stem for c in found)}")
        picked += [c for c in hits if c not in picked]
    return picked


def parse_overrides(pairs: list[str]) -> dict:
    """``["epochs=50", "device=cuda"]`` -> ``{"epochs": 50, "device": "cuda"}`` (values parsed as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"override {short(pair)} is not of the form name=value")
        out[key] = _value(key, value)
    return out


def _value(key: str, text: str):
    """A plain YAML value (safe: no tags), with YAML 1.1's string numbers (``1e-3``) read as floats."""
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError as err:
        problem = str(getattr(err, "problem", None) or err).splitlines()[0]
        raise ValueError(f"override {key}={short(text)} is not a plain YAML value ({problem}); "
                         f"write numbers, strings, true/false or lists like [1, 4]") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def load_profile(name: str, book: Path | None = None) -> dict[str, dict]:
    """Profile ``name`` from the package's ``genlib/profiles.yml`` (or a ``profiles.yml`` in ``book``, a
    test's own book folder): ``{"all": {...}, "<chapter stem>": {...}}``."""
    local = None if book is None else Path(book) / "profiles.yml"
    return params.load_profile(name, local if local is not None and local.is_file() else params.PROFILES)


def notebook(chapter: Chapter):
    """The chapter's jupytext source as an in-memory notebook (the committed files are untouched)."""
    import jupytext

    nb = jupytext.read(chapter.path)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    for i, cell in enumerate(nb.cells):  # stable ids (jupytext draws random ones): clean diffs
        cell.id = f"cell-{i:03d}"
    return nb


def declared_parameters(nb) -> dict:
    """Names and default values in the notebook's ``parameters`` cell."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"a chapter needs exactly one 'parameters' cell, found {len(cells)}")
    namespace: dict = {}
    exec(compile(cells[0].source, "<parameters>", "exec"), {}, namespace)  # plain assignments
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


def parameters_for(chapter: Chapter, declared: dict, profile: dict, overrides: dict) -> dict:
    """Profile values (``all`` then the chapter's own) plus overrides, limited to what it declares."""
    wanted = {**(profile.get("all") or {}), **(profile.get(chapter.stem) or {}), **overrides}
    return {k: v for k, v in wanted.items() if k in declared}


def clean(nb) -> None:
    """Drop run-specific metadata (papermill's timings, execution timestamps) to keep diffs clean."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)


# ----------------------------------------------------------------------------- execution
#
# Each chapter runs in a child process (``python -m genlib.run --worker SPEC``) that drives papermill
# and its kernel. The parent enforces the chapter's time limit, survives Ctrl-C, and moves files:
# the child writes ``NN.partial.ipynb``; only a chapter that finished becomes ``NN.ipynb`` (the name
# the book build reads); anything else becomes ``NN.failed.ipynb``, kept for reading.

CELL_TIMEOUT = 600  # seconds per cell, book profile (papermill's execution_timeout)
CHAPTER_TIMEOUT = 1800  # seconds per chapter, book profile


@dataclass(frozen=True)
class Limits:
    """Time limits of one run, in seconds (frozen: it is a default argument of :func:`execute`)."""

    cell: float | None = CELL_TIMEOUT  # None: no limit
    chapter: float | None = CHAPTER_TIMEOUT


def limits_for(profile: dict, cell: float | None, chapter: float | None) -> Limits:
    """Time limits: the command line's, else the profile's ``runner:`` entry, else the defaults."""
    runner = profile.get("runner") or {}
    pick = lambda given, key, default: given if given is not None else runner.get(key, default)  # noqa: E731
    cell, chapter = pick(cell, "cell_timeout", CELL_TIMEOUT), pick(chapter, "chapter_timeout", CHAPTER_TIMEOUT)
    for name, value in (("cell timeout", cell), ("chapter timeout", chapter)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number of seconds >= 0 (0: no limit), got {short(value)}")
    # nbclient's cell timeout is a whole number of seconds: round a fraction up, never down to "no limit"
    return Limits(math.ceil(cell) or None, chapter or None)


_RUNNING: set[subprocess.Popen] = set()  # children of the running chapters, stopped together on Ctrl-C
_STOPPING = threading.Event()


def execute(chapter: Chapter, params: dict, out: Path, book: Path = BOOK,
            limits: Limits = Limits(), env: dict | None = None) -> tuple[bool, str]:
    """Execute one chapter into ``out`` in a child process; return (passed, one-line error or "")."""
    target, partial, failed = (out / f"{chapter.stem}{suffix}"
                               for suffix in (".ipynb", ".partial.ipynb", ".failed.ipynb"))
    for stale in (partial, failed):
        stale.unlink(missing_ok=True)
    spec = {"chapter": str(chapter.path), "params": params, "partial": str(partial), "cwd": str(book),
            "cell_timeout": limits.cell}
    spec_file, result_file = out / f".{chapter.stem}.spec.json", out / f".{chapter.stem}.result.json"
    spec_file.write_text(json.dumps(spec))
    result_file.unlink(missing_ok=True)
    if _STOPPING.is_set():  # stopped while this chapter waited for its turn
        spec_file.unlink(missing_ok=True)
        return False, "KeyboardInterrupt: stopped by the user"
    child = subprocess.Popen([sys.executable, "-m", "genlib.run", "--worker", str(spec_file), str(result_file)],
                             start_new_session=True, env=env)  # Ctrl-C reaches the runner, not the kernel
    _RUNNING.add(child)
    try:
        if _STOPPING.is_set():  # the stop came between the check above and the start
            _stop(child)
        try:
            child.wait(timeout=limits.chapter)
        except subprocess.TimeoutExpired:
            if not _all_cells_done(partial):
                raise
            child.wait(timeout=FINISH_GRACE)  # every cell ran: the kernel is shutting down, let it
        error = ("KeyboardInterrupt: stopped by the user" if _STOPPING.is_set()
                 else _result(result_file, child.returncode))
    except subprocess.TimeoutExpired:
        _stop(child)
        error = f"TimeoutError: the chapter ran past its limit of {limits.chapter:g} s{_running_cell(partial)}"
    except BaseException:  # Ctrl-C or anything else: stop the child, keep nothing under the build's name
        _stop(child)
        _set_aside(partial, target, failed)
        raise
    finally:
        _RUNNING.discard(child)
        spec_file.unlink(missing_ok=True)
        result_file.unlink(missing_ok=True)
    if error:
        _set_aside(partial, target, failed)
        return False, error
    os.replace(partial, target)
    return True, ""


FINISH_GRACE = 30  # seconds a chapter whose cells all ran gets past its limit to shut its kernel down


def _stop(child: subprocess.Popen) -> None:
    """Terminate the child (it stops its kernel), then kill it and anything it started that is left."""
    import psutil

    try:
        left = psutil.Process(child.pid).children(recursive=True)  # the kernel, and what the kernel runs
    except psutil.Error:
        left = []
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    for process in left:  # a kernel orphaned under PID 1 would run on for minutes
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=5)


def _all_cells_done(partial: Path) -> bool:
    """Whether papermill marked every code cell of the partial notebook as completed."""
    import nbformat

    try:
        nb = nbformat.read(partial, as_version=4)
    except Exception:  # noqa: BLE001
        return False
    code = [c for c in nb.cells if c.cell_type == "code"]
    return bool(code) and all(c.metadata.get("papermill", {}).get("status") == "completed" for c in code)


def _set_aside(partial: Path, target: Path, failed: Path) -> None:
    """A run that did not finish leaves only ``failed`` (if anything ran), never ``target``."""
    target.unlink(missing_ok=True)  # an older run's notebook would pass for this one's
    if partial.exists():
        os.replace(partial, failed)


def _result(result_file: Path, returncode: int) -> str:
    """The child's one-line error ("" when it passed)."""
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError):
        return f"ChildProcessError: the chapter's process ended with status {returncode} and no result"
    return "" if result.get("passed") else result.get("error") or "unknown error"


def _running_cell(partial: Path) -> str:
    """``" (in cell N: first line)"`` for the cell papermill marked as running, if it can be read."""
    import nbformat

    try:
        nb = nbformat.read(partial, as_version=4)
    except Exception:  # noqa: BLE001 - a half-written notebook tells us nothing more
        return ""
    for index, cell in enumerate(nb.cells):
        if cell.metadata.get("papermill", {}).get("status") == "running":
            return f" (in cell {index}: {short(cell.source.strip().splitlines()[0] if cell.source.strip() else '', 50)})"
    return ""


ENGINE = "genlib"  # papermill engine name: genlib.papermill_engine.Engine (also its papermill.engine entry point)


def _register_engine() -> None:
    """Register :class:`genlib.papermill_engine.Engine` with papermill under ``ENGINE`` (the installed
    package also declares it as a ``papermill.engine`` entry point, for ``papermill --engine genlib``)."""
    from papermill.engines import papermill_engines

    from genlib.papermill_engine import Engine

    papermill_engines.register(ENGINE, Engine)


def _end_worker(signum, frame):  # noqa: ARG001
    """SIGTERM to a chapter's process (the runner stopping it): kill its kernel first, then exit."""
    import psutil

    for process in psutil.Process().children(recursive=True):
        try:
            process.kill()
        except psutil.Error:
            pass
    os._exit(128 + signum)


def worker(spec_file: Path, result_file: Path) -> int:
    """The child: run papermill on one chapter into its partial notebook, write a result file."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _register_engine()
    signal.signal(signal.SIGTERM, _end_worker)
    spec = json.loads(Path(spec_file).read_text())
    partial = Path(spec["partial"])
    result = {"passed": False}
    try:
        # papermill saves after every cell, so a failed chapter leaves its partial notebook to read
        nb = papermill.execute_notebook(notebook(Chapter(Path(spec["chapter"]))), str(partial),
                                        parameters=spec["params"], kernel_name="python3", cwd=spec["cwd"],
                                        progress_bar=False, execution_timeout=spec["cell_timeout"],
                                        engine_name=ENGINE)
        clean(nb)
        nbformat.write(nb, partial)
        result["passed"] = True
    except PapermillExecutionError as err:
        result["error"] = f"cell {err.cell_index}: {err.ename}: {err.evalue}".splitlines()[0]
    except Exception as err:  # noqa: BLE001 - a dead kernel, a timeout...: one line, the runner goes on
        result["error"] = f"{type(err).__name__}: {err}".splitlines()[0] if str(err) else type(err).__name__
    Path(result_file).write_text(json.dumps(result))
    return 0 if result["passed"] else 1


def _check_out(out: Path, book: Path) -> Path:
    """``out`` as a writable folder outside the book; one line otherwise."""
    resolved, book = out.resolve(), book.resolve()
    if resolved == book or resolved.is_relative_to(book):
        raise ValueError(f"--out {out} is inside the book folder {book}; never run in place")
    try:
        resolved.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=resolved, prefix=".write-test-")
        probe.close()
    except OSError as err:
        raise ValueError(f"--out {out} is not a writable folder ({err.strerror or err})") from None
    return resolved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genlib-run", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("items", nargs="*", help="chapters (02, density_models, ...) and name=value overrides")
    parser.add_argument("--all", action="store_true", help="every chapter (the default when none is named)")
    parser.add_argument("--profile", default="book", help="parameter set from genlib/profiles.yml (default: book)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "executed", help="output folder")
    parser.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                        help=f"seconds a cell may run (default {CELL_TIMEOUT}, or the profile's; 0: no limit)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help=f"seconds a chapter may run (default {CHAPTER_TIMEOUT}, or the profile's; 0: no limit)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="chapters run at once (default 1); with GPUs, each job gets one (CUDA_VISIBLE_DEVICES)")
    parser.add_argument("--book", type=Path, default=BOOK, help=argparse.SUPPRESS)
    parser.add_argument("--list", action="store_true", help="list the chapters and their parameters")
    parser.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # kernels inherit it before importing torch
    _absolute_data_dir()
    names = [i for i in args.items if "=" not in i]
    try:
        overrides = parse_overrides([i for i in args.items if "=" in i])
        picked = select([] if args.all else names, args.book)
        profile = load_profile(args.profile, args.book)
        limits = limits_for(profile, args.cell_timeout, args.timeout)
        if args.jobs < 1:
            raise ValueError(f"--jobs must be a positive integer, got {args.jobs}")
        if args.list:
            for chapter in picked:
                print(f"{chapter.stem}: {declared_parameters(notebook(chapter))}")
            return 0
        plan = [(c, declared_parameters(notebook(c))) for c in picked]
        valid = sorted({k for _, declared in plan for k in declared})
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ValueError(f"no chosen chapter has a parameter named {clip(', '.join(unknown))}; "
                             f"valid: {', '.join(valid)}")
        _ensure_data(plan, profile, overrides)
        out = _check_out(args.out, args.book)
        overrides = _resolve_paths(overrides)
    except ValueError as err:
        print(f"genlib-run: error: {err}", file=sys.stderr)
        return 2
    _TERMINATED.clear()
    main_thread = threading.current_thread() is threading.main_thread()
    # SIGTERM (a scheduler's cancel or time limit) stops like Ctrl-C; a second signal does not cut the cleanup
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        status = _run_all(plan, profile, overrides, out, args.book, limits, args.jobs)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 + signal.SIGTERM if status == 130 and _TERMINATED.is_set() else status


_TERMINATED = threading.Event()


def _interrupt(signum, frame):  # noqa: ARG001
    if _STOPPING.is_set():  # already stopping: let the cleanup and the summary finish
        return
    if signum == signal.SIGTERM:
        _TERMINATED.set()
    raise KeyboardInterrupt


def _resolve_paths(overrides: dict) -> dict:
    """``checkpoint=`` made absolute against the caller's folder (kernels run in ``book/``), and checked
    now: a missing or foreign file is one line before any chapter starts, not a failure half an hour in."""
    resolved = dict(overrides)
    for key, value in overrides.items():
        if key.endswith("checkpoint") and isinstance(value, str) and value:
            path = Path(value).expanduser().absolute()
            from genlib import train_family

            train_family.read(path)  # not found / not a checkpoint: a ValueError naming the file
            resolved[key] = str(path)
    return resolved


def _ensure_data(plan, profile, overrides) -> None:
    """Every downloaded data set a chosen chapter names is in the cache before any chapter starts (fetched
    now if the machine is online); offline, one line with the pre-fetch command instead of a failure
    halfway through a chapter."""
    from genlib import data

    for chapter, declared in plan:
        for key, value in parameters_for(chapter, declared, profile, overrides).items():
            if isinstance(value, str) and value in data.DOWNLOADED:
                try:
                    data.ensure(value)
                except data.DataError as err:
                    raise ValueError(f"{chapter.stem} ({key}={value}): {err}") from None


def _run_all(plan, profile, overrides, out: Path, book: Path, limits: Limits, jobs: int = 1) -> int:
    """Run the chapters, ``jobs`` at a time (each job pinned to one GPU where there are GPUs)."""
    _STOPPING.clear()
    devices = queue.Queue()
    for slot in _device_slots(jobs):
        devices.put(slot)
    lock, results, start = threading.Lock(), {}, time.perf_counter()

    def one(chapter, declared):
        params = parameters_for(chapter, declared, profile, overrides)
        slot = devices.get()
        tic = time.perf_counter()
        try:
            passed, error = execute(chapter, params, out, book, limits, _job_env(slot))
        finally:
            devices.put(slot)
        with lock:
            results[chapter.stem] = passed
            _report(chapter, passed, time.perf_counter() - tic, params, error, slot)

    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = [pool.submit(one, chapter, declared) for chapter, declared in plan]
    try:
        for future in futures:
            future.result()
    except KeyboardInterrupt:
        _STOPPING.set()
        for future in futures:
            future.cancel()
        for child in list(_RUNNING):
            _stop(child)
    finally:
        pool.shutdown(wait=True)
    failed = [stem for stem, passed in results.items() if not passed]
    total = time.perf_counter() - start
    skipped = f", {len(plan) - len(results)} not run" if len(results) < len(plan) else ""
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed{skipped} in {total:.1f} s -> {out}",
          flush=True)
    return 130 if _STOPPING.is_set() else (1 if failed else 0)


def _device_slots(jobs: int) -> list[str | None]:
    """One slot per job: a GPU index each (round-robin) when CUDA GPUs are visible, else None."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [str(i % gpus) if gpus else None for i in range(jobs)]


def _job_env(slot: str | None) -> dict:
    """The environment of a chapter's process: a job with a GPU sees only that GPU."""
    env = dict(os.environ)
    if slot is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot
    return env


def _report(chapter: Chapter, passed: bool, seconds: float, params: dict, error: str,
            slot: str | None = None) -> None:
    shown = " ".join(f"{k}={short(v, 40)}" for k, v in params.items())
    where = f"[gpu {slot}] " if slot is not None else ""
    print(f"{'ok  ' if passed else 'FAIL'}  {chapter.stem:<28} {seconds:7.1f} s  {where}{shown}"
          + (f"\n      {error}" if error else ""), flush=True)


def _absolute_data_dir() -> None:
    """Kernels run inside ``book/``: a relative ``GENLIB_DATA`` is made absolute here, once."""
    from genlib.data import cache_dir

    if os.environ.get("GENLIB_DATA") is not None:
        os.environ["GENLIB_DATA"] = str(cache_dir())


if __name__ == "__main__":
    sys.exit(main())
