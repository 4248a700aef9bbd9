"""Every GPU measurement in one run of under 8 minutes, so that a short GPU slot is enough.

Parts (each a subprocess with its own time limit; the run stops starting parts when the budget is spent):
1. model: `benchmarks/model.py --gpu` (ours with bf16 autocast + torch.compile, against the reference in
   fp32 when `--reference PATH` is given; same weights and input) -> model_gpu.json;
2. precision: ours in fp32 eager and bf16-autocast eager (and the reference in fp32 and bf16), forward and
   training step, same presets/batch/grid as part 1, so that fp32 / bf16 / bf16+compile sit side by side
   -> precision_gpu.json;
3. train: `benchmarks/train.py` on a `tiny` corpus generated on the GPU (real Trainer steps, loader vs
   compute only) -> train_gpu.json;
4. emulator: `benchmarks/emulator.py --device cuda` (solver vs DPOT rollout per frame) -> emulator_gpu.json;
5. scaling: `benchmarks/scaling.py --device cuda` (step time and memory vs grid and size) -> scaling_gpu.json;
6. solvers: `benchmarks/solvers.py --device cuda --skip-generate` -> solvers_gpu.json.
Then `benchmarks/run.py --docs-only` rebuilds docs/benchmarks.md from all results.

    python benchmarks/gpu.py [--reference /path/to/DPOT]          # on a CUDA machine, < 8 min
    python benchmarks/gpu.py --device cpu --quick --out-dir /tmp/g   # the same code paths on a CPU (smoke)
"""

from __future__ import annotations

import argparse
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
PARTS = ("model", "precision", "train", "emulator", "scaling", "solvers")


