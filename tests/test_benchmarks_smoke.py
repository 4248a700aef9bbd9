"""Smoke tests of the benchmark suite and the claims study: argument parsing, table building on synthetic JSON,
one tiny emulator row and one tiny scaling step. Nothing here is timed."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench_run = _load("bench_run", ROOT / "benchmarks" / "run.py")
emulator = _load("bench_emulator", ROOT / "benchmarks" / "emulator.py")
scaling = _load("bench_scaling", ROOT / "benchmarks" / "scaling.py")
gpu = _load("bench_gpu", ROOT / "benchmarks" / "gpu.py")
compare = _load("bench_compare", ROOT / "benchmarks" / "compare.py")
bench_model = sys.modules["model"]  # benchmarks/model.py, imported by compare.py
claims = _load("study_claims", ROOT / "studies" / "claims.py")

MACHINE = {"cpu": "Test CPU", "cores": 2, "torch_threads": 1, "loadavg_1min_at_start": 3.0}


def row(md: str, *first: str, cells: int | None = None) -> list[str]:
    """The cells of the markdown table row that starts with the cells `first` (and has `cells` cells, if given;
    exactly one such row)."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in md.splitlines() if line.startswith("|")]
    (found,) = [r for r in rows if r[: len(first)] == list(first) and cells in (None, len(r))]
    return found


def num(cell: str) -> float:
    """The number a table cell shows (`4.00×`, `150,000`, `0.2`)."""
    return float(re.match(r"-?[\d,]*\.?\d+(e-?\d+)?", cell).group().replace(",", ""))


def _emulator_json() -> dict:
    row = {
        "family": "ns2d_vorticity",
        "ndim": 2,
        "steady": False,
        "res": 64,
        "batch": 4,
        "solver_frames": 10,
        "solver_s_per_frame": 0.2,
        "preset": "demo",
        "params_dpot": 150000,
        "dpot_s_per_frame": 0.05,
        "solver_over_dpot": 4.0,
    }
    return {"benchmark": "emulator", "machine": MACHINE, "device": "cpu", "settings": {"threads": 1}, "results": [row]}


