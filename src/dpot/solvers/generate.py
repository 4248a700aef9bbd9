"""The generation driver behind `dpot generate`: plans jobs (dataset x split x part), runs them in this
process or a process pool, writes canonical split files atomically, resumes, shards, and records
`DIR/manifest.json`. What the jobs are (resolved specs, split ranges, sharding) is `dpot.solvers.jobs`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dpot.data.format import DatasetMeta, SplitWriter
from dpot.errors import DpotError
from dpot.io import write_json
from dpot.solvers.base import SimResult
from dpot.solvers.jobs import (
    SPLIT_OFFSETS,
    Job,
    Resolved,
    assign_shard,
    part_path,
    plan,
    resolve,
    split_meta,
    split_path,
)
from dpot.solvers.presets import DatasetSpec

MANIFEST = "manifest.json"
SMALL_COST = 2e7  # trajectories x frames x cells below which one single-threaded process is fastest


def _existing_ok(path: Path, expected: DatasetMeta, n: int) -> bool:
    """True if `path` is a finished file for the same settings; a DpotError if it holds different settings."""
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            params = json.loads(f.attrs.get("params_json", "{}"))
            key = "inputs" if expected.steady else "fields"
            length = f[key].shape[0] if key in f else -1
    except (OSError, ValueError):
        return False  # unreadable: redo it
    if params != json.loads(json.dumps(expected.params)) or length != n:
        raise DpotError(f"{path} exists with different settings; delete it or choose another --out")
    return True


def run_job(job: Job, device: str = "cpu", progress: Callable[[int], None] | None = None) -> float:
    """Simulate and write one job (skipped when already complete); returns seconds spent."""
    ds, t0 = job.dataset, time.perf_counter()
    meta = split_meta(ds, job.split, job.start, job.n)
    if _done(job, meta):
        if progress:
            progress(job.n)
        return 0.0
    writer: SplitWriter | None = None
    try:
        for b0 in range(0, job.n, ds.spec.batch):
            nb = min(ds.spec.batch, job.n - b0)
            r = ds.family.simulate(nb, ds.res, ds.frames, ds.seed, start=job.start + b0, device=device, **ds.params)
            if writer is None:
                writer = _open_writer(job.path, meta, job.n, r, len(ds.family.param_names))
            writer.write(
                slice(b0, b0 + nb),
                fields=r.fields,
                inputs=r.inputs,
                targets=r.targets,
                params=None if not ds.family.param_names else r.params,
            )
            if progress:
                progress(nb)
    except BaseException as exc:
        if writer is not None:
            writer.__exit__(type(exc), exc, exc.__traceback__)  # closes and removes the temporary file
        raise
    assert writer is not None
    writer.close()
    return time.perf_counter() - t0


def _done(job: Job, meta: DatasetMeta) -> bool:
    """A job is done when its file exists, or (for a part) when its split has already been merged."""
    if _existing_ok(job.path, meta, job.n):
        return True
    if job.n_parts == 1:
        return False
    ds, count = job.dataset, job.dataset.counts()[job.split]
    final = job.path.parent.parent / f"{job.split}.h5"
    return _existing_ok(final, split_meta(ds, job.split, SPLIT_OFFSETS[job.split], count), count)


def _open_writer(path: Path, meta: DatasetMeta, n: int, r: Any, n_params: int) -> SplitWriter:
    if meta.steady:
        return SplitWriter(
            path,
            meta,
            n,
            inputs_shape=r.inputs.shape[1:],
            targets_shape=r.targets.shape[1:],
            n_params=n_params,
            mask=r.mask,
        )
    return SplitWriter(path, meta, n, r.fields.shape[1:], n_params=n_params, mask=r.mask)


def merge_parts(ds: Resolved, out: Path, split: str, n_parts: int, lock: bool) -> bool:
    """Join the finished part files of a split into `<split>.h5` (atomically) and delete the parts.

    Returns False when some part is missing. With `lock` (sharded runs), only the process that creates the
    lock file merges; a stale lock from a killed run is ignored by an unsharded run.
    """
    final = split_path(out, ds.spec.name, split)
    count = ds.counts()[split]
    if _existing_ok(final, split_meta(ds, split, SPLIT_OFFSETS[split], count), count):
        return True
    parts = [part_path(out, ds.spec.name, split, p, n_parts) for p in range(n_parts)]
    if not all(p.is_file() for p in parts):
        return False
    lock_path = final.parent / ".parts" / f"{split}.merge.lock"
    if lock:
        try:
            os.close(os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
    meta = split_meta(ds, split, SPLIT_OFFSETS[split], count)
    keys = ("inputs", "targets") if meta.steady else ("fields",)
    if ds.family.param_names:
        keys += ("params",)
    writer: SplitWriter | None = None
    try:
        row = 0
        for p in parts:
            with h5py.File(p, "r") as f:
                if writer is None:
                    first = SimResult(
                        **{k: f[k][:1] for k in keys if k != "params"},
                        mask=np.asarray(f["mask"]) if "mask" in f else None,
                    )
                    writer = _open_writer(final, meta, count, first, len(ds.family.param_names))
                m = f[keys[0]].shape[0]
                for a in range(0, m, 64):
                    b = min(m, a + 64)
                    writer.write(slice(row + a, row + b), **{k: f[k][a:b] for k in keys})
                row += m
        assert writer is not None
        writer.close()
        for p in parts:
            p.unlink(missing_ok=True)
    except BaseException as exc:
        if writer is not None:
            writer.__exit__(type(exc), exc, exc.__traceback__)  # closes and removes the temporary file
        raise
    finally:
        lock_path.unlink(missing_ok=True)
    return True


def _clean_stale(out: Path, names: Iterable[str]) -> None:
    """Remove temporary files left by a killed run (only safe when no other process writes these datasets)."""
    for name in names:
        for folder in (out / name, out / name / ".parts"):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    if tmp.is_dir():
                        shutil.rmtree(tmp, ignore_errors=True)
                    else:
                        tmp.unlink(missing_ok=True)
                for lock in folder.glob("*.merge.lock"):
                    lock.unlink(missing_ok=True)


def check_writable(out: Path) -> None:
    """A one-line DpotError when `out` cannot be created or written."""
    if out.exists() and not out.is_dir():
        raise DpotError(f"{out}: exists and is not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".dpot-write-test."):
            pass
    except OSError as exc:
        raise DpotError(f"{out}: output folder is not writable ({exc.strerror or exc}); choose another --out") from None


# ---------------------------------------------------------------- worker processes
_QUEUE: Any = None


def _init_worker(progress_queue: Any, threads: int) -> None:
    import torch

    global _QUEUE
    _QUEUE = progress_queue
    torch.set_num_threads(threads)


def _worker_job(job: Job, device: str) -> tuple[str, float]:
    return job.label, run_job(job, device, progress=_QUEUE.put)


def run_jobs(
    jobs: list[Job],
    *,
    workers: int = 1,
    device: str = "cpu",
    progress: Callable[[int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Run jobs here (`workers` = 1) or in a spawn process pool; returns seconds per job label."""
    seconds: dict[str, float] = {}
    ordered = sorted(jobs, key=lambda j: -j.cost)  # big jobs first balances the pool
    if workers <= 1 or len(jobs) <= 1:
        import torch

        threads = torch.get_num_threads()
        if sum(j.cost for j in jobs) < SMALL_COST:
            torch.set_num_threads(1)  # small grids gain nothing from threads and suffer on a busy machine
        try:
            for job in ordered:
                seconds[job.label] = run_job(job, device, progress)
                if log and seconds[job.label]:
                    log(f"{job.label}: {seconds[job.label]:.1f} s")
        finally:
            torch.set_num_threads(threads)
        return seconds
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // workers)
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set() or not q.empty():
            try:
                n = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if progress:
                progress(n)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(q, threads)
        ) as pool:
            futures = [pool.submit(_worker_job, job, device) for job in ordered]
            for fut in as_completed(futures):
                label, sec = fut.result()
                seconds[label] = sec
                if log and sec:
                    log(f"{label}: {sec:.1f} s")
    finally:
        stop.set()
        reader.join()
    return seconds


