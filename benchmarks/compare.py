"""Like-for-like model timings, ours vs the reference DPOTNet: same weights, input, precision and TF32 policy.

    python benchmarks/compare.py --reference /path/to/DPOT --out compare_gpu.json   # CUDA: Ti and S, batch 16
    python benchmarks/compare.py --device cpu --presets demo --res 32 --batch 1 --iters 2 --out /tmp/c.json

Modes, in this order (cheap ones first, so that a cut-short run still has them): fp32 eager, bf16-autocast eager
(each preset), then bf16 autocast + torch.compile (each preset; the reference too, where it compiles). Ratios
are reference time / our time in the SAME mode (like-for-like), plus the combined one: the reference in fp32
eager against ours in bf16 + compile. TF32 is set once for the whole process (off unless `--tf32`) and recorded,
so both contenders always run under the same policy. A training step = forward + relative-L2 loss + backward.
Timing: CUDA events around each of `--iters` (>= 20 on a GPU) iterations after warm-up; the median is reported.
Peak memory = `torch.cuda.max_memory_allocated` during one training step, above the resting allocation.
The JSON is rewritten after every row, so a run stopped by its time limit keeps what it measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from model import build  # noqa: E402  (benchmarks/model.py: same weights and input for both contenders)

MODES = (("fp32 eager", False, False), ("bf16 eager", True, False), ("bf16 + compile", True, True))


def set_tf32(enabled: bool) -> dict[str, Any]:
    """Apply one TF32 policy to the whole process (both contenders) and return it as recorded."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    return {
        "cuda_matmul_allow_tf32": enabled,
        "cudnn_allow_tf32": enabled,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def median_ms(fn: Callable[[], None], iters: int, device: torch.device, warmup: int = 3) -> float:
    """Median milliseconds of `fn` over `iters` runs: CUDA events on a GPU, perf_counter on a CPU."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def steps(model: torch.nn.Module, call: Callable, x: torch.Tensor, y: torch.Tensor, bf16: bool):
    """(forward, training step) closures of one contender in one precision."""
    ctx = lambda: torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16)  # noqa: E731

    def forward() -> None:
        with torch.no_grad(), ctx():
            call(x)

    def train() -> None:
        with ctx():
            pred = call(x)
        diff = (pred.float() - y).flatten(1, -2)
        (diff.norm(dim=1) / y.flatten(1, -2).norm(dim=1)).mean().backward()
        model.zero_grad(set_to_none=True)

    return forward, train


def peak_mib(train: Callable[[], None], device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    train()
    torch.cuda.synchronize(device)
    return round((torch.cuda.max_memory_allocated(device) - base) / 2**20, 1)


def measure(who: str, model, call, x, y, mode: tuple[str, bool, bool], args, t_end: float) -> dict[str, Any]:
    """One row: median forward and training-step time of one contender in one mode (or why it has none)."""
    name, bf16, compiled = mode
    row: dict[str, Any] = {"model": who, "mode": name}
    if compiled and time.monotonic() > t_end - args.compile_reserve:
        return {**row, "error": "skipped: time budget nearly spent"}
    try:
        if compiled:
            t0 = time.perf_counter()
            call = torch.compile(call)
            forward, train = steps(model, call, x, y, bf16)
            train()  # compile forward and backward outside the timings
            forward()
            row["compile_s"] = round(time.perf_counter() - t0, 1)
        else:
            forward, train = steps(model, call, x, y, bf16)
        row["fwd_ms"] = median_ms(forward, args.iters, x.device)
        row["train_ms"] = median_ms(train, args.iters, x.device)
        row["train_samples_per_s"] = x.shape[0] / row["train_ms"] * 1e3
        row["peak_train_mib"] = peak_mib(train, x.device)
        with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            row["_out"] = call(x).float()
    except Exception as exc:  # an op without bf16 support, a failed compile: recorded, the run goes on
        row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc) else ''}"
        if compiled:
            torch._dynamo.reset()  # a half-built graph must not leak into the next contender
    finally:
        model.zero_grad(set_to_none=True)
    return row


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """reference / ours training-step time per preset: like-for-like per mode, and the combined one."""
    ok = {(r["preset"], r["model"], r["mode"]): r["train_ms"] for r in rows if "train_ms" in r}
    out = []
    for preset in dict.fromkeys(r["preset"] for r in rows):
        for mode, _, _ in MODES:
            if (preset, "ours", mode) in ok and (preset, "reference", mode) in ok:
                out.append(
                    {
                        "preset": preset,
                        "what": f"like-for-like, {mode}",
                        "train_x": ok[(preset, "reference", mode)] / ok[(preset, "ours", mode)],
                    }
                )
        if (preset, "ours", "bf16 + compile") in ok and (preset, "reference", "fp32 eager") in ok:
            out.append(
                {
                    "preset": preset,
                    "what": "combined: ours bf16 + compile vs reference fp32 eager",
                    "train_x": ok[(preset, "reference", "fp32 eager")] / ok[(preset, "ours", "bf16 + compile")],
                }
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from dpot.io import write_json
    from dpot.machine import machine_info

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--presets", default="Ti,S")
    p.add_argument("--res", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--iters", type=int, default=20, help="timed iterations per row (median; >= 20 on a GPU)")
    p.add_argument("--reference", default=None, help="checkout of the reference DPOT repo (needs einops)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 (both contenders); default off")
    p.add_argument("--no-compile", action="store_true", help="skip the compiled rows (CPU smoke runs)")
    p.add_argument("--budget", type=float, default=1e9, help="seconds; compiled rows are skipped near the end")
    p.add_argument("--compile-reserve", type=float, default=60.0, help=argparse.SUPPRESS)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    t_end = time.monotonic() + args.budget
    device = torch.device(args.device)
    tf32 = set_tf32(args.tf32)
    presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    doc: dict[str, Any] = {
        "benchmark": "compare",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(args.device),
        "device": args.device,
        "tf32": tf32,
        "settings": {k: v for k, v in vars(args).items() if k != "compile_reserve"},
        "reference": bool(args.reference),
        "results": [],
        "ratios": [],
    }
    models = {name: build(name, args, device) for name in presets}
    fp32_out: dict[tuple[str, str], torch.Tensor] = {}
    order = [(m, name) for m in MODES[:2] for name in presets]
    order += [] if args.no_compile else [(MODES[2], name) for name in presets]
    for mode, name in order:
        cfg, ours, ref, x, y = models[name]
        contenders = [("ours", ours, ours)] + ([("reference", ref, lambda inp, r=ref: r(inp)[0])] if ref else [])
        for who, model, call in contenders:
            row = {
                "preset": name,
                "params": sum(q.numel() for q in model.parameters()),
                "batch": args.batch,
                "res": args.res,
                **measure(who, model, call, x, y, mode, args, t_end),
            }
            out = row.pop("_out", None)
            if out is not None:
                if mode[0] == "fp32 eager":
                    fp32_out[(name, who)] = out
                base = fp32_out.get((name, "reference"), fp32_out.get((name, "ours")))
                if base is not None:
                    row["rel_l2_vs_fp32"] = ((out - base).norm() / base.norm()).item()
            doc["results"].append(row)
            doc["ratios"] = ratios(doc["results"])
            write_json(Path(args.out), doc)
            timing = f"train {row['train_ms']:.2f} ms" if "train_ms" in row else row.get("error", "")
            print(f"[compare] {name} {who:9s} {mode[0]:15s} {timing}", flush=True)
    for r in doc["ratios"]:
        print(f"[compare] {r['preset']} {r['what']}: {r['train_x']:.2f}x", flush=True)
    return 0 if any("train_ms" in r for r in doc["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
