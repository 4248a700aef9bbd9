"""The performance suite: run every benchmark, then write `docs/benchmarks.md` from the JSON results.

    python benchmarks/run.py                         # the CPU suite -> benchmarks/results/*_cpu.json + docs
    python benchmarks/run.py --reference ~/DPOT      # model rows side by side with the reference code
    python benchmarks/run.py --only emulator,scaling # a subset (the docs still show every result on disk)
    python benchmarks/run.py --docs-only             # rebuild docs/benchmarks.md from benchmarks/results
    python benchmarks/run.py --quick                 # smoke run: tiny sizes, results and docs in a temp dir
    python benchmarks/gpu.py                         # the GPU measurements (one run, < 8 min)

Parts (each its own script, run as a subprocess so that timings and peak memory are its own):
model (`model.py`), data (`data.py`), solvers (`solvers.py`), train (`train.py`, on `--data` or a freshly
generated corpus), emulator (`emulator.py`), scaling (`scaling.py`).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dpot.machine import machine_label
from dpot.models.presets import REFERENCE_PARAMS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DOC = ROOT / "docs" / "benchmarks.md"
PARTS = ("model", "data", "solvers", "train", "emulator", "scaling")


# ------------------------------------------------------------------------------------------------ running
def commands(args: argparse.Namespace, out: Path, data: Path) -> dict[str, list[str]]:
    """The command of every part, writing its JSON under `out` (solvers.py always writes to results/)."""
    py, q = sys.executable, args.quick
    cmds = {
        "model": [py, str(HERE / "model.py"), "--out", str(out / "model_cpu.json"), "--threads", "1"]
        + (["--presets", "demo", "--res", "32", "--batch", "1", "--repeats", "1"] if q else ["--presets", "Ti,S,M"])
        + (["--reference", args.reference] if args.reference else []),
        "data": [py, str(HERE / "data.py"), "--out", str(out / "data_cpu.json")]
        + (["--gb", "0.02", "--seconds", "0.5"] if q else []),
        "solvers": [py, str(HERE / "solvers.py")],
        "train": [py, str(HERE / "train.py"), "--data", str(data), "--out", str(out / "train_cpu.json")]
        + (["--presets", "demo", "--steps", "1", "--warmup", "1"] if q else []),
        "emulator": [py, str(HERE / "emulator.py"), "--out", str(out / "emulator_cpu.json")]
        + (["--quick"] if q else []),
        "scaling": [py, str(HERE / "scaling.py"), "--out", str(out / "scaling_cpu.json")] + (["--quick"] if q else []),
    }
    return {k: v for k, v in cmds.items() if k in args.only}


def run_suite(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    """Run the selected parts one after another; returns (part, ok, seconds) records."""
    log = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "corpus"
        if "train" in args.only and not args.data:
            preset = "tiny" if args.quick else "default"
            print(f"[run] generating the {preset!r} corpus for the training benchmark", flush=True)
            subprocess.run(
                [sys.executable, "-m", "dpot", "generate", preset, "--out", str(data), "--quiet"], check=True, cwd=ROOT
            )
        for name, cmd in commands(args, out, data).items():
            if args.quick and name == "solvers":
                print("[run] solvers: skipped in --quick (solvers.py always writes benchmarks/results)", flush=True)
                continue
            print(f"[run] {name}: {' '.join(cmd[1:])}", flush=True)
            t0 = time.perf_counter()
            ok = subprocess.run(cmd, cwd=ROOT, check=False).returncode == 0
            log.append({"part": name, "ok": ok, "seconds": round(time.perf_counter() - t0, 1)})
            print(f"[run] {name}: {'ok' if ok else 'FAILED'} in {log[-1]['seconds']:.0f} s", flush=True)
    return log


# ------------------------------------------------------------------------------------------------- tables
def table(head: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; floats are printed with 3 significant digits."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:.3g}"
        return "–" if v is None else str(v)

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _where(d: dict[str, Any]) -> str:
    date = d.get("date")
    return f"Machine: {machine_label(d.get('machine', {}))}" + (f"; {date}." if date else ".")


def section_model(d: dict[str, Any]) -> list[str]:
    rows, verdicts = [], []
    for r in d["results"]:
        s = r.get("speedup_vs_reference", {})
        o, ref = r["ours"], r.get("reference", {})
        rows.append(
            [
                r["preset"],
                f"{r['params']:,}",
                r.get("ours_mode", ""),
                o["fwd_samples_per_s"],
                ref.get("fwd_samples_per_s"),
                o["train_samples_per_s"],
                ref.get("train_samples_per_s"),
                s.get("fwd_s_best"),
                s.get("train_s_best"),
                s.get("train_cpu_s_best"),
                o["peak_train_mem_mb"],
                ref.get("peak_train_mem_mb"),
                r.get("output_diff_fp32", {}).get("rel_l2"),
            ]
        )
        if s:
            verdicts.append(
                f"{r['preset']}: training step {s['train_s_best']:.2f}× the reference's throughput "
                f"(wall, best of {d['settings'].get('repeats', '?')}; {s['train_cpu_s_best']:.2f}× by "
                "CPU time)"
            )
    st = d.get("settings", {})
    lines = [
        _where(d) + f" Batch {st.get('batch')}, {st.get('res')}², C=4, T_in=10.",
        "",
        table(
            [
                "preset",
                "params",
                "ours",
                "fwd/s ours",
                "fwd/s ref",
                "train/s ours",
                "train/s ref",
                "× fwd",
                "× train",
                "× train (CPU time)",
                "peak MB ours",
                "peak MB ref",
                "rel. diff",
            ],
            rows,
        ),
        "",
    ]
    if verdicts:
        ti = next((r for r in d["results"] if r["preset"] == "Ti" and "speedup_vs_reference" in r), None)
        target = ""
        if ti:
            x = ti["speedup_vs_reference"]["train_s_best"]
            target = f" Target (Ti ≥ 1.3× on CPU fp32): {'met' if x >= 1.3 else 'NOT met'} ({x:.2f}×)."
        lines += ["Ratios are ours / reference (samples/s). " + "; ".join(verdicts) + "." + target, ""]
    missing = [p for p in REFERENCE_PARAMS if p not in {r["preset"] for r in d["results"]}]
    if missing and d.get("machine", {}).get("gpu") is None:
        sizes = ", ".join(f"{p} {REFERENCE_PARAMS[p] / 1e6:.0f}M" for p in missing)
        lines += [
            f"Not measured on the CPU: {sizes} parameters (ours and the reference with AdamW state in one "
            "process need about 16 GB for L and 33 GB for H before activations: too close to or beyond "
            "this 24 GB machine). Their parameter counts match the reference exactly (tests); "
            "`benchmarks/model.py --presets L` measures one on a larger machine.",
            "",
        ]
    return lines


def section_compare(d: dict[str, Any]) -> list[str]:
    """Ours vs the reference per mode (fp32, bf16, bf16 + compile) and the like-for-like ratios."""
    rows = [
        [
            r["preset"],
            r["model"],
            r["mode"],
            r.get("fwd_ms"),
            r.get("train_ms"),
            r.get("train_samples_per_s"),
            r.get("peak_train_mib"),
            r.get("compile_s"),
            r.get("rel_l2_vs_fp32"),
            r.get("error", ""),
        ]
        for r in d["results"]
    ]
    first = d["results"][0] if d["results"] else {}
    tf = d.get("tf32", {})
    lines = [
        _where(d) + f" Batch {first.get('batch')}, {first.get('res')}², C=4, T_in=10; median of "
        f"{d.get('settings', {}).get('iters')} iterations (CUDA events); TF32 "
        f"{'on' if tf.get('cuda_matmul_allow_tf32') else 'off'} for both contenders.",
        "",
        table(
            [
                "preset",
                "model",
                "mode",
                "fwd ms",
                "train ms",
                "train samples/s",
                "peak MiB",
                "compile s",
                "rel. diff vs fp32",
                "error",
            ],
            rows,
        ),
        "",
    ]
    if d.get("ratios"):
        lines += [
            table(
                ["preset", "ratio (reference time / ours)", "× train"],
                [[r["preset"], r["what"], f"{r['train_x']:.2f}×"] for r in d["ratios"]],
            ),
            "",
        ]
    elif not d.get("reference"):
        lines += ["No ratios: run with `--reference PATH` (a checkout of the reference code) to time it too.", ""]
    return lines


def section_roofline(d: dict[str, Any]) -> list[str]:
    """One fp32 training step against the same process's matmul rate (see `benchmarks/model.py --roofline`)."""
    rows = [
        [
            r["preset"],
            r["batch"],
            f"{r['res']}²",
            r["threads"],
            r["gflop_per_step"],
            r["step_s_median"],
            r["step_gflops"],
            r["matmul_gflops"],
            f"{r['fraction_of_matmul_rate']:.0%}",
            f"{r['fraction_by_cpu_time']:.0%}" if "fraction_by_cpu_time" in r else None,
            r["copy_calls_per_step"],
        ]
        for r in d["results"]
    ]
    load = d.get("machine", {}).get("loadavg_1min_at_start")
    return [
        _where(d) + " Counted FLOPs (`torch.utils.flop_counter`: matmuls and convolutions) of one training "
        "step (forward + relative-L2 loss + backward) divided by its median time, against the median rate of "
        "a 2048³ fp32 matmul measured in the same process, interleaved with the steps"
        + (f"; load average {load:.1f} at the start" if load is not None else "")
        + ". On a busy machine "
        "the wall-time fraction collapses (a multi-threaded step waits for descheduled threads at every op, "
        "one big matmul far less); the process-CPU-time fraction with one thread is the robust figure then.",
        "",
        table(
            [
                "preset",
                "batch",
                "grid",
                "threads",
                "GFLOP/step",
                "s/step (median)",
                "step GFLOP/s",
                "matmul GFLOP/s",
                "fraction (wall)",
                "fraction (CPU time)",
                "aten::copy_ per step",
            ],
            rows,
        ),
        "",
    ]


