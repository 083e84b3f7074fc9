"""Long runs that never lose work: a pre-flight check of the output folder, and interrupts that keep
what was already written.

:func:`check_out` runs before the first epoch: the folder must be (or become) a writable directory
with roughly the space the files will take, so that hours of training never end in a raw
``FileExistsError`` or a full disk. :func:`guarded` wraps a command-line run (``genlib.train_family``):
inside it, Ctrl-C and SIGTERM (a cluster scheduler's cancel or time limit) stop training at the next
step; every :func:`genlib.train.fit` call writes a resumable checkpoint after each epoch to
``<stem>.resume.pt`` (``<stem>.resume-2.pt`` for a second phase, ...), so the finished file of an
earlier run is never replaced by a half-trained model, and running the same command again continues
where the interrupted run stopped. Notebooks are untouched: outside :func:`guarded`, ``fit`` behaves
as before.
"""
from __future__ import annotations

import errno
import json
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

__all__ = ["check_out", "guarded", "active", "Guard", "gigabytes", "exit_status"]

SPARE_BYTES = 16 * 2**20  # room asked for beyond the estimate (torch.save's zip overhead, the temp file)


def gigabytes(n: float) -> str:
    """``n`` bytes as a short human number ("1.2 GB", "340 MB")."""
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{max(n, 0) / 1e6:.0f} MB"


def check_out(out: str | Path, need_bytes: int = 0, flag: str = "--out") -> Path:
    """``out`` as a writable folder with about ``need_bytes`` free, created if missing; otherwise a
    one-line ``ValueError`` (a file in the way, a read-only folder, a full disk)."""
    out = Path(out)
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                where = "is a file" if parent == out else f"is under {parent}, which is a file"
                raise ValueError(f"{flag} {out} {where}; give a folder")
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-") as probe:
            probe.write(b"x")
            probe.flush()
    except OSError as err:
        raise ValueError(f"{flag} {out} is not a writable folder ({err.strerror or err})") from None
    free = shutil.disk_usage(out).free
    if free < need_bytes + SPARE_BYTES:
        raise ValueError(f"{flag} {out} has {gigabytes(free)} free, but this run writes about "
                         f"{gigabytes(need_bytes + SPARE_BYTES)}; free some space or choose another folder")
    return out


def disk_full_error(path: Path, err: BaseException) -> OSError:
    """The one-line ``OSError`` for a write of ``path`` that failed (torch.save reports a full disk as a
    ``RuntimeError`` about stream positions)."""
    try:
        free = gigabytes(shutil.disk_usage(path.parent).free)
    except OSError:
        free = "unknown"
    return OSError(errno.ENOSPC, f"could not write {path}: the disk is probably full ({free} free)")


class Guard:
    """The state of a guarded run: the resume files of its ``fit`` calls and whether it was interrupted."""

    def __init__(self, stem: Path | None, rank: int = 0):
        self.stem, self.rank = stem, rank
        self.interrupted = False
        self.signal: int | None = None  # the signal that stopped the run (SIGINT, SIGTERM)
        self.fits = 0

    def resume_files(self) -> list[Path]:
        """The resume checkpoints that exist now, in phase order."""
        if self.stem is None:
            return []
        found = sorted(self.stem.parent.glob(f"{self.stem.name}.resume*.pt"))
        return sorted(found, key=lambda p: (len(p.name), p.name))

    def checkpoint_for_next_fit(self) -> Path | None:
        """The resume file of the next :func:`genlib.train.fit` call (one per training phase)."""
        if self.stem is None:
            return None
        self.fits += 1
        suffix = ".resume.pt" if self.fits == 1 else f".resume-{self.fits}.pt"
        return self.stem.with_name(self.stem.name + suffix)

    def bind(self, params: dict) -> str:
        """Keep resume files only if written for the same ``params``; a line saying what happened."""
        if self.stem is None:
            return ""
        record = self.stem.with_name(self.stem.name + ".resume.json")
        files = self.resume_files()
        try:
            same = json.loads(record.read_text()) == json.loads(json.dumps(params, default=str))
        except (OSError, ValueError):
            same = False
        note = ""
        if files and not same:
            note = f"starting over: {files[0]} was written for other parameters (removed)"
            if self.rank == 0:
                for path in files:
                    path.unlink(missing_ok=True)
        elif files:
            note = f"resuming from {files[-1]} (an interrupted run of the same command)"
        if self.rank == 0:
            record.write_text(json.dumps(params, default=str))
        return note

    def finish(self) -> None:
        """The run finished: its resume files are no longer needed."""
        if self.stem is None or self.rank != 0:
            return
        for path in self.resume_files():
            path.unlink(missing_ok=True)
        self.stem.with_name(self.stem.name + ".resume.json").unlink(missing_ok=True)


_ACTIVE: Guard | None = None


def active() -> Guard | None:
    """The guard of the running command, or None (a notebook, a test, a plain script)."""
    return _ACTIVE


def _stop(signum, frame):  # noqa: ARG001
    guard = _ACTIVE
    if guard is not None:
        if guard.interrupted:  # a second signal while cleaning up: do not interrupt the cleanup twice
            return
        guard.signal = signum
    raise KeyboardInterrupt


@contextmanager
def guarded(stem: str | Path | None, rank: int = 0):
    """Run the body with Ctrl-C and SIGTERM turned into a stop that keeps the files written so far.

    ``stem`` (e.g. ``out/vae``) names the resume checkpoints (``out/vae.resume.pt``); None: none."""
    global _ACTIVE
    guard = Guard(None if stem is None else Path(stem), rank)
    previous, installed = _ACTIVE, {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            installed[signum] = signal.signal(signum, _stop)
    _ACTIVE = guard
    try:
        yield guard
    except KeyboardInterrupt:
        guard.interrupted = True
        guard.signal = guard.signal or signal.SIGINT
    finally:
        _ACTIVE = previous
        for signum, handler in installed.items():
            signal.signal(signum, handler)


def exit_status(guard: Guard) -> int:
    """The shell's status for a run stopped by a signal: 128 + its number (130 for Ctrl-C)."""
    return 128 + int(guard.signal or signal.SIGINT)
