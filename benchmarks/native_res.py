"""Native-resolution pre-training (`data.resolution: native`) against resampling every dataset to 128².

Corpus (built-in solvers, small): `ns_64` (Navier-Stokes vorticity, nu=1e-3, 64²), `ns_128` (nu=1e-4, 128²) and
`dr_128x64` (diffusion-reaction solved at 128² and kept on every other y point: a non-square 128x64 grid).
Throughput: the real training step on batches from the real loader, both modes alternating in short chunks so
that both see the same machine load; reported as wall-clock samples/s and samples per CPU-second (the latter is
what an idle machine's wall clock would show, and is robust to other jobs on a shared machine). Accuracy: three
demo-preset runs of one recipe: resample-to-128² for N steps, native for N steps (equal steps), and native for
N x (CPU-time speed-up) steps, i.e. the steps it trains in the resample run's compute time (equal wall-clock).
Every model is scored at each dataset's own grid on its test trajectories: the resample model sees its input
upsampled to 128² and its prediction downsampled back, which is what using it costs.

    python benchmarks/native_res.py [--steps 200] [--data DIR]
    -> benchmarks/results/native_res_cpu.json and a markdown table on stdout
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dpot.machine import machine_info

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("ns_64", "ns_128", "dr_128x64")
T_IN, HORIZON, BATCH = 10, 10, 8


def make_corpus(root: Path) -> Path:
    """Generate the three datasets under `root/corpus` (reused when already there)."""
    from dpot.cli import main
    from dpot.data.format import open_split, write_split

    corpus = root / "corpus"
    if all((corpus / n / "test.h5").is_file() for n in DATASETS):
        return corpus
    common = ["--n-val", "2", "--n-test", "4", "--frames", "24", "--workers", "1", "--quiet"]
    for args in (
        ["ns2d_vorticity", "--res", "64", "--n", "24", "--name", "ns_64", "--out", str(corpus)],
        ["ns2d_vorticity", "--res", "128", "--n", "12", "--param", "nu=1e-4", "--name", "ns_128", "--out", str(corpus)],
        ["diffusion_reaction_2d", "--res", "128", "--n", "12", "--name", "dr_128", "--out", str(root / "square")],
    ):
        if main(["generate", *args, *common]) != 0:
            raise SystemExit(f"dpot generate {' '.join(args)} failed")
    for split in ("train", "val", "test"):  # every other y point: the same fields on a 128x64 grid
        src = open_split(root / "square" / "dr_128", split)
        fields = np.stack([src.frames(i)[:, :, ::2] for i in range(len(src))])
        meta = dataclasses.replace(src.meta, name="dr_128x64")
        write_split(corpus / "dr_128x64" / f"{split}.h5", meta, fields=fields, params=src.params())
        src.close()
    return corpus


def _config(corpus: Path, out: Path, resolution: str, steps: int):
    from dpot.training import load_pretrain_config

    return load_pretrain_config(
        "demo",
        [
            f"data.root={corpus}",
            f"data.datasets=[{','.join(DATASETS)}]",
            f"data.t_in={T_IN}",
            f"data.resolution={resolution}",
            f"train.max_steps={steps}",
            f"optim.schedule_steps={steps}",
            "optim.warmup=0.05",
            f"train.batch_size={BATCH}",
            f"train.log_every={max(1, steps // 10)}",
            "train.eval_every=0",
            "train.eval_trajectories=1",
            "train.eval_steps=1",
            f"train.checkpoint_every={steps}",
            "train.progress=false",
            f"out={out}",
        ],
    )


def throughput(corpus: Path, work: Path, rounds: int, chunk: int) -> dict:
    """Samples/s (wall clock) and samples per CPU-second of the real training step with batches from the real
    loader, for both modes; the two alternate in chunks of `chunk` steps so that both see the same load."""
    from dpot.config import to_dict
    from dpot.training.logs import IntervalStats
    from dpot.training.pretrain import build_mixture, build_model, select_datasets
    from dpot.training.trainer import Trainer

    runs = {}
    for key, resolution in (("resample", "[128,128]"), ("native", "native")):
        cfg = _config(corpus, work / f"speed_{key}", resolution, 10**6)
        mixture = build_mixture(cfg, select_datasets(cfg.data), t_ar=1)
        torch.manual_seed(0)
        trainer = Trainer(
            build_model(cfg, mixture), mixture, cfg.train, cfg.optim, work / f"speed_{key}", config=to_dict(cfg)
        )
        trainer._setup(resume=False)
        stats = IntervalStats(trainer.names, trainer.env.device)
        batches = iter(trainer.loader)
        for _ in range(2):  # warm-up
            trainer._train_step(batches, stats)
        runs[key] = {"trainer": trainer, "batches": batches, "stats": stats, "wall": 0.0, "cpu": 0.0, "steps": 0}
    for _ in range(rounds):
        for r in runs.values():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(chunk):
                r["trainer"]._train_step(r["batches"], r["stats"])
            r["wall"] += time.perf_counter() - t0
            r["cpu"] += time.process_time() - c0
            r["steps"] += chunk
    return {
        key: {
            "steps": r["steps"],
            "samples_per_s": r["steps"] * BATCH / r["wall"],
            "samples_per_cpu_s": r["steps"] * BATCH / r["cpu"],
        }
        for key, r in runs.items()
    }


def train(corpus: Path, out: Path, resolution: str, steps: int) -> dict:
    """One demo run of `steps` steps; returns its wall time and the per-dataset training loss at the end."""
    from dpot.training import run_pretrain

    t0 = time.perf_counter()
    run_pretrain(_config(corpus, out, resolution, steps))
    wall = time.perf_counter() - t0
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    tail = lines[-max(1, len(lines) // 4) :]  # last quarter of the run
    loss = {
        n: float(np.mean([r["loss_per_dataset"][n] for r in tail if n in r["loss_per_dataset"]]))
        for n in DATASETS
        if any(n in r["loss_per_dataset"] for r in tail)
    }
    return {"resolution": resolution, "steps": steps, "wall_s": wall, "train_loss_last_quarter": loss}


def _to_grid(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """`(B, *space, T, C)` resampled (bilinear) to `(B, *shape, T, C)`."""
    from dpot.data.resample import resample

    if tuple(x.shape[1:-2]) == tuple(shape):
        return x
    b, t = x.shape[0], x.shape[-2]
    frames = torch.movedim(x, -2, 1).reshape(b * t, *x.shape[1:-2], x.shape[-1])
    out = resample(frames, shape, "bilinear").reshape(b, t, *shape, x.shape[-1])
    return torch.movedim(out, 1, -2)


@torch.no_grad()
def score(run: Path, corpus: Path) -> dict:
    """Per-dataset L2RE at each dataset's own grid: one step and a `HORIZON`-step rollout."""
    from dpot.data.windows import TrajectoryDataset
    from dpot.evaluation.metrics import l2re
    from dpot.models import load_model, rollout

    model = load_model(run / "checkpoint").eval()
    cfg = model.config
    out = {}
    for k, name in enumerate(DATASETS):
        ds = TrajectoryDataset(
            corpus / name, split="test", t_in=T_IN, n_channels=cfg.in_channels, dataset_id=k, horizon=HORIZON
        )
        batch = {key: torch.stack([ds[i][key] for i in range(len(ds))]) for key in ("history", "target", "mask")}
        native = tuple(batch["history"].shape[1:-2])
        grid = native if cfg.interpolate_pos_embed else tuple(cfg.img_size)
        pred = _to_grid(rollout(model, _to_grid(batch["history"], grid), HORIZON, channel_mask=batch["mask"]), native)
        target = batch["target"][..., :HORIZON, :]
        out[name] = {
            "l2re_1step": float(l2re(pred[..., :1, :], target[..., :1, :], batch["mask"]).mean()),
            f"l2re_{HORIZON}step": float(l2re(pred, target, batch["mask"]).mean()),
        }
    return out


