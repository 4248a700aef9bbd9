"""Solver vs emulator: seconds per output frame of our solver and of a DPOT rollout, per built-in family.

For every family in `dpot.solvers.registry.FAMILIES`, at the same grid and batch:
- solver: `family.simulate(batch, res, frames, ...)` with the `default` corpus' physical settings and at most
  11 stored frames (`--frames`); seconds per output frame = wall time / (frames - 1), initial condition and
  any spin-up included, as `dpot generate` pays them; steady families (inputs -> targets) count their one
  solution as one frame;
- DPOT: `dpot.rollout(model, history, steps)` of a randomly initialised model of `--preset` sized for the
  family (dimension, grid, channels, T_in=10; T_in=1 for steady families, one forward pass), timed after one
  warm-up call; the cost of a rollout does not depend on the weights.
Each is timed `--repeats` times and the best kept (robust to other jobs on a shared machine); a solver run
longer than 10 s is timed once.
Both run with the same torch threads (`--threads`, default 1, as each `dpot generate` worker) on `--device`.

    python benchmarks/emulator.py [--device cpu|cuda] [--preset demo] [--quick]
    -> benchmarks/results/emulator_{cpu,gpu}.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from dpot.machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def family_settings(name: str) -> tuple[int | None, dict[str, Any]]:
    """Frames and physical parameters of the family's first dataset in the `default` corpus (else defaults)."""
    from dpot.solvers.presets import PRESETS

    for spec in PRESETS["default"].datasets:
        if spec.family == name:
            return spec.frames, dict(spec.params)
    return None, {}


def time_solver(
    name: str, res: int, batch: int, frames: int | None, device: torch.device, repeats: int = 1
) -> dict[str, Any]:
    """Seconds per output frame of the family's solver for `batch` trajectories on a `res` grid."""
    from dpot.solvers.jobs import resolve
    from dpot.solvers.presets import DatasetSpec

    preset_frames, params = family_settings(name)
    frames = frames or min(preset_frames or 11, 11)
    ds = resolve(DatasetSpec(name, name, batch, 0, 0, res=res, frames=frames, params=params))
    warm = min(ds.frames, 3)
    ds.family.simulate(1, min(res, 16), warm, 1, device=str(device), **ds.params)
    times = []
    for _ in range(repeats):  # best of `repeats`; one run when it is slow (> 10 s), as repeats would be too
        sync(device)
        t0 = time.perf_counter()
        out = ds.family.simulate(batch, ds.res, ds.frames, ds.seed, device=str(device), **ds.params)
        sync(device)
        times.append(time.perf_counter() - t0)
        if times[-1] > 10:
            break
    seconds = min(times)
    steady = ds.family.steady
    n_out = 1 if steady else ds.frames - 1
    channels = (out.targets if steady else out.fields).shape[-1]
    return {
        "solver_seconds": seconds,
        "solver_runs": len(times),
        "solver_frames": n_out,
        "solver_s_per_frame": seconds / n_out,
        "channels": int(channels),
        "dt": ds.dt,
        "params": ds.params,
    }


def build_emulator(preset: str, ndim: int, res: int, channels: int, t_in: int, device: torch.device):
    """A randomly initialised DPOT of `preset` for a family's shape (eval mode, on `device`)."""
    from dpot.models import DPOT

    model = DPOT.from_preset(
        preset, ndim=ndim, img_size=res, in_channels=channels, out_channels=channels, in_timesteps=t_in
    )
    return model.eval().to(device)


@torch.no_grad()
def time_rollout(model, batch: int, steps: int, device: torch.device, bf16: bool = False, repeats: int = 1) -> float:
    """Seconds per output frame of `dpot.rollout` for `batch` trajectories: best of `repeats` after a warm-up."""
    from dpot.models import rollout

    cfg = model.config
    hist = torch.randn(batch, *cfg.img_size, cfg.in_timesteps, cfg.in_channels, device=device)
    times = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        rollout(model, hist, 1)
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            rollout(model, hist, steps)
            sync(device)
            times.append(time.perf_counter() - t0)
    return min(times) / steps