def section_data(d: dict[str, Any]) -> list[str]:
    rows = [[r["loader"], r["workers"], r["cache"], r["windows_per_s"], r["cpu_ms_per_window"]] for r in d["runs"]]
    ti = d.get("ti", {})
    lines = [
        _where(d) + f" File {d['file']['gib']} GiB, {d['file']['shape'][2]}² × {d['file']['shape'][-1]} "
        f"channels; windows of T_in={d['window']['t_in']} + {d['window']['t_ar']}.",
        "",
        table(["loader", "workers", "page cache", "windows/s", "CPU ms/window"], rows),
        "",
    ]
    if ti.get("available"):
        ratios = d.get("ratio_vs_ti", {})
        worst = min((v for k, v in ratios.items() if k.startswith("dpot")), default=None)
        lines += [
            f"A DPOT-Ti training step consumes {ti['samples_per_s']:.2f} samples/s on this machine; the "
            "loaders deliver (best worker count) "
            + ", ".join(f"{k.replace('_', ' (')} cache) {v:.0f}×" for k, v in ratios.items())
            + " that rate."
            + (
                f" Target (≥ 5×): {'met' if worst >= 5 else 'NOT met'} (worst cache state at its best "
                f"worker count: {worst:.0f}×)."
                if worst is not None
                else ""
            )
        ]
    if "speedup_vs_reference" in d:
        sp = d["speedup_vs_reference"]
        lines += [
            "dpot vs the reference's whole-trajectory loading (best worker count): "
            + ", ".join(f"{k} cache {v:.1f}×" for k, v in sp.items())
            + ".",
            "",
        ]
    return lines