# ---------------------------------------------------------------- manifest
def update_manifest(out: Path, datasets: list[Resolved], *, preset: str | None, settings: dict[str, Any]) -> dict:
    """Record each dataset (settings, split index ranges, whether its splits exist) in DIR/manifest.json."""
    path = out / MANIFEST
    manifest: dict[str, Any] = {"format": "dpot-generate-manifest", "version": 1, "datasets": {}}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if isinstance(old, dict) and isinstance(old.get("datasets"), dict):
                manifest["datasets"] = old["datasets"]
        except ValueError:
            pass
    from dpot import __version__

    manifest["dpot_version"] = __version__
    for ds in datasets:
        f = ds.family
        splits = {
            s: {
                "n": c,
                "trajectories": [SPLIT_OFFSETS[s], SPLIT_OFFSETS[s] + c],
                "file": f"{ds.spec.name}/{s}.h5",
            }
            for s, c in ds.counts().items()
            if c
        }
        manifest["datasets"][ds.spec.name] = {
            "family": f.name,
            "pde": f.pde,
            "steady": f.steady,
            "channels": f.channels,
            "space": f.space,
            "res": ds.res,
            "frames": ds.frames,
            "dt": ds.dt,
            "params": ds.params,
            "seed": ds.seed,
            "preset": preset,
            "splits": splits,
            "complete": all((out / v["file"]).is_file() for v in splits.values()),
            "settings": settings,
        }
    write_json(path, manifest)
    return manifest


