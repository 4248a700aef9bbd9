"""Parameter-efficient fine-tuning: full vs LoRA (rank 4/8/16, with and without the spectral updates, and the
first version's factors-only defaults) vs heads-only (`finetune.freeze=[backbone]`), on a held-out PDE family.

Two parts, both written to one JSON:
- **Ti** (the released size, 128², C=4, T_in=10): trainable parameters, bytes of AdamW state and the time of one
  optimiser step (batch 1, random weights and data: costs do not depend on the weights), per method.
- **demo** preset (sized to a 32² corpus it generates): pre-train on four families, hold out shallow water,
  fine-tune each method (no heads-first phase, no layer decay) on its first 8 training trajectories at two
  learning rates (`optim.lr`; LoRA factors at `finetune.lora.lr_scale` times it), pick the rate by validation
  L2RE, report test rollout L2RE, trainable parameters, AdamW state bytes (read from the run's
  `training_state.pt`) and step time.

    python benchmarks/peft.py [--work DIR] [--pretrain-steps 400] [--finetune-steps 80] [--batch 4] [--lrs 2e-3,8e-3]
    -> benchmarks/results/peft_cpu.json and a table on stdout
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from dpot.machine import machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PRETRAIN_FAMILIES = ("ns2d_vorticity", "diffusion_reaction_2d", "ns2d_buoyancy", "cavity_2d")
HELD_OUT = "shallow_water_2d"
LORA = ["finetune.method=lora"]
METHODS: dict[str, list[str]] = {
    "full": [],
    "heads-only": ["finetune.freeze=[backbone]"],
    "lora-r4": [*LORA, "finetune.lora.rank=4"],
    "lora-r8": [*LORA, "finetune.lora.rank=8"],
    "lora-r16": [*LORA, "finetune.lora.rank=16"],
    "lora-r8-no-spectral": [*LORA, "finetune.lora.rank=8", "finetune.lora.spectral=false"],
    # the first version's defaults: only the factors train, at optim.lr, the temporal aggregation not targeted
    "lora-r8-factors-only": [
        *LORA,
        "finetune.lora.rank=8",
        "finetune.lora.full=[]",
        "finetune.lora.lr_scale=1",
        "finetune.lora.targets=[blocks.*.mlp.*.weight,patch_embed.proj.*.weight,out_layer.*.weight]",
    ],
}
LRS = (2e-3, 8e-3)


def adamw_state_bytes(state: dict) -> int:
    """Bytes of the tensors held in an optimizer's `state` (AdamW: exp_avg, exp_avg_sq, step)."""
    return sum(t.numel() * t.element_size() for s in state.values() for t in s.values() if torch.is_tensor(t))


def ti_costs(rounds: int = 3, batch: int = 1) -> dict[str, dict]:
    """Trainable parameters, AdamW state bytes and s/step of each method on DPOT-Ti (128², T_in 10). The
    methods take turns step by step (`rounds` timed steps each after one warm-up), so load drift on a shared
    machine hits them alike; s/step is the median."""
    from dpot.evaluation.metrics import relative_l2_loss
    from dpot.models import DPOT, count_parameters
    from dpot.models.lora import count_trainable, inject
    from dpot.training.finetune import load_finetune_config

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch, 128, 128, 10, 4, generator=g), torch.randn(batch, 128, 128, 1, 4, generator=g)
    cases = {}
    for name, overrides in METHODS.items():
        torch.manual_seed(0)
        model = DPOT.from_preset("Ti")
        adapt = load_finetune_config(None, overrides).finetune
        if adapt.method == "lora":
            model = inject(model, adapt.lora)
        elif name == "heads-only":
            for n, p in model.named_parameters():
                p.requires_grad_(not n.startswith("blocks."))
        cases[name] = (model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4), [])
    for k in range(rounds + 1):
        for model, opt, times in cases.values():
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            relative_l2_loss(model(x), y).backward()
            opt.step()
            if k:  # the first step allocates the state and warms up
                times.append(time.perf_counter() - t0)
    out = {}
    for name, (model, opt, times) in cases.items():
        total = count_parameters(model.config)  # a LoRA model's frozen weights are buffers, not parameters
        out[name] = {
            "params_total": total,
            "trainable": count_trainable(model),
            "trainable_pct": 100 * count_trainable(model) / total,
            "adamw_state_bytes": adamw_state_bytes(opt.state),
            "s_per_step": statistics.median(times),
        }
        print(f"Ti {name}: {out[name]}", flush=True)
    return out


def make_corpus(work: Path) -> Path:
    """Four pre-training families and the held-out one at 32², 24 frames (seconds to a minute)."""
    from dpot.cli import main

    data = work / "data"
    for family in (*PRETRAIN_FAMILIES, HELD_OUT):
        if not (data / family / "test.h5").is_file():
            assert (
                main(
                    [
                        "generate",
                        family,
                        "--out",
                        str(data),
                        "--n",
                        "24",
                        "--n-val",
                        "4",
                        "--n-test",
                        "8",
                        "--res",
                        "32",
                        "--frames",
                        "24",
                        "--quiet",
                    ]
                )
                == 0
            )
    return data