def bench_family(
    name: str,
    res: int,
    batch: int,
    preset: str,
    steps: int,
    frames: int | None,
    device: torch.device,
    bf16: bool = False,
    repeats: int = 1,
) -> dict[str, Any]:
    """One row: the family's solver and a DPOT rollout at the same grid and batch."""
    from dpot.solvers.registry import get_family

    family = get_family(name)
    solver = time_solver(name, res, batch, frames, device, repeats)
    t_in = 1 if family.steady else 10
    model = build_emulator(preset, len(family.space), res, solver["channels"], t_in, device)
    n_steps = 1 if family.steady else steps
    dpot_s = time_rollout(model, batch, n_steps, device, bf16, repeats)
    return {
        "family": name,
        "ndim": len(family.space),
        "steady": family.steady,
        "res": res,
        "batch": batch,
        **solver,
        "preset": preset,
        "params_dpot": sum(p.numel() for p in model.parameters()),
        "dpot_precision": "bf16 autocast" if bf16 else "fp32",
        "dpot_steps": n_steps,
        "dpot_s_per_frame": dpot_s,
        "solver_over_dpot": solver["solver_s_per_frame"] / dpot_s,
    }


def grids(ndim: int, quick: bool, device: torch.device) -> tuple[int, ...]:
    """Grids to time per dimension: 2D 64 and 128 (256 on a GPU), 3D 16 and 32; `--quick`: the smallest."""
    if ndim == 3:
        return (16,) if quick else (16, 32)
    if ndim == 1:
        return (256,) if quick else (256, 1024)
    if quick:
        return (32,)
    return (64, 128, 256) if device.type == "cuda" else (64, 128)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--preset", default="demo", help="DPOT preset of the emulator (default demo)")
    p.add_argument("--batch", type=int, default=None, help="trajectories per call (default 4 on CPU, 16 on GPU)")
    p.add_argument("--steps", type=int, default=None, help="rollout steps timed (default 10, --quick 2)")
    p.add_argument(
        "--frames",
        type=int,
        default=None,
        help="solver frames incl. t=0 (default: the default corpus', at most 11; --quick 4)",
    )
    p.add_argument("--families", default=None, help="comma-separated subset (default: all registered)")
    p.add_argument("--res", type=int, nargs="+", default=None, help="grids for every family (default per ndim)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for both (default 1)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs of each, best kept (default 3; --quick 1)")
    p.add_argument("--bf16", action="store_true", help="DPOT under bf16 autocast (GPU)")
    p.add_argument("--quick", action="store_true", help="smallest grids, batch 1, few frames: a smoke run")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/emulator_{cpu,gpu}.json)")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: CUDA is not available on this machine; use --device cpu")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from dpot.errors import DpotError
    from dpot.io import write_json
    from dpot.solvers.registry import FAMILIES, get_family

    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    batch = args.batch or (1 if args.quick else 16 if device.type == "cuda" else 4)
    steps = args.steps or (2 if args.quick else 10)
    frames = args.frames or (4 if args.quick else None)
    repeats = args.repeats or (1 if args.quick else 3)
    names = args.families.split(",") if args.families else list(FAMILIES)
    info = machine_info(device)
    out = Path(args.out) if args.out else RESULTS / f"emulator_{'gpu' if device.type == 'cuda' else 'cpu'}.json"
    rows: list[dict[str, Any]] = []

    def save() -> None:  # after every row, so that a run stopped by a time limit keeps what it measured
        info["loadavg_1min_at_end"] = os.getloadavg()[0]
        write_json(
            out,
            {
                "benchmark": "emulator",
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": info,
                "device": str(device),
                "quick": args.quick,
                "settings": {k: v for k, v in vars(args).items()},
                "results": rows,
            },
        )

    for name in names:
        family = get_family(name)
        for res in args.res or grids(len(family.space), args.quick, device):
            try:
                row = bench_family(name, res, batch, args.preset, steps, frames, device, args.bf16, repeats)
            except (DpotError, ValueError) as exc:  # a family that cannot run at this grid: say so, go on
                row = {"family": name, "ndim": len(family.space), "res": res, "batch": batch, "error": str(exc)}
                print(f"{name:24s} {res:4d}: not timed: {exc}", flush=True)
            else:
                print(
                    f"{name:24s} {res:4d}^{row['ndim']} batch {batch}: solver {row['solver_s_per_frame']:.4f} "
                    f"s/frame, DPOT-{args.preset} {row['dpot_s_per_frame']:.4f} s/frame, ratio "
                    f"{row['solver_over_dpot']:.2f}x",
                    flush=True,
                )
            rows.append(row)
            save()
    print(f"wrote {out}")
    return 0 if any("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
