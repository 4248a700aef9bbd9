"""`dpot finetune --from CKPT --data DIR [key=value ...]`: adapt a checkpoint to one task and train it."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="init",
        metavar="CKPT",
        help="checkpoint directory to start from (ours or from `dpot import-checkpoint`)",
    )
    parser.add_argument("--data", metavar="DIR", help="one canonical dataset folder (DIR/<dataset>)")
    parser.add_argument(
        "--out", metavar="FT_DIR", help="run directory (config.yaml, metrics.jsonl, tb/, checkpoint/)"
    )
    parser.add_argument("--config", metavar="FILE", help="optional YAML (e.g. configs/finetune/default.yaml)")
    parser.add_argument("--resume", metavar="FT_DIR", help="continue a fine-tuning run from its checkpoint")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides, e.g. train.max_steps=200 train.n_trajectories=8 "
        "finetune.freeze=[backbone] finetune.channels=widen model=fno",
    )
    parser.epilog = (
        "model=pretrained (default) adapts --from; model=scratch trains the same network from "
        "random weights; model=fno trains the neuraloperator FNO baseline. See docs/downstream.md."
    )


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from dpot.errors import DpotError
    from dpot.training.finetune import load_finetune_config, run_finetune

    if args.resume and (args.config or args.init or args.data or args.out):
        raise DpotError("--resume continues FT_DIR with its saved config; give only overrides beside it")
    cfg = load_finetune_config(args.config, args.overrides, resume=args.resume)
    if not args.resume:
        cfg = replace(
            cfg,
            init=args.init or cfg.init,
            out=args.out or cfg.out,
            data=replace(cfg.data, path=args.data or cfg.data.path),
        )
    result = run_finetune(cfg, resume=bool(args.resume))
    loss = "n/a" if result.loss is None else f"{result.loss:.4g}"
    evals = ", ".join(f"{k} {v:.4f}" for k, v in result.eval.items())
    print(
        f"step {result.step}: loss {loss}"
        + (f"; rollout L2RE {evals}" if evals else "")
        + f"; checkpoint {result.run_dir / 'checkpoint'}"
    )
    if result.interrupted:
        return 143 if result.interrupted == "SIGTERM" else 130
    return 0