def _scaling_json() -> dict:
    rows = [
        {
            "preset": "demo",
            "res": r,
            "batch": 1,
            "params": 10,
            "tokens": (r // 4) ** 2,
            "step_s_best": t,
            "peak_step_mib": m,
        }
        for r, t, m in ((64, 0.1, 10.0), (128, 0.3, 40.0))
    ]
    rows.append({"preset": "S", "res": 256, "batch": 1, "error": "out of memory"})
    return {
        "benchmark": "scaling",
        "machine": MACHINE,
        "device": "cpu",
        "settings": {"batch": 1},
        "results": rows,
        "growth": scaling.growth(rows),
    }


def _native_res_json() -> dict:
    names = ["ns_64", "dr_128x64"]
    run = {"l2re": {n: {"l2re_1step": 0.1, "l2re_10step": 0.3} for n in names}}
    return {
        "benchmark": "native_res",
        "machine": MACHINE,
        "started": "2026-11-30 01:00 UTC",
        "device": "cpu",
        "settings": {
            "preset": "demo",
            "batch": 8,
            "t_in": 10,
            "horizon": 10,
            "threads": 1,
            "steps": 50,
            "rounds": 3,
            "chunk": 8,
            "datasets": names,
        },
        "throughput": {
            "resample": {"steps": 24, "samples_per_s": 10.0, "samples_per_cpu_s": 20.0},
            "native": {"steps": 24, "samples_per_s": 18.0, "samples_per_cpu_s": 40.0},
        },
        "results": {
            "resample": {"steps": 50, **run},
            "native": {"steps": 50, **run},
            "native_wall": {"steps": 100, **run},
        },
        "summary": {
            "speedup_samples_per_cpu_s": 2.0,
            "speedup_samples_per_s": 1.8,
            "target_met_speed": True,
            "datasets_worse_than_resample": {
                "native": {"l2re_1step": [], "l2re_10step": []},
                "native_wall": {"l2re_1step": ["dr_128x64"], "l2re_10step": []},
            },
        },
        "load_avg_1min_at_end": 5.0,
    }


def test_native_res_section(tmp_path):
    (tmp_path / "native_res_cpu.json").write_text(json.dumps(_native_res_json()))
    md = bench_run.build_markdown(tmp_path)
    assert "## Native-resolution pre-training (CPU)" in md and "shared with other jobs" in md
    assert "| native, equal compute | 100 | 0.100 / 0.300 | 0.100 / 0.300 |" in md
    assert "2.00× per CPU-second, 1.80× per wall-clock second (target ≥ 1.5×: met" in md
    assert "(goal: none; not met): native, equal steps at 1-step: none; " in md
    assert "native, equal compute at 1-step: dr_128x64; " in md


def test_run_builds_markdown_from_results(tmp_path):
    (tmp_path / "emulator_cpu.json").write_text(json.dumps(_emulator_json()))
    (tmp_path / "scaling_cpu.json").write_text(json.dumps(_scaling_json()))
    md = bench_run.build_markdown(tmp_path)
    from dpot.machine import machine_label

    assert machine_label(MACHINE) in md
    emu = row(md, "ns2d_vorticity")  # batch, solver frames, s/frame of each, the speed-up = their ratio
    assert [num(c) for c in (emu[2], emu[3], emu[4], emu[6], emu[7])] == [4, 10, 0.2, 0.05, pytest.approx(4.0)]
    assert "150,000" in emu[5]
    growth = row(md, "demo", "64² → 128²")  # tokens 16² -> 32², time 0.1 -> 0.3 s, memory 10 -> 40 MiB
    assert [num(c) for c in growth[2:5]] == [4, pytest.approx(3.0), pytest.approx(4.0)]
    assert "out of memory" in md
    assert "Not measured yet: run `python benchmarks/model.py" in md
    assert "GPU figures are pending" in md


def test_run_and_gpu_arguments(tmp_path):
    args = bench_run.parse_args(["--only", "emulator,scaling", "--quick"])
    assert args.only == ["emulator", "scaling"] and args.quick
    with pytest.raises(SystemExit):
        bench_run.parse_args(["--only", "nope"])
    cmds = bench_run.commands(args, tmp_path, tmp_path / "data")
    assert set(cmds) == {"emulator", "scaling"} and "--quick" in cmds["emulator"]
    with pytest.raises(SystemExit):  # a CPU run must not overwrite the CPU suite's results
        gpu.parse_args(["--device", "cpu"])
    g = gpu.parse_args(["--device", "cpu", "--quick", "--out-dir", str(tmp_path)])
    plan = gpu.plan(g, tmp_path, tmp_path / "tiny")
    parts = {name: cmd for name, cmd, _ in plan}
    assert set(parts) == {"compare", "train", "emulator", "scaling", "solvers"}
    assert str(tmp_path / "emulator_cpu.json") in parts["emulator"] and "--no-compile" in parts["compare"]
    assert sum(gpu.LIMITS.values()) < gpu.BUDGET < 8 * 60  # every part's limit fits in the total


def test_gpu_part_over_its_limit_is_killed_with_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    log = []
    cmd = ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"]
    assert not gpu.run_part("sleepy", cmd, 1, log)
    assert not log[0]["ok"] and "process group killed" in log[0]["tail"]
    child = int(pid_file.read_text())
    for _ in range(50):  # the orphaned child is gone once init reaps it
        status = Path(f"/proc/{child}/stat")
        if not status.exists() or status.read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail("the part's child process survived the time limit")


def test_compare_rows_and_like_for_like_ratios(tmp_path, one_thread):
    out = tmp_path / "compare.json"
    assert (
        compare.main(
            [
                "--device",
                "cpu",
                "--presets",
                "demo",
                "--res",
                "16",
                "--batch",
                "1",
                "--iters",
                "1",
                "--no-compile",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    d = json.loads(out.read_text())
    assert d["tf32"]["cuda_matmul_allow_tf32"] is False
    assert [(r["model"], r["mode"]) for r in d["results"]] == [("ours", "fp32 eager"), ("ours", "bf16 eager")]
    assert all(r["train_ms"] > 0 for r in d["results"]) and d["results"][1]["rel_l2_vs_fp32"] < 0.02
    rows = [
        {"preset": "Ti", "model": m, "mode": mode, "train_ms": t}
        for m, mode, t in (
            ("ours", "fp32 eager", 10.0),
            ("reference", "fp32 eager", 15.0),
            ("ours", "bf16 eager", 5.0),
            ("reference", "bf16 eager", 10.0),
            ("ours", "bf16 + compile", 3.0),
        )
    ]
    rows.append({"preset": "Ti", "model": "reference", "mode": "bf16 + compile", "error": "does not compile"})
    assert {r["what"]: r["train_x"] for r in compare.ratios(rows)} == {
        "like-for-like, fp32 eager": 1.5,
        "like-for-like, bf16 eager": 2.0,
        "combined: ours bf16 + compile vs reference fp32 eager": 5.0,
    }


def test_emulator_row_tiny():
    import torch

    row = emulator.bench_family("diffusion_reaction_2d", 16, 1, "demo", 1, 3, torch.device("cpu"))
    assert row["solver_frames"] == 2 and row["channels"] == 2 and row["dpot_steps"] == 1
    assert row["solver_s_per_frame"] > 0 and row["dpot_s_per_frame"] > 0
    assert row["solver_over_dpot"] == pytest.approx(row["solver_s_per_frame"] / row["dpot_s_per_frame"])


def test_scaling_arguments_and_growth():
    args = scaling.parse_args(["--quick"])
    assert args.device == "cpu" and args.threads == 1 and args.quick
    rows = _scaling_json()["results"]
    (g,) = scaling.growth(rows)
    assert g["tokens_x"] == 4 and g["time_x"] == pytest.approx(3.0) and g["memory_x"] == pytest.approx(4.0)


def _fake_results(s) -> dict:
    """Result files shaped like `run_job`'s, with numbers that follow the paper's claims."""
    pre, ft = claims.plan_jobs(s)
    out = {}
    for j in pre:
        info = j.info
        base = {0.0: 0.30, 0.02: 0.20, 0.2: 0.22, 2.0: 0.60}[info["noise"]]
        base *= {"XS": 1.5, "demo": 1.0, "M": 0.8}[info["size"]]
        ev = {
            d: {
                "rollout": base * (1.3 if (d == claims.SMALL_SET and not info["balanced"]) else 1.0) + 0.01 * j.seed,
                "one_step": base / 10,
                "last_step": base * 2,
                "steps": 3,
                "per_step": [base],
            }
            for d in claims.pretrain_sets()
        }
        out[j.key] = {
            "job": claims._job_dict(j),
            "steps": s.pretrain_steps,
            "final_loss": base,
            "params": 1000,
            "eval": ev,
            "cpu_seconds": 1.0,
            "train_seconds": 1.0,
        }
    for j in ft:
        v = {"pretrained": 0.1, "pretrained_reinit": 0.08, "scratch": 0.2, "fno": 0.3}[j.model] / j.shots
        v += 0.001 * j.seed
        out[j.key] = {
            "job": claims._job_dict(j),
            "steps": s.finetune_steps,
            "final_loss": v,
            "params": 2000,
            "eval": {claims.HOLDOUT: {"rollout": v, "one_step": v / 5, "last_step": v, "steps": 3, "per_step": [v]}},
            "cpu_seconds": 1.0,
            "train_seconds": 1.0,
        }
    return out


def test_claims_report_from_synthetic_results(tmp_path):
    args = claims.parse_args(["--scale", "smoke", "--jobs", "1"])
    assert args.scale == "smoke" and args.jobs == 1
    with pytest.raises(SystemExit):
        claims.parse_args(["--jobs", "0"])
    s = claims.SCALES["smoke"]
    pre, ft = claims.plan_jobs(s)
    assert len({j.key for j in pre}) == len(pre)
    assert len(ft) == (len(claims.FT_MODELS) * len(s.shots) + 3) * s.shot_seeds  # + 3 longer runs per seed
    res = _fake_results(s)
    c1, c2, c3, c4 = (
        claims.claim_denoising(s, res),
        claims.claim_pretraining(s, res),
        claims.claim_scaling(s, res),
        claims.claim_balanced(s, res),
    )
    assert c1["agree"] and c2["agree"] and c3["agree"] and c4["agree"]
    assert [r["size"] for r in c3["rows"]] == ["XS", "demo", "M"]
    meta = {
        "date": "today",
        "machine": "Test CPU",
        "jobs": 1,
        "wall_seconds": 60.0,
        "cpu_seconds": 60.0,
        "load_start": 1.0,
        "load_end": 1.0,
        "cpu_per_pretrain_step": 0.03,
        "cpu_per_finetune_step": 0.04,
    }
    base = {d: {"rollout": 0.25, "one_step": 0.05} for d in [*claims.pretrain_sets(), claims.HOLDOUT]}
    channels = {
        "pretrained": {"h": 0.5, "u": 0.2},
        "pretrained_reinit": {"h": 0.05, "u": 0.3},
        "scratch": {"h": 0.1, "u": 0.2},
        "fno": {"h": 0.1, "u": 0.1},
    }
    md = claims.report("smoke", s, meta, c1, c2, c3, c4, ["a.png", "b.png", "c.png", "d.png"], base, channels)
    assert [num(c) for c in row(md, "DPOT fine-tuned, widen")[1:]] == [0.5, 0.2]
    # the channel with the largest error ratio to scratch, and the ratio: widen h 0.5/0.1, reinit u 0.3/0.2
    for short, channel, p, q in (("widen", "h", 0.5, 0.1), ("reinit", "u", 0.3, 0.2)):
        m = re.search(rf"{short}: largest ratio to scratch on `(\w+)` \(([\d.]+) vs ([\d.]+), ([\d.]+)×\)", md)
        assert m[1] == channel and [float(m[i]) for i in (2, 3, 4)] == [p, q, pytest.approx(p / q, abs=5e-3)]
    # n=1: rollout L2RE of widen, reinit, scratch, FNO (0.1, 0.08, 0.2, 0.3 / n), then one-step (a fifth of it)
    want = [0.1, 0.08, 0.2, 0.3]
    assert [num(c) for c in row(md, "1")[1:9]] == [*want, *[pytest.approx(v / 5) for v in want]]
    assert c2["agreeing"] == ["pretrained", "pretrained_reinit"] and not c2["flat"]
    assert int(re.search(r"(\d) of 4 claims agree", md)[1]) == sum(c["agree"] for c in (c1, c2, c3, c4))
    assert all(min(r[m][0] for m in ("pretrained", "pretrained_reinit", "scratch")) < r["fno"][0] for r in c2["rows"])
    # the longer runs at the largest n (the fake ignores steps): reinit, scratch, FNO = (0.08, 0.2, 0.3) / 4
    assert [num(c) for c in row(md, "4", cells=7)[1:4]] == [0.02, 0.05, 0.075]
    beat, total = map(int, re.search(r"beats repeating the last frame on (\d+) of (\d+) datasets", md).groups())
    assert beat == total == len(claims.pretrain_sets())  # every fake rollout (<= 0.21) is below the bar 0.25


def test_claims_report_rebuilds_from_the_committed_results(tmp_path):
    """The committed docs/results.md is what the report code makes of the committed raw results (no training):
    covers the branches the synthetic numbers do not (FNO ahead, flat data-efficiency curves, reinit only)."""
    root = Path(__file__).resolve().parents[1]
    old = json.loads((root / "docs" / "results" / "claims.json").read_text())
    data, md = claims.analyse(
        old["scale"], old["meta"], old["runs"], old["repeat_last_frame"], old["holdout_per_channel"], tmp_path
    )
    assert json.loads(json.dumps(data)) == old  # the stored verdicts are the code's
    assert md == (root / "docs" / "results.md").read_text()
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [
        "denoising.png",
        "pretraining.png",
        "sampling.png",
        "scaling.png",
    ]


def test_roofline_row_tiny(one_thread, monkeypatch):
    small = bench_model.matmul_gflops
    monkeypatch.setattr(bench_model, "matmul_gflops", lambda: small(256, 1))  # a 256^3 matmul is enough here
    r = bench_model.roofline("demo", 1, 16, 1)
    assert r["gflop_per_step"] > 0 and r["copy_calls_per_step"] > 0 and r["step_s_median"] > 0
    assert r["fraction_of_matmul_rate"] == pytest.approx(r["step_gflops"] / r["matmul_gflops"])
    assert r["fraction_by_cpu_time"] > 0 and r["step_cpu_s_median"] > 0
