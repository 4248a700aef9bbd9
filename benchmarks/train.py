"""Training throughput (samples/s) and peak memory of the demo preset and DPOT-Ti on this machine.

Each case runs in a fresh process (so peak RSS is its own), through the real `Trainer` step: once with batches
from the data loader (the real pipeline) and once re-using one batch already in memory (compute only). The
gap between the two is the loader's cost. Besides wall-clock samples/s it records the process CPU time per
step and the load average, because on a shared machine the wall clock mostly measures the other tenants.

    python benchmarks/train.py --data DIR            # DIR = `dpot generate default --out DIR`
    -> benchmarks/results/train_cpu.json (or train_gpu.json on a GPU machine)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from dpot.machine import machine_info

ROOT = Path(__file__).resolve().parents[1]
# case -> (packaged pretrain preset, overrides): Ti at its paper shape (128x128, 4 channels, T_in=10)
CASES = {
    "demo": ("demo", []),
    "Ti": ("ti", ["data.datasets=[]", "data.weights={}", "data.num_workers=0"]),
}


def run_case(name: str, data: str, steps: int, warmup: int, batch: int, loader: bool) -> dict:
    """One measurement in this process: `steps` timed optimiser steps after `warmup` untimed ones."""
    import torch

    from dpot.config import find_preset, load_config, to_dict
    from dpot.training.config import PretrainConfig
    from dpot.training.logs import IntervalStats
    from dpot.training.pretrain import build_mixture, build_model, select_datasets
    from dpot.training.trainer import Trainer

    path, extra = CASES[name]
    cfg = load_config(
        PretrainConfig,
        find_preset("pretrain", path),
        [f"data.root={data}", f"train.batch_size={batch}", "train.progress=false", *extra],
    )
    mixture = build_mixture(cfg, select_datasets(cfg.data), t_ar=cfg.train.t_ar)
    torch.manual_seed(0)
    model = build_model(cfg, mixture)
    trainer = Trainer(
        model, mixture, cfg.train, cfg.optim, "/nonexistent", config=to_dict(cfg), num_workers=cfg.data.num_workers
    )
    trainer._setup(resume=False)
    stats = IntervalStats(trainer.names, trainer.env.device)
    batches = iter(trainer.loader)
    if not loader:
        one = next(batches)
        batches = iter(lambda: one, None)
    cuda = trainer.env.device.type == "cuda"
    for _ in range(warmup):
        trainer._train_step(batches, stats)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        trainer._train_step(batches, stats)
    if cuda:
        torch.cuda.synchronize()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {
        "preset": name,
        "loader": loader,
        "batch_size": batch,
        "steps": steps,
        "grid": list(mixture.datasets[0].space_shape),
        "channels": mixture.n_channels,
        "t_in": cfg.data.t_in,
        "params": sum(p.numel() for p in model.parameters()),
        "samples_per_s": steps * batch * cfg.train.grad_accum / dt,
        "s_per_step": dt / steps,
        "cpu_s_per_step": cpu / steps,
        "load_avg_1min": os.getloadavg()[0],
        "precision": "bf16" if trainer.autocast else "fp32",
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if cuda:
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def accuracy(run_dir: str, data: str, steps: int, split: str = "test") -> dict:
    """Rollout L2RE of a trained run's checkpoint on each dataset's `split`, next to two baselines: repeating
    the last input frame, and extrapolating the last two frames linearly."""
    import torch
    from torch.utils.data import DataLoader

    from dpot.config import load_config
    from dpot.data.windows import TrajectoryDataset
    from dpot.evaluation.metrics import l2re
    from dpot.models import load_model, rollout
    from dpot.training.config import PretrainConfig

    cfg = load_config(PretrainConfig, Path(run_dir) / "config.yaml")
    model = load_model(Path(run_dir) / "checkpoint").eval()
    info = json.loads((Path(run_dir) / "checkpoint" / "config.json").read_text())
    table = {}
    for entry in info["data"]:
        ds = TrajectoryDataset(
            Path(data) / entry["name"],
            split=split,
            t_in=cfg.data.t_in,
            n_channels=model.config.in_channels,
            dataset_id=entry["id"],
            resolution=cfg.data.resolution and tuple(cfg.data.resolution),
        )
        ds.horizon = min(ds.horizon, steps)
        sums = {"dpot": 0.0, "repeat_last": 0.0, "linear": 0.0}
        for batch in DataLoader(ds, batch_size=8):
            hist, target, mask = batch["history"], batch["target"], batch["mask"]
            k = target.shape[-2]
            with torch.no_grad():
                pred = rollout(model, hist, k, channel_mask=mask)
            last, prev = hist[..., -1:, :], hist[..., -2:-1, :]
            t = torch.arange(1, k + 1, dtype=hist.dtype).view(*([1] * (hist.dim() - 2)), k, 1)
            for key, p in (
                ("dpot", pred),
                ("repeat_last", last.expand_as(target)),
                ("linear", last + t * (last - prev)),
            ):
                sums[key] += float(l2re(p, target, mask).sum())
        table[entry["name"]] = {key: v / len(ds) for key, v in sums.items()} | {
            "steps": ds.horizon,
            "trajectories": len(ds),
        }
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="canonical datasets root (e.g. the default corpus)")
    p.add_argument("--presets", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=None, help="per-step batch (default: demo 8, Ti 4)")
    p.add_argument("--out", default=None, help="result JSON (default benchmarks/results/train_{cpu,gpu}.json)")
    p.add_argument(
        "--accuracy",
        metavar="RUN_DIR",
        help="instead: rollout L2RE of RUN_DIR's checkpoint vs "
        "repeat-last-frame and linear extrapolation on --data's test splits",
    )
    p.add_argument("--rollout", type=int, default=10, help="rollout steps for --accuracy (default 10)")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print its JSON
    p.add_argument("--loader", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.accuracy:
        table = accuracy(args.accuracy, args.data, args.rollout)
        print(f"{'dataset':24s} {'DPOT':>8s} {'repeat':>8s} {'linear':>8s}")
        for name, row in table.items():
            print(f"{name:24s} {row['dpot']:8.4f} {row['repeat_last']:8.4f} {row['linear']:8.4f}")
        out = Path(args.out or ROOT / "benchmarks" / "results" / "train_demo_accuracy.json")
        from dpot.io import write_json

        write_json(
            out,
            {
                "benchmark": "train_accuracy",
                "run": args.accuracy,
                "data": args.data,
                "rollout_steps": args.rollout,
                "machine": machine_info(),
                "l2re": table,
            },
        )
        print(f"wrote {out}")
        return
    if args.case:
        batch = args.batch or (8 if args.case == "demo" else 4)
        print(json.dumps(run_case(args.case, args.data, args.steps, args.warmup, batch, bool(args.loader))))
        return
    import torch

    from dpot.io import write_json

    kind = "gpu" if torch.cuda.is_available() else "cpu"
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"train_{kind}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.presets:
        for loader in (True, False):
            cmd = [
                sys.executable,
                __file__,
                "--data",
                args.data,
                "--case",
                name,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--loader",
                str(int(loader)),
            ]
            if args.batch:
                cmd += ["--batch", str(args.batch)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"{name} (loader={loader}) failed:\n{proc.stderr[-2000:]}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"{name:5s} loader={'yes' if loader else 'no ':3s} {res['samples_per_s']:8.2f} samples/s  "
                f"{res['s_per_step']:.3f} s/step  peak RSS {res['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
            results.append(res)
            write_json(
                out,
                {
                    "benchmark": "train",
                    "machine": machine_info(),  # after every case
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "data": str(args.data),
                    "results": results,
                },
            )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