def generate(
    specs: list[DatasetSpec],
    out: str | os.PathLike,
    *,
    seed: int = 0,
    workers: int = 1,
    device: str = "cpu",
    shard: tuple[int, int] = (0, 1),
    part_size: int = 1 << 30,
    preset: str | None = None,
    progress: bool = True,
    log: bool = False,
) -> dict:
    """Generate `specs` under `out`; returns the manifest. Finished files are skipped, so a rerun resumes.

    `workers` > 1 uses spawned processes (a calling script needs the `if __name__ == "__main__":` guard);
    0 picks one per core for large corpora (what the CLI does)."""
    from tqdm import tqdm

    out = Path(out)
    check_writable(out)
    if workers < 0:
        raise DpotError(f"--workers must be >= 0 (0 = one per CPU core for large corpora; got {workers})")
    index, count = shard
    if not 0 <= index < count:
        raise DpotError(f"shard {index}/{count} is invalid: need 0 <= i < n")
    datasets = [resolve(s, seed) for s in specs]
    names = [d.spec.name for d in datasets]
    if len(set(names)) != len(names):
        raise DpotError(f"dataset names must be unique: {names}")
    if count == 1:
        _clean_stale(out, names)
    jobs = assign_shard(plan(datasets, out, part_size), index, count)
    if workers == 0:  # auto: a process per core for real corpora, none for tiny ones
        big = sum(j.cost for j in jobs) >= SMALL_COST and str(device) == "cpu"
        workers = min(os.cpu_count() or 1, 8, len(jobs)) if big else 1
    total = sum(j.n for j in jobs)
    bar = tqdm(
        total=total,
        unit="traj",
        desc=f"generate{'' if count == 1 else f' shard {index}/{count}'}",
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        run_jobs(jobs, workers=workers, device=device, progress=bar.update, log=bar.write if log else None)
    finally:
        bar.close()
    for ds in datasets:
        for split, c in ds.counts().items():
            n_parts = -(-c // part_size) if c else 0
            if n_parts > 1:
                merge_parts(ds, out, split, n_parts, lock=count > 1)
    settings = {"seed": seed, "part_size": part_size if part_size < (1 << 30) else None}
    return update_manifest(out, datasets, preset=preset, settings=settings)