def summarize(res: dict, speed: dict) -> dict:
    """Speed-ups and, per native run and horizon, the datasets whose L2RE is worse than resample-to-128²."""
    cpu = speed["native"]["samples_per_cpu_s"] / speed["resample"]["samples_per_cpu_s"]
    wall = speed["native"]["samples_per_s"] / speed["resample"]["samples_per_s"]
    worse = {
        k: {
            m: [n for n in DATASETS if res[k]["l2re"][n][m] > res["resample"]["l2re"][n][m]]
            for m in ("l2re_1step", f"l2re_{HORIZON}step")
        }
        for k in ("native", "native_wall")
    }
    return {
        "speedup_samples_per_cpu_s": cpu,
        "speedup_samples_per_s": wall,
        "target_met_speed": cpu >= 1.5,
        "datasets_worse_than_resample": worse,
    }


def table(res: dict, speed: dict) -> str:
    rows = [
        "| run | grid | steps | " + " | ".join(f"{n} 1-step / {HORIZON}-step L2RE" for n in DATASETS) + " |",
        "|---|---|---|" + "---|" * len(DATASETS),
    ]
    for key, label in (
        ("resample", "resample to 128²"),
        ("native", "native, equal steps"),
        ("native_wall", "native, equal wall-clock"),
    ):
        r = res[key]
        cells = " | ".join(
            f"{r['l2re'][n]['l2re_1step']:.3f} / {r['l2re'][n][f'l2re_{HORIZON}step']:.3f}" for n in DATASETS
        )
        rows.append(f"| {label} | {'128x128' if key == 'resample' else 'own'} | {r['steps']} | {cells} |")
    rows += ["", "| mode | samples/s (wall) | samples per CPU-s |", "|---|---|---|"]
    rows += [f"| {key} | {s['samples_per_s']:.1f} | {s['samples_per_cpu_s']:.1f} |" for key, s in speed.items()]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="optimiser steps of the equal-steps runs")
    ap.add_argument("--rounds", type=int, default=3, help="alternating throughput rounds")
    ap.add_argument("--chunk", type=int, default=8, help="steps per throughput round and mode")
    ap.add_argument("--data", default=None, help="work folder (corpus and runs); default a temporary one")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "native_res_cpu.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.data or tempfile.mkdtemp(prefix="dpot-native-res-"))
    info = machine_info("cpu")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    corpus = make_corpus(work)
    work = work / "runs"  # the runs of this invocation (the corpus is reused)
    shutil.rmtree(work, ignore_errors=True)
    speed = throughput(corpus, work, args.rounds, args.chunk)
    cpu_ratio = speed["native"]["samples_per_cpu_s"] / speed["resample"]["samples_per_cpu_s"]
    res = {
        "resample": train(corpus, work / "resample", "[128,128]", args.steps),
        "native": train(corpus, work / "native", "native", args.steps),
        # equal wall-clock on an idle machine: the steps native trains in the resample run's CPU time
        "native_wall": train(corpus, work / "native_wall", "native", int(args.steps * cpu_ratio)),
    }
    for key in res:
        res[key]["l2re"] = score(work / key, corpus)
    summary = summarize(res, speed)
    result = {
        "benchmark": "native_res",
        "machine": info,
        "started": started,
        "device": "cpu",
        "settings": {
            "preset": "demo",
            "batch": BATCH,
            "t_in": T_IN,
            "horizon": HORIZON,
            "threads": args.threads,
            "steps": args.steps,
            "rounds": args.rounds,
            "chunk": args.chunk,
            "datasets": list(DATASETS),
        },
        "throughput": speed,
        "results": res,
        "summary": summary,
        "load_avg_1min_at_end": os.getloadavg()[0],
    }
    from dpot.io import write_text

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text(Path(args.out), json.dumps(result, indent=1) + "\n")
    print(table(res, speed))
    print(
        f"\nnative / resample: {cpu_ratio:.2f}x samples per CPU-s, {summary['speedup_samples_per_s']:.2f}x "
        f"samples/s (target >= 1.5x); datasets with a worse L2RE than resample: "
        f"{summary['datasets_worse_than_resample']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
