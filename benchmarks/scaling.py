"""Scaling of cost: training-step time and peak memory of DPOT against grid resolution and model size.

One training step = forward + relative-L2 loss (`dpot.evaluation.relative_l2_loss`) + backward + AdamW update,
on random data of the paper's shape (C=4, T_in=10, one output frame), for every (preset, resolution) pair.
Each case runs in a fresh process so that its peak memory is its own:
- CPU: peak resident memory of one step above the resting state (Linux `VmHWM` after resetting it through
  `/proc/self/clear_refs`, with glibc returning large blocks to the OS at once: `MALLOC_MMAP_THRESHOLD_`);
- GPU: `torch.cuda.max_memory_allocated` above the resting allocation.
Step time = the best of `--steps` timed steps after one warm-up step (best: robust to other jobs).

    python benchmarks/scaling.py [--device cpu|cuda] [--presets demo,Ti,S] [--res 64 128 256] [--quick]
    -> benchmarks/results/scaling_{cpu,gpu}.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return math.nan


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_case(preset: str, res: int, batch: int, steps: int, device_name: str, bf16: bool) -> dict[str, Any]:
    """Time `steps` training steps of `preset` at `res`² (in this process) and measure one step's peak memory."""
    import torch

    from dpot.evaluation import relative_l2_loss
    from dpot.models import DPOT

    device = torch.device(device_name)
    torch.manual_seed(0)
    model = DPOT.from_preset(preset, img_size=res, in_channels=4, out_channels=4, in_timesteps=10).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, res, res, 10, 4, generator=g).to(device)
    y = torch.randn(batch, res, res, 1, 4, generator=g).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step() -> float:
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            pred = model(x)
        loss = relative_l2_loss(pred.float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        return time.perf_counter() - t0

    step()  # warm-up: allocator, FFT plans, optimiser state
    times = [step() for _ in range(steps)]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    elif _reset_peak_rss():
        base = _rss_mib("VmRSS")
        step()
        peak = _rss_mib("VmHWM") - base
    else:
        peak = math.nan
    return {
        "preset": preset,
        "res": res,
        "batch": batch,
        "params": sum(p.numel() for p in model.parameters()),
        "tokens": (res // model.config.patch_size) ** 2,
        "precision": "bf16 autocast" if bf16 else "fp32",
        "step_s_best": min(times),
        "step_s_median": sorted(times)[len(times) // 2],
        "samples_per_s": batch / min(times),
        "peak_step_mib": round(peak, 1),
    }


def run_in_subprocess(preset: str, res: int, args: argparse.Namespace, batch: int) -> dict[str, Any]:
    """`run_case` in a fresh interpreter (its own peak memory); an error becomes a row with `error`."""
    cmd = [
        sys.executable,
        __file__,
        "--_case",
        preset,
        str(res),
        "--device",
        args.device,
        "--steps",
        str(args.steps),
        "--batch",
        str(batch),
        "--threads",
        str(args.threads),
    ]
    if args.bf16:
        cmd.append("--bf16")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return {"preset": preset, "res": res, "batch": batch, "error": err}


def growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per preset, step time and memory of each resolution relative to that preset's smallest resolution, with
    the token ratio for comparison (cost linear in tokens would match it)."""
    out = []
    for preset in dict.fromkeys(r["preset"] for r in rows):
        ok = sorted((r for r in rows if r["preset"] == preset and "error" not in r), key=lambda r: r["res"])
        if not ok:
            continue
        b = ok[0]
        for r in ok[1:]:
            out.append(
                {
                    "preset": preset,
                    "from_res": b["res"],
                    "to_res": r["res"],
                    "tokens_x": r["tokens"] / b["tokens"],
                    "time_x": r["step_s_best"] / b["step_s_best"],
                    "memory_x": (r["peak_step_mib"] / b["peak_step_mib"]) if b["peak_step_mib"] else None,
                }
            )
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--presets", default=None, help="comma-separated presets (default demo,Ti,S; --quick demo)")
    p.add_argument("--res", type=int, nargs="+", default=None, help="grids (default 64 128 256; --quick 32 64)")
    p.add_argument("--batch", type=int, default=None, help="batch (default 1 on CPU, 8 on GPU)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per case (default 3, --quick 1)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    p.add_argument("--quick", action="store_true", help="demo preset at 32 and 64 only: a smoke run")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/scaling_{cpu,gpu}.json)")
    p.add_argument("--_case", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            p.error(f"--device {args.device}: CUDA is not available on this machine; use --device cpu")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cuda = args.device.startswith("cuda")
    batch = args.batch = args.batch or (8 if cuda else 1)
    args.steps = args.steps or (1 if args.quick else 3)
    if args._case:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(run_case(args._case[0], int(args._case[1]), batch, args.steps, args.device, args.bf16)))
        return 0
    import torch

    from dpot.io import write_json

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from dpot.machine import machine_info

    torch.set_num_threads(args.threads)
    presets = (args.presets or ("demo" if args.quick else "demo,Ti,S")).split(",")
    grids = args.res or ([32, 64] if args.quick else [64, 128, 256])
    info = machine_info(args.device)
    out = Path(args.out) if args.out else RESULTS / f"scaling_{'gpu' if cuda else 'cpu'}.json"
    rows: list[dict[str, Any]] = []
    for preset in presets:
        for res in grids:
            r = run_in_subprocess(preset.strip(), res, args, batch)
            rows.append(r)
            if "error" in r:
                print(f"{preset:5s} {res:4d}^2: failed: {r['error']}", flush=True)
            else:
                print(
                    f"{preset:5s} {res:4d}^2 batch {batch}: {r['step_s_best']:.3f} s/step, peak "
                    f"{r['peak_step_mib']:.0f} MiB",
                    flush=True,
                )
            info["loadavg_1min_at_end"] = os.getloadavg()[0]
            write_json(
                out,
                {
                    "benchmark": "scaling",
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": info,
                    "device": args.device,
                    "quick": args.quick,
                    "settings": {k: v for k, v in vars(args).items() if not k.startswith("_")},
                    "results": rows,
                    "growth": growth(rows),
                },
            )  # after every case (time limits)
    print(f"wrote {out}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