def section_solvers(d: dict[str, Any]) -> list[str]:
    rows = [[r["family"], f"{r['res']}", r["frames"], r["n"], r["seconds_per_trajectory"]] for r in d["families"]]
    lines = [
        _where(d) + f" {d.get('torch_threads', 1)} torch thread(s).",
        "",
        table(["family", "grid", "frames", "trajectories", "s/trajectory"], rows),
        "",
    ]
    g = d.get("generate_default")
    if g:
        lines += [
            f"`dpot generate default` ({g['datasets']} datasets, {g['trajectories']} trajectories, "
            f"{g['gib']} GiB): {g['seconds']:.0f} s wall with {g['workers'] or 'auto'} workers "
            "(target ≤ 10 min on 2 cores: " + ("met" if g["seconds"] <= 600 else "NOT met") + ").",
            "",
        ]
    return lines


def section_train(d: dict[str, Any]) -> list[str]:
    rows, by = [], {}
    for r in d["results"]:
        by[(r["preset"], r["loader"])] = r
        rows.append(
            [
                r["preset"],
                "yes" if r["loader"] else "no (one batch reused)",
                "×".join(map(str, r["grid"])),
                r["batch_size"],
                r["precision"],
                r["samples_per_s"],
                r["s_per_step"],
                r.get("peak_gpu_mib", r.get("peak_rss_mib")),
            ]
        )
    lines = [
        _where(d),
        "",
        table(["preset", "data loader", "grid", "batch", "precision", "samples/s", "s/step", "peak MiB"], rows),
        "",
    ]
    for preset in dict.fromkeys(p for p, _ in by):
        if (preset, True) in by and (preset, False) in by:
            a, b = by[(preset, True)]["samples_per_s"], by[(preset, False)]["samples_per_s"]
            lines.append(f"- {preset}: with the real loader {a / b:.2f}× the compute-only rate.")
    return lines + [""]