def precision_case(preset: str, res: int, batch: int, repeats: int, device_name: str,
                   reference: str | None) -> list[dict[str, Any]]:
    """Forward and training-step time of ours (fp32, bf16) and the reference (fp32, bf16), same weights/input."""
    import torch

    sys.path.insert(0, str(HERE))
    from model import Runner, build

    device = torch.device(device_name)
    ns = argparse.Namespace(res=res, batch=batch, reference=reference)
    cfg, ours, ref, x, y = build(preset, ns, device)
    variants = [("ours", ours, ours)]
    if ref is not None:
        variants.append(("reference", ref, lambda inp: ref(inp)[0]))
    rows = []
    for who, model, call in variants:
        for bf16 in (False, True):
            row = {"preset": preset, "model": who, "mode": "bf16 autocast" if bf16 else "fp32",
                   "params": sum(p.numel() for p in model.parameters()), "batch": batch, "res": res}
            r = Runner(who, model, call, device, bf16)
            try:
                r.forward_time(x)
                r.train_time(x, y)
                for _ in range(repeats):
                    wall, cpu = r.forward_time(x)
                    r.fwd.append(wall)
                    r.fwd_cpu.append(cpu)
                    wall, cpu = r.train_time(x, y)
                    r.train.append(wall)
                    r.train_cpu.append(cpu)
                r.peak_mb = r.measure_memory(x, y) if device.type == "cuda" else float("nan")
            except (RuntimeError, NotImplementedError) as exc:  # e.g. an op without bf16 support: record it
                rows.append({**row, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"})
                continue
            rows.append({**row, **r.summary(batch)})
    return rows


def run_part(name: str, cmd: list[str], timeout: float, log: list[dict[str, Any]]) -> bool:
    """Run one part as a subprocess with a time limit; record its wall time and outcome in `log`."""
    t0 = time.perf_counter()
    print(f"[gpu] {name}: {' '.join(cmd[1:])}", flush=True)
    try:
        proc = subprocess.run(cmd, cwd=ROOT, timeout=max(timeout, 1), check=False, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        ok, tail = proc.returncode == 0, proc.stdout[-1500:]
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        ok, tail = False, out[-1500:] + f"\n(timed out after {timeout:.0f} s)"
    print(tail, flush=True)
    log.append({"part": name, "ok": ok, "seconds": round(time.perf_counter() - t0, 1),
                **({} if ok else {"tail": tail[-600:]})})
    return ok


def plan(args: argparse.Namespace, out: Path, data: Path) -> list[tuple[str, list[str], float]]:
    """(part, command, share of the budget) for every selected part."""
    py, q = sys.executable, args.quick
    cuda = args.device.startswith("cuda")
    presets = "demo" if q else "Ti,S"
    parts: dict[str, tuple[list[str], float]] = {}
    model = [py, str(HERE / "model.py"), "--presets", presets, "--repeats", "1" if q else "5",
             "--out", str(out / f"model_{args.kind}.json")]
    if cuda:
        model.append("--gpu")
    else:
        model += ["--res", "32" if q else "128", "--batch", "1" if q else "2"]
    if args.reference:
        model += ["--reference", args.reference]
    parts["model"] = (model, 0.35)  # torch.compile of Ti and S: the longest part
    prec = [py, __file__, "--_precision", presets, "--device", args.device, "--out-dir", str(out)]
    if q:
        prec.append("--quick")
    if args.reference:
        prec += ["--reference", args.reference]
    parts["precision"] = (prec, 0.08)
    parts["train"] = ([py, str(HERE / "train.py"), "--data", str(data), "--steps", "2" if q else "10",
                       "--warmup", "1" if q else "3", "--out", str(out / f"train_{args.kind}.json")]
                      + (["--presets", "demo"] if q else []), 0.10)
    emu = [py, str(HERE / "emulator.py"), "--device", args.device, "--out", str(out / f"emulator_{args.kind}.json")]
    parts["emulator"] = (emu + (["--quick"] if q else []), 0.20)
    sc = [py, str(HERE / "scaling.py"), "--device", args.device, "--out", str(out / f"scaling_{args.kind}.json")]
    parts["scaling"] = (sc + (["--quick"] if q else []), 0.15)
    if cuda:  # solvers.py writes to benchmarks/results itself; on a CPU run.py measures the solvers
        parts["solvers"] = ([py, str(HERE / "solvers.py"), "--device", args.device, "--skip-generate"], 0.10)
    return [(name, *parts[name]) for name in args.parts if name in parts]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke runs of the same paths)")
    p.add_argument("--reference", default=None, help="checkout of the reference DPOT repo (needs einops)")
    p.add_argument("--budget", type=float, default=450.0, help="seconds for all parts (default 450 = 7.5 min)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--quick", action="store_true", help="tiny sizes everywhere (with --device cpu: a smoke test)")
    p.add_argument("--out-dir", default=None, help="where the JSON files go (default benchmarks/results)")
    p.add_argument("--no-docs", action="store_true", help="do not rebuild docs/benchmarks.md at the end")
    p.add_argument("--_precision", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    unknown = [s for s in args.parts if s not in PARTS]
    if unknown:
        p.error(f"--parts: unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    args.kind = "gpu" if args.device.startswith("cuda") else "cpu"
    if args.kind == "gpu" or args._precision:
        import torch

        if args.kind == "gpu" and not torch.cuda.is_available():
            p.error("no CUDA device visible to torch; on a CPU use --device cpu --quick (smoke run)")
    if args.kind == "cpu" and not args.out_dir and not args._precision:
        p.error("--device cpu writes *_cpu.json over the CPU suite's results; give --out-dir DIR")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from dpot.io import write_json

    args = parse_args(argv)
    out = Path(args.out_dir) if args.out_dir else HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    if args._precision:
        sys.path.insert(0, str(HERE))
        from dpot.machine import machine_info

        q = args.quick
        rows = []
        for preset in args._precision.split(","):
            rows += precision_case(preset, 32 if q else 128, 1 if q else (16 if args.kind == "gpu" else 2),
                                   1 if q else 5, args.device, args.reference)
        write_json(out / f"precision_{args.kind}.json",
                   {"benchmark": "precision", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine_info(args.device), "device": args.device, "results": rows})
        return 0
    t_start = time.perf_counter()
    log: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "tiny"
        if "train" in args.parts:  # a few seconds: every family on tiny grids
            run_part("generate tiny", [sys.executable, "-m", "dpot", "generate", "tiny", "--out", str(data),
                                       "--quiet", "--device", args.device], 60, log)
        for name, cmd, share in plan(args, out, data):
            left = args.budget - (time.perf_counter() - t_start)
            if left < 20:
                log.append({"part": name, "ok": False, "seconds": 0, "tail": "skipped: time budget spent"})
                print(f"[gpu] {name}: skipped, {args.budget:.0f} s budget spent", flush=True)
                continue
            run_part(name, cmd, min(left, max(share * args.budget * 1.5, 60)), log)
    summary = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": args.device,
               "quick": args.quick, "budget_s": args.budget, "wall_s": round(time.perf_counter() - t_start, 1),
               "parts": log}
    write_json(out / f"gpu_run_{args.kind}.json", summary)
    if not args.no_docs and args.kind == "gpu":
        subprocess.run([sys.executable, str(HERE / "run.py"), "--docs-only", "--out-dir", str(out)], cwd=ROOT,
                       check=False)
    print(f"[gpu] done in {summary['wall_s']:.0f} s: " + ", ".join(f"{p['part']} {'ok' if p['ok'] else 'FAILED'}"
                                                                  for p in log))
    return 0 if all(p["ok"] for p in log) else 1


if __name__ == "__main__":
    sys.exit(main())
