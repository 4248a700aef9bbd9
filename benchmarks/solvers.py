"""Solver speed: seconds per trajectory for every registered family at 64^2 and 128^2 (3D families at 16^3 and
32^3), with the frame counts and physical settings of the `default` preset, and the wall time of
`dpot generate default`.

Each family runs a batch of `--n` trajectories single-threaded (as each `dpot generate` worker does); the
rate is (seconds for the batch) / n, excluding disk writes. The machine's load average is recorded: other work
on a shared machine slows every row. Results: a table on stdout and
`benchmarks/results/solvers_<device>.json`.

    python benchmarks/solvers.py [--n 8] [--device cpu] [--skip-generate] [--families a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dpot.io import write_json
from dpot.machine import machine_info
from dpot.solvers.jobs import resolve
from dpot.solvers.presets import PRESETS, DatasetSpec
from dpot.solvers.registry import FAMILIES

RESULTS = Path(__file__).resolve().parent / "results"


def preset_settings(family: str) -> DatasetSpec:
    """The first `default` dataset of the family (its frames and parameters), else the family defaults."""
    for spec in PRESETS["default"].datasets:
        if spec.family == family:
            return spec
    return DatasetSpec(family, family, 1, 0, 0)


def time_family(name: str, res: int, n: int, device: str) -> dict:
    spec = preset_settings(name)
    ds = resolve(DatasetSpec(spec.name, name, n, 0, 0, res=res, frames=spec.frames, params=spec.params))
    ds.family.simulate(1, min(res, 16), min(ds.frames, 2), 0, device=device, **ds.params)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    ds.family.simulate(n, ds.res, ds.frames, ds.seed, device=device, **ds.params)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {
        "family": name,
        "dataset_settings": spec.name,
        "res": res,
        "frames": ds.frames,
        "dt": ds.dt,
        "params": ds.params,
        "n": n,
        "seconds": round(seconds, 3),
        "seconds_per_trajectory": round(seconds / n, 4),
    }


def time_generate_default(workers: int) -> dict:
    """Wall and CPU time of `dpot generate default` into a fresh temporary folder (then deleted)."""
    cmd = [sys.executable, "-m", "dpot", "generate", "default", "--quiet", "--workers", str(workers), "--out"]
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([*cmd, tmp], check=True)
        seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*.h5"))
    spec = PRESETS["default"]
    return {
        "seconds": round(seconds, 1),
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "workers": workers,
        "datasets": len(spec.datasets),
        "trajectories": sum(d.n_train + d.n_val + d.n_test for d in spec.datasets),
        "gib": round(size / 2**30, 3),
        "loadavg_1min_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8, help="trajectories per timed batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--families", help="comma-separated subset (default: all; none: only `dpot generate`)")
    parser.add_argument("--skip-generate", action="store_true", help="do not time `dpot generate default`")
    parser.add_argument("--workers", type=int, default=0, help="workers for `dpot generate default` (0 = auto)")
    parser.add_argument("--res", type=int, default=None, help="one grid size (default 64 and 128; 3D 16 and 32)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/solvers_{cpu,gpu}.json)")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    names = list(FAMILIES) if not args.families else [] if args.families == "none" else args.families.split(",")
    kind = "cpu" if args.device == "cpu" else "gpu"
    path = Path(args.out) if args.out else RESULTS / f"solvers_{kind}.json"
    # rows of families not measured in this run are kept, so slow families can be timed separately
    old = json.loads(path.read_text()) if path.is_file() else {}
    info = machine_info(args.device)
    rows: list[dict] = []

    def save() -> dict:
        fresh = {(r["family"], r["res"]) for r in rows}
        kept = [r for r in old.get("families", []) if (r["family"], r["res"]) not in fresh]
        result = {**old, "machine": info, "torch_threads": torch.get_num_threads(), "families": kept + rows}
        write_json(path, result)  # after every row: a run cut short keeps what it measured
        return result

    for name in names:
        space = len(FAMILIES[name].space)
        for res in [args.res] if args.res else (16, 32) if space == 3 else (64, 128):
            row = time_family(name, res, args.n, args.device)
            row["loadavg_1min"] = info["loadavg_1min_at_start"]
            rows.append(row)
            rate = row["seconds_per_trajectory"]
            print(f"{name:24s} {res:4d}^{space}  {row['frames']:4d} frames  {rate:8.3f} s/traj", flush=True)
            save()
    result = save()
    if not args.skip_generate:
        result["generate_default"] = time_generate_default(args.workers)
        g = result["generate_default"]
        print(f"dpot generate default: {g['seconds']} s wall, {g['cpu_seconds']} CPU-s")
    result["machine"]["loadavg_1min_at_end"] = os.getloadavg()[0]
    write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