def section_emulator(d: dict[str, Any]) -> list[str]:
    ok = [r for r in d["results"] if "error" not in r]
    rows = [
        [
            r["family"],
            f"{r['res']}^{r['ndim']}",
            r["batch"],
            r["solver_frames"],
            r["solver_s_per_frame"],
            f"{r['preset']} ({r['params_dpot']:,})",
            r["dpot_s_per_frame"],
            f"{r['solver_over_dpot']:.2f}×",
        ]
        for r in ok
    ]
    faster = [r for r in ok if r["solver_over_dpot"] > 1]
    failed = [f"{r['family']} at {r['res']}^{r['ndim']} ({r['error']})" for r in d["results"] if "error" in r]
    return [
        _where(d) + f" Device {d['device']}; {d['settings'].get('threads', 1)} torch thread(s) for both.",
        "",
        table(
            [
                "family",
                "grid",
                "batch",
                "solver frames",
                "solver s/frame",
                "DPOT (params)",
                "DPOT s/frame",
                "solver / DPOT",
            ],
            rows,
        ),
        "",
        f"The DPOT rollout is faster than the solver in {len(faster)} of {len(rows)} rows (ratio > 1). "
        + _largest_grid(ok)
        + "Steady families: one solve vs one forward pass. A DPOT frame's cost does not depend on the PDE; a "
        "solver's grows with its stiffness and CFL limit."
        + (f" Not timed (the solver refused the grid): {'; '.join(failed)}." if failed else ""),
        "",
    ]


def _largest_grid(rows: list[dict[str, Any]]) -> str:
    """Which families the emulator beats at each family's largest timed grid."""
    last: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["family"] not in last or r["res"] > last[r["family"]]["res"]:
            last[r["family"]] = r
    win = [f"{f} {r['solver_over_dpot']:.1f}×" for f, r in last.items() if r["solver_over_dpot"] > 1]
    lose = [f"{f} {r['solver_over_dpot']:.2f}×" for f, r in last.items() if r["solver_over_dpot"] <= 1]
    return (
        "At each family's largest grid the emulator is faster for "
        + (", ".join(win) or "none")
        + " and slower for "
        + (", ".join(lose) or "none")
        + ". "
    )


def section_scaling(d: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["preset"],
            f"{r['params']:,}" if "params" in r else "–",
            f"{r['res']}²",
            r.get("tokens"),
            r.get("step_s_best"),
            r.get("peak_step_mib"),
            r.get("error", ""),
        ]
        for r in d["results"]
    ]
    grow = [
        [
            g["preset"],
            f"{g['from_res']}² → {g['to_res']}²",
            f"{g['tokens_x']:.0f}×",
            f"{g['time_x']:.2f}×",
            f"{g['memory_x']:.2f}×" if g.get("memory_x") else "–",
        ]
        for g in d.get("growth", [])
    ]
    batch = next((r["batch"] for r in d["results"] if "batch" in r), None)
    return [
        _where(d) + f" Device {d['device']}; batch {batch}; C=4, T_in=10; one step = forward + loss + backward "
        "+ AdamW; memory = peak of one step above rest (CPU: resident set; GPU: allocator), which includes the "
        "gradient buffers (4 bytes per parameter: 30 MB for Ti, 120 MB for S) that dominate at small grids.",
        "",
        table(["preset", "params", "grid", "tokens", "step s (best)", "peak MiB", "error"], rows),
        "",
        table(["preset", "grid", "tokens", "step time", "peak memory"], grow),
        "",
        "Linear cost in the number of tokens would make the time column equal the tokens column; below it, "
        "work that does not grow with the grid (the optimiser update and other parameter-sized work of the larger "
        "presets, per-call overhead at small grids) still dominates.",
        "",
    ]


