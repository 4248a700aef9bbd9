"""One run per run folder: an exclusive OS lock on `RUN/.lock` for the run's lifetime.

The lock is `filelock`'s `flock(2)` lock, so the kernel drops it when its process dies (a SIGKILLed run never
blocks `--resume`). `RUN/.lock.owner` (written while the lock is held) names the holder for the refusal
message. Holding the lock also makes it safe to delete temporary folders a killed run left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from dpot.errors import DpotError
from dpot.io import write_json

LOCK_FILE = ".lock"
OWNER_FILE = ".lock.owner"


def _holder(run_dir: Path) -> str:
    """Who holds the lock, from the owner file (best effort: it may be mid-write)."""
    try:
        owner = json.loads((run_dir / OWNER_FILE).read_text())
        return f"pid {owner['pid']} on {owner['host']}, started {owner['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def lock_holder(run_dir: str | os.PathLike) -> str | None:
    """Who holds `run_dir`'s lock now, or None if no run does (probes the lock without waiting)."""
    run_dir = Path(run_dir)
    if not (run_dir / LOCK_FILE).exists():
        return None
    lock = FileLock(run_dir / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return _holder(run_dir)
    lock.release()
    return None


def remove_stale_temporaries(run_dir: Path) -> list[str]:
    """Delete `.NAME.XXXX.tmp` files and folders an interrupted atomic write left in `run_dir` (call only
    while holding the run lock); returns their names."""
    removed = []
    for p in run_dir.glob(".*.tmp"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p.name)
    return removed


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold the exclusive lock of `run_dir` for the block (on rank 0 only: the ranks of one torchrun job share
    the folder). A second holder gets a one-line DpotError naming the first. A folder this call created is
    removed again if the block fails before anything but the lock files was written."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    if run_dir.exists() and not run_dir.is_dir():
        raise DpotError(f"{run_dir} is a file, not a run folder; choose another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DpotError(f"{run_dir}: cannot create the run folder ({exc.strerror or exc})") from None
    lock = FileLock(run_dir / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DpotError(
            f"{run_dir} is in use by another run ({_holder(run_dir)}); wait for it to finish or choose another --out"
        ) from None
    ok = False
    try:
        write_json(
            run_dir / OWNER_FILE,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "command": " ".join(sys.argv),
            },
        )
        removed = remove_stale_temporaries(run_dir)
        if removed:
            print(
                f"dpot: removed {len(removed)} temporary file(s) left by an interrupted run in {run_dir}",
                file=sys.stderr,
            )
        yield
        ok = True
    finally:
        (run_dir / OWNER_FILE).unlink(missing_ok=True)
        lock.release()
        if not ok and created and set(os.listdir(run_dir)) <= {LOCK_FILE, OWNER_FILE}:
            shutil.rmtree(run_dir, ignore_errors=True)


def locked_fit(trainer, resume: bool = False, stop_at: float | None = None):
    """`trainer.fit(resume, stop_at)` under the run folder's lock (see `run_lock`)."""
    with run_lock(trainer.run_dir):
        result = trainer.fit(resume=resume, stop_at=stop_at)
    if resume and result.loss is None and not result.interrupted and result.step >= trainer.cfg.max_steps:
        trainer.say(
            f"nothing to train: the run had already reached train.max_steps={trainer.cfg.max_steps}; "
            f"raise it to continue (e.g. train.max_steps={2 * max(result.step, 1)})"
        )
    return result