def pretrain(work: Path, data: Path, steps: int) -> Path:
    """The demo preset pre-trained on the four families (the base checkpoint every method starts from)."""
    from dpot.training import load_pretrain_config
    from dpot.training.pretrain import run_pretrain

    run = work / "pre"
    if not (run / "checkpoint" / "config.json").is_file():
        cfg = load_pretrain_config(
            "demo",
            [
                f"data.root={data}",
                f"data.datasets=[{','.join(PRETRAIN_FAMILIES)}]",
                f"train.max_steps={steps}",
                f"optim.schedule_steps={steps}",
                "train.eval_every=0",
                "train.progress=false",
                "train.log_every=100",
                f"train.checkpoint_every={steps}",
                f"out={run}",
            ],
        )
        run_pretrain(cfg)
    return run / "checkpoint"


def finetune_case(work: Path, base: Path, data: Path, name: str, lr: float, steps: int, batch: int) -> dict:
    """Fine-tune one method at one learning rate; val and test rollout L2RE plus its costs."""
    from dpot.evaluation.evaluate import evaluate_checkpoints
    from dpot.training.finetune import load_finetune_config, run_finetune

    out = work / "ft" / f"{name}_lr{lr:g}"
    cfg = load_finetune_config(
        "few_shot",
        [
            f"init={base}",
            f"data.path={data / HELD_OUT}",
            f"out={out}",
            f"train.max_steps={steps}",
            "train.n_trajectories=8",
            f"train.batch_size={batch}",
            f"optim.lr={lr}",
            "train.eval_every=0",
            "train.progress=false",
            "train.log_every=25",
            f"train.checkpoint_every={steps}",
            "finetune.heads_only_steps=0",
            "finetune.layer_decay=1.0",
            *METHODS[name],
        ],
    )  # one LR for all tensors
    t0 = time.perf_counter()
    trained = not (out / "checkpoint" / "config.json").is_file()  # a finished run of an earlier call is reused
    if trained:
        run_finetune(cfg)
    wall = time.perf_counter() - t0 if trained else None
    rates = [r["samples_per_s"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]
    state = torch.load(out / "checkpoint" / "training_state.pt", map_location="cpu", weights_only=True)
    n_train = sum(t.numel() for s in state["optimizer"]["state"].values() for k, t in s.items() if k == "exp_avg")
    row = {
        "method": name,
        "lr": lr,
        "steps": steps,
        "wall_s": wall,
        "s_per_step": batch / statistics.median(rates),
        "trainable": n_train,
        "adamw_state_bytes": adamw_state_bytes(state["optimizer"]["state"]),
        "checkpoint_weights_bytes": (out / "checkpoint" / "model.safetensors").stat().st_size,
    }
    for split in ("val", "test"):
        results, _, _ = evaluate_checkpoints(
            [str(out / "checkpoint")], [str(data / HELD_OUT)], split=split, progress=False
        )
        row[f"{split}_l2re"] = next(iter(results.values()))[HELD_OUT]["l2re"]
    print(f"demo {name} lr={lr:g}: {row}", flush=True)
    return row


def table(result: dict) -> str:
    """Markdown tables of the two parts (demo rows: the learning rate chosen by validation L2RE)."""
    lines = ["| Ti method | trainable | % | AdamW state | s/step |", "|---|---|---|---|---|"]
    for name, r in result["ti"].items():
        lines.append(
            f"| {name} | {r['trainable']:,} | {r['trainable_pct']:.2f} | "
            f"{r['adamw_state_bytes'] / 1e6:.2f} MB | {r['s_per_step']:.2f} |"
        )
    lines += [
        "",
        "| demo method | lr | trainable | AdamW state | saved weights | s/step | val L2RE | test L2RE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in METHODS:
        rows = [r for r in result["demo"] if r["method"] == name]
        if rows:
            r = min(rows, key=lambda r: r["val_l2re"])
            lines.append(
                f"| {name} | {r['lr']:g} | {r['trainable']:,} | {r['adamw_state_bytes'] / 1e3:.0f} kB | "
                f"{r['checkpoint_weights_bytes'] / 1e3:.0f} kB | {r['s_per_step']:.3f} | "
                f"{r['val_l2re']:.4f} | {r['test_l2re']:.4f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/dpot_peft_bench", help="scratch folder (data, runs)")
    parser.add_argument("--pretrain-steps", type=int, default=400)
    parser.add_argument("--finetune-steps", type=int, default=80)
    parser.add_argument("--batch", type=int, default=4, help="fine-tuning batch size")
    parser.add_argument("--lrs", default=",".join(f"{lr:g}" for lr in LRS), help="learning rates to try")
    parser.add_argument("--skip-ti", action="store_true", help="only the demo-scale fine-tuning runs")
    parser.add_argument("--out", default=str(RESULTS / "peft_cpu.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    work = Path(args.work)
    t0 = time.perf_counter()
    lrs = [float(v) for v in args.lrs.split(",")]
    result = {
        "benchmark": "peft",
        "machine": machine_info(),
        "device": "cpu",
        "settings": {
            "pretrain_steps": args.pretrain_steps,
            "finetune_steps": args.finetune_steps,
            "batch": args.batch,
            "lrs": lrs,
            "held_out": HELD_OUT,
            "grid": 32,
            "pretrain_families": list(PRETRAIN_FAMILIES),
            "few_shot_trajectories": 8,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result["ti"] = {} if args.skip_ti else ti_costs()
    out.write_text(json.dumps(result, indent=1) + "\n")  # after each part: a long run keeps what it measured
    data = make_corpus(work)
    base = pretrain(work, data, args.pretrain_steps)
    result["demo"] = []
    for name in METHODS:
        for lr in lrs:
            result["demo"].append(finetune_case(work, base, data, name, lr, args.finetune_steps, args.batch))
            result["wall_s"] = time.perf_counter() - t0
            out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