def section_native_res(d: dict[str, Any]) -> list[str]:
    st, sm, h = d["settings"], d["summary"], d["settings"]["horizon"]
    speed = [
        [key, s["steps"] * st["batch"], s["samples_per_s"], s["samples_per_cpu_s"]]
        for key, s in d["throughput"].items()
    ]
    names = {"resample": "resample to 128²", "native": "native, equal steps", "native_wall": "native, equal compute"}
    acc = [
        [
            names[key],
            r["steps"],
            *(f"{r['l2re'][n]['l2re_1step']:.3f} / {r['l2re'][n][f'l2re_{h}step']:.3f}" for n in st["datasets"]),
        ]
        for key, r in d["results"].items()
    ]
    by_run = sm["datasets_worse_than_resample"]
    worse = "; ".join(
        f"{names[k]} at {m.split('_')[1].replace('step', '-step')}: {', '.join(v) if v else 'none'}"
        for k, by in by_run.items()
        for m, v in by.items()
    )
    met = not any(v for by in by_run.values() for v in by.values())
    load = d["load_avg_1min_at_end"]
    shared = " (the VM was shared with other jobs during the run)" if load >= 2 else ""
    return [
        f"{_where(d)} Started {d['started']}, 1-min load {load:.1f} at the end{shared}; "
        f"{st['preset']} preset, batch {st['batch']}, T_in {st['t_in']}. "
        "Corpus: Navier-Stokes vorticity at 64² (nu=1e-3) and 128² (nu=1e-4), diffusion-reaction at 128x64 "
        "(every other y point of a 128² solve).",
        "",
        table(["mode", "samples", "samples/s (wall)", "samples per CPU-s"], speed),
        "",
        table(["run", "steps", *(f"{n}: 1-step / {h}-step L2RE" for n in st["datasets"])], acc),
        "",
        f"- Throughput native / resample: {sm['speedup_samples_per_cpu_s']:.2f}× per CPU-second, "
        f"{sm['speedup_samples_per_s']:.2f}× per wall-clock second (target ≥ 1.5×: "
        f"{'met' if sm['target_met_speed'] else 'not met'}; the two modes alternate in chunks of "
        f"{st['chunk']} steps, so both see the same load).",
        f"- L2RE at each dataset's own grid (the resample model's input upsampled to 128², its output "
        f'downsampled back). "Equal compute" trains native for steps × the CPU-time speed-up. Datasets worse '
        f"than resample-to-128² (goal: none; {'met' if met else 'not met'}): {worse}.",
        "",
    ]


SECTIONS: list[tuple[str, str, Callable[..., list[str]], str]] = [
    ("Model throughput (CPU, fp32)", "model_cpu.json", section_model, "python benchmarks/model.py --reference PATH"),
    (
        "CPU training step vs the matmul roofline (Ti, fp32)",
        "roofline_cpu.json",
        section_roofline,
        "python benchmarks/model.py --roofline --presets Ti --roofline-threads 2,1",
    ),
    ("Data loader", "data_cpu.json", section_data, "python benchmarks/data.py"),
    ("Solvers (CPU)", "solvers_cpu.json", section_solvers, "python benchmarks/solvers.py"),
    (
        "Training step through the Trainer (CPU)",
        "train_cpu.json",
        section_train,
        "python benchmarks/train.py --data DIR",
    ),
    ("Solver vs emulator (CPU)", "emulator_cpu.json", section_emulator, "python benchmarks/emulator.py"),
    ("Scaling of cost (CPU)", "scaling_cpu.json", section_scaling, "python benchmarks/scaling.py"),
    (
        "Native-resolution pre-training (CPU)",
        "native_res_cpu.json",
        section_native_res,
        "python benchmarks/native_res.py",
    ),
    (
        "Native-resolution pre-training, 400 steps (CPU)",
        "native_res_cpu_400.json",
        section_native_res,
        "python benchmarks/native_res.py --steps 400 --out benchmarks/results/native_res_cpu_400.json",
    ),
    ("Solvers (GPU)", "solvers_gpu.json", section_solvers, "python benchmarks/gpu.py"),
    ("Training step through the Trainer (GPU)", "train_gpu.json", section_train, "python benchmarks/gpu.py"),
    ("Solver vs emulator (GPU)", "emulator_gpu.json", section_emulator, "python benchmarks/gpu.py"),
    ("Scaling of cost (GPU)", "scaling_gpu.json", section_scaling, "python benchmarks/gpu.py"),
]


