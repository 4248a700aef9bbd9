"""Every GPU measurement in one run of under 8 minutes, so that a short GPU slot is enough.

Parts, each a subprocess in its own process group with its own time limit (the limits add up to less than
`--budget`; a part that runs over is killed with everything it started), each writing its JSON itself as soon
as it has a result:
1. compare: `benchmarks/compare.py`: Ti and S at 128², batch 16, ours vs the reference (`--reference PATH`)
   like-for-like: both fp32 eager (TF32 off), both bf16 autocast, both bf16 + torch.compile (where the
   reference compiles), plus the combined ratio; CUDA events, median of >= 20 iterations; peak memory
   -> compare_gpu.json;
2. train: `benchmarks/train.py` on a `tiny` corpus generated on the GPU (real Trainer steps) -> train_gpu.json;
3. emulator: `benchmarks/emulator.py --device cuda` (solver vs DPOT rollout per frame) -> emulator_gpu.json;
4. scaling: `benchmarks/scaling.py --device cuda` (step time and memory vs grid and size) -> scaling_gpu.json;
5. solvers: `benchmarks/solvers.py --device cuda --skip-generate` -> solvers_gpu.json.
Then `benchmarks/run.py --docs-only` rebuilds docs/benchmarks.md from all results; gpu_run_gpu.json logs the
parts (seconds, ok, the tail of a failed part's output).

    python benchmarks/gpu.py [--reference /path/to/DPOT]          # on a CUDA machine, < 8 min
    python benchmarks/gpu.py --device cpu --quick --out-dir /tmp/g   # the same code paths on a CPU (smoke)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARTS = ("compare", "train", "emulator", "scaling", "solvers")
# Seconds per part (a hard limit each); with the corpus generation they add up to less than the budget.
LIMITS = {"generate": 20, "compare": 190, "train": 70, "emulator": 60, "scaling": 45, "solvers": 45}
BUDGET = 450.0


def run_part(name: str, cmd: list[str], timeout: float, log: list[dict[str, Any]]) -> bool:
    """Run one part in its own process group with a time limit (on expiry the whole group is killed); record
    its wall time and outcome in `log`."""
    t0 = time.perf_counter()
    print(f"[gpu] {name} (limit {timeout:.0f} s): {' '.join(cmd[1:])}", flush=True)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=max(timeout, 1))
        ok = proc.returncode == 0
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the part and every process it started (compile workers, ...)
        out, _ = proc.communicate()
        out, ok = (out or "") + f"\n(timed out after {timeout:.0f} s: process group killed)", False
    tail = (out or "")[-1500:]
    print(tail, flush=True)
    log.append(
        {
            "part": name,
            "ok": ok,
            "limit_s": timeout,
            "seconds": round(time.perf_counter() - t0, 1),
            **({} if ok else {"tail": tail[-600:]}),
        }
    )
    return ok


def plan(args: argparse.Namespace, out: Path, data: Path) -> list[tuple[str, list[str], float]]:
    """(part, command, time limit in seconds) for every selected part."""
    py, q = sys.executable, args.quick
    cuda = args.device.startswith("cuda")
    parts: dict[str, list[str]] = {}
    compare = [
        py,
        str(HERE / "compare.py"),
        "--device",
        args.device,
        "--out",
        str(out / f"compare_{args.kind}.json"),
        "--budget",
        str(LIMITS["compare"] - 10),
    ]
    compare += ["--presets", "demo", "--res", "32", "--batch", "1", "--iters", "2"] if q else []
    compare += ["--no-compile"] if q and not cuda else []
    compare += ["--reference", args.reference] if args.reference else []
    compare += ["--tf32"] if args.tf32 else []
    parts["compare"] = compare
    parts["train"] = [
        py,
        str(HERE / "train.py"),
        "--data",
        str(data),
        "--steps",
        "2" if q else "10",
        "--warmup",
        "1" if q else "3",
        "--out",
        str(out / f"train_{args.kind}.json"),
    ] + (["--presets", "demo"] if q else [])
    emu = [py, str(HERE / "emulator.py"), "--device", args.device, "--out", str(out / f"emulator_{args.kind}.json")]
    parts["emulator"] = emu + (["--quick"] if q else [])
    sc = [py, str(HERE / "scaling.py"), "--device", args.device, "--out", str(out / f"scaling_{args.kind}.json")]
    parts["scaling"] = sc + (["--quick"] if q else [])
    parts["solvers"] = [
        py,
        str(HERE / "solvers.py"),
        "--device",
        args.device,
        "--skip-generate",
        "--out",
        str(out / f"solvers_{args.kind}.json"),
    ]
    if q:
        parts["solvers"] += ["--families", "diffusion_reaction_2d", "--res", "16", "--n", "1"]
    return [(name, parts[name], LIMITS[name]) for name in args.parts]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke runs of the same paths)")
    p.add_argument("--reference", default=None, help="checkout of the reference DPOT repo (needs einops)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 in the comparison (both contenders)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--quick", action="store_true", help="tiny sizes everywhere (with --device cpu: a smoke test)")
    p.add_argument("--out-dir", default=None, help="where the JSON files go (default benchmarks/results)")
    p.add_argument("--no-docs", action="store_true", help="do not rebuild docs/benchmarks.md at the end")
    args = p.parse_args(argv)
    args.parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    unknown = [s for s in args.parts if s not in PARTS]
    if unknown:
        p.error(f"--parts: unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    args.kind = "gpu" if args.device.startswith("cuda") else "cpu"
    if args.kind == "gpu":
        import torch

        if not torch.cuda.is_available():
            p.error("no CUDA device visible to torch; on a CPU use --device cpu --quick (smoke run)")
    if args.kind == "cpu" and not args.out_dir:
        p.error("--device cpu writes *_cpu.json over the CPU suite's results; give --out-dir DIR")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from dpot.io import write_json

    args = parse_args(argv)
    out = Path(args.out_dir) if args.out_dir else HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    log: list[dict[str, Any]] = []

    def summary() -> dict[str, Any]:
        return {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device": args.device,
            "quick": args.quick,
            "budget_s": BUDGET,
            "limits_s": LIMITS,
            "wall_s": round(time.perf_counter() - t_start, 1),
            "parts": log,
        }

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "tiny"
        if "train" in args.parts:  # a few seconds: every family on tiny grids
            run_part(
                "generate tiny",
                [
                    sys.executable,
                    "-m",
                    "dpot",
                    "generate",
                    "tiny",
                    "--out",
                    str(data),
                    "--quiet",
                    "--device",
                    args.device,
                ],
                LIMITS["generate"],
                log,
            )
        for name, cmd, limit in plan(args, out, data):
            run_part(name, cmd, limit, log)
            write_json(out / f"gpu_run_{args.kind}.json", summary())  # the log so far, after every part
    if not args.no_docs and args.kind == "gpu":
        subprocess.run(
            [sys.executable, str(HERE / "run.py"), "--docs-only", "--out-dir", str(out)], cwd=ROOT, check=False
        )
    s = summary()
    print(
        f"[gpu] done in {s['wall_s']:.0f} s: " + ", ".join(f"{p['part']} {'ok' if p['ok'] else 'FAILED'}" for p in log)
    )
    return 0 if all(p["ok"] for p in log) else 1


if __name__ == "__main__":
    sys.exit(main())