def targets(results: Path) -> list[str]:
    """The performance targets against the results on disk: one row each, pending where unmeasured."""
    rows: list[list[Any]] = []
    m = load(results, "model_cpu.json")
    ti = next((r for r in (m or {}).get("results", []) if r["preset"] == "Ti" and "speedup_vs_reference" in r), None)
    if ti:
        x, diff = ti["speedup_vs_reference"]["train_s_best"], ti["output_diff_fp32"]["rel_l2"]
        rows.append(
            ["DPOT-Ti training step vs reference, CPU fp32", "≥ 1.3×", f"{x:.2f}×", "met" if x >= 1.3 else "NOT met"]
        )
        rows.append(
            [
                "same outputs as the reference (same weights, input)",
                "≤ 1e-5 relative",
                f"{diff:.1e}",
                "met" if diff <= 1e-5 else "NOT met",
            ]
        )
    else:
        rows.append(["DPOT-Ti training step vs reference, CPU fp32", "≥ 1.3×", "–", "pending (`--reference`)"])
    g = load(results, "compare_gpu.json")
    by = {(r["preset"], r["what"]): r["train_x"] for r in (g or {}).get("ratios", [])}
    for what, label in (
        ("like-for-like, bf16 eager", "both bf16 autocast"),
        ("like-for-like, bf16 + compile", "both bf16 + compile"),
    ):
        x = by.get(("Ti", what))
        rows.append(
            [
                f"DPOT-Ti training step vs reference, GPU, {label}",
                "≥ 2×",
                "–" if x is None else f"{x:.2f}×",
                "pending (GPU)" if x is None else ("met" if x >= 2 else "NOT met"),
            ]
        )
    d = load(results, "data_cpu.json")
    ratios = [v for k, v in (d or {}).get("ratio_vs_ti", {}).items() if k.startswith("dpot")]
    rows.append(
        [
            "data loader vs what Ti training consumes",
            "≥ 5×",
            f"{min(ratios):.0f}× (worst cache state, best worker count)" if ratios else "–",
            ("met" if min(ratios) >= 5 else "NOT met") if ratios else "pending",
        ]
    )
    sv = (load(results, "solvers_cpu.json") or {}).get("generate_default")
    rows.append(
        [
            "`dpot generate default` on 2 CPU cores",
            "≤ 10 min",
            f"{sv['seconds'] / 60:.1f} min" if sv else "–",
            ("met" if sv["seconds"] <= 600 else "NOT met") if sv else "pending",
        ]
    )
    e = load(results, "emulator_cpu.json")
    n = len([r for r in (e or {}).get("results", []) if "error" not in r])
    rows.append(
        ["emulator vs solver per frame", "reported", f"{n} rows (CPU)" if e else "–", "reported" if e else "pending"]
    )
    rows.append(["accuracy claims", "see `docs/results.md`", "–", "see there"])
    return [table(["performance target", "target", "measured", "status"], rows), ""]


GPU_FIGURES = (
    (
        "compare_gpu.json",
        "Ti and S at 128², batch 16: ours vs the reference, like-for-like (fp32 eager with "
        "TF32 off, bf16 autocast, bf16 + compile) and combined; peak memory",
    ),
    ("train_gpu.json", "training steps through the Trainer, with and without the data loader"),
    ("emulator_gpu.json", "solver vs DPOT rollout per frame, every family"),
    ("scaling_gpu.json", "step time and memory vs grid and model size"),
    ("solvers_gpu.json", "solver throughput per family"),
)


def gpu_status(results: Path) -> list[str]:
    """Which GPU result files exist and which are pending, and the one command that makes them all."""
    rows = []
    for name, what in GPU_FIGURES:
        d = load(results, name)
        status = f"measured {str(d.get('date', ''))[:10]} ({machine_label(d.get('machine', {}))})" if d else "pending"
        rows.append([f"`{name}`", what, status])
    return [
        "## GPU figures",
        "",
        "All GPU figures come from ONE command on a CUDA machine, `python benchmarks/gpu.py [--reference PATH]` "
        "(under 8 minutes: each part has a hard time limit and writes its JSON as it goes; this page is "
        "rebuilt at its end). `python benchmarks/gpu.py --device cpu --quick --out-dir DIR` runs the same code "
        "paths on a CPU at tiny sizes.",
        "",
        table(["result file", "what", "status"], rows),
        "",
    ]


def load(results: Path, name: str) -> dict[str, Any] | None:
    p = results / name
    return json.loads(p.read_text()) if p.is_file() else None


def build_markdown(results: Path, quick: bool = False) -> str:
    """docs/benchmarks.md from whatever JSON results exist under `results` (missing ones are named)."""
    lines = [
        "# Benchmarks",
        "",
        *(["**Smoke run (`--quick`): tiny sizes, the numbers are not representative.**", ""] if quick else []),
        "Generated by `python benchmarks/run.py` from `benchmarks/results/*.json` (rebuild the page alone with "
        "`--docs-only`; GPU figures come from `python benchmarks/gpu.py`, one run of < 8 minutes). Every table "
        "names the machine that produced it. The CPU machine is a 2-core VM that other jobs sometimes share: each "
        "table records the load average (the CPU tables below come from an idle spell), and ratios measured by "
        "alternating the two contenders in one process are the robust numbers on a busy machine.",
        "",
        "| command | what |",
        "|---|---|",
        "| `python benchmarks/run.py [--reference PATH] [--data DIR]` | the CPU suite (all parts below: 9 min on "
        "the idle 2-core VM, about half an hour when it is busy), then this page |",
        "| `python benchmarks/run.py --only emulator,scaling` | some parts; the page still shows every result on "
        "disk |",
        "| `python benchmarks/run.py --docs-only` | rebuild this page from `benchmarks/results/*.json` |",
        "| `python benchmarks/run.py --quick` | smoke run at tiny sizes into a temporary folder |",
        "| `python benchmarks/gpu.py [--reference PATH]` | every GPU figure in one run (< 8 min), then this page |",
        "| `python benchmarks/gpu.py --device cpu --quick --out-dir DIR` | the GPU script's code paths on a CPU |",
        "| `python benchmarks/native_res.py` | native grids vs resample-to-128² in pre-training (~12 min on the "
        "busy 2-core VM; not part of the suite) |",
        "| `python studies/claims.py` | the paper's claims at CPU scale, `docs/results.md` (~1 h on 2 idle "
        "cores; `--scale small`: ~10 min) |",
        "",
        *targets(results),
        *gpu_status(results),
    ]
    gpu_any = False
    for title, name, fn, how in SECTIONS:
        d = load(results, name)
        if title == "Solvers (GPU)":  # the GPU model table first
            cg = load(results, "compare_gpu.json")
            lines += ["## Model throughput, ours vs the reference (GPU: fp32, bf16, bf16 + compile)", ""]
            if cg:
                gpu_any = True
                lines += section_compare(cg)
            else:
                lines += [
                    "GPU figures are pending: no GPU was available when this page was generated. Run "
                    "`python benchmarks/gpu.py [--reference PATH]` on a CUDA machine (< 8 min); this page "
                    "is rebuilt at its end.",
                    "",
                ]
        lines += [f"## {title}", ""]
        if d is None:
            lines += [f"Pending (GPU): run `{how}`.", ""] if "GPU" in title else [f"Not measured yet: run `{how}`.", ""]
            continue
        gpu_any |= "GPU" in title
        if d.get("quick"):
            lines += ["*Quick (smoke) settings: not representative.*", ""]
        lines += fn(d)
    if not gpu_any:
        lines += [
            "No GPU figures yet (see above): the GPU script is tested on the CPU (`benchmarks/gpu.py "
            "--device cpu --quick --out-dir DIR`) only.",
            "",
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {','.join(PARTS)}")
    p.add_argument("--reference", default=None, help="checkout of the reference DPOT repo for the model part")
    p.add_argument("--data", default=None, help="corpus for the training benchmark (default: generate one)")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, results in --out-dir (temp)")
    p.add_argument("--out-dir", default=None, help="results folder (default benchmarks/results; --quick: temp)")
    p.add_argument("--docs", default=None, help="Markdown output (default docs/benchmarks.md; --quick: OUT/…)")
    p.add_argument("--docs-only", action="store_true", help="only rebuild the Markdown from existing results")
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.only if s not in PARTS]
    if unknown:
        p.error(f"--only: unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from dpot.io import write_text

    args = parse_args(argv)
    if args.quick and not args.out_dir:
        args.out_dir = tempfile.mkdtemp(prefix="dpot-bench-quick-")
    out = Path(args.out_dir) if args.out_dir else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    doc = Path(args.docs) if args.docs else (out / "benchmarks.md" if args.quick else DOC)
    ok = True
    if not args.docs_only:
        log = run_suite(args, out)
        ok = all(p["ok"] for p in log)
    write_text(doc, build_markdown(out, quick=args.quick))
    print(f"[run] wrote {doc}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
