"""`dpot finetune --from CKPT --data DIR --out FT_DIR [--config NAME|FILE] [key=value ...]`: adapt a checkpoint
to one task and train it."""

from __future__ import annotations

import argparse

from dpot.commands.runs import PathThenOverrides, add_run_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="init",
        metavar=("CKPT", "KEY=VALUE"),
        nargs="+",
        action=PathThenOverrides,
        help="checkpoint directory to start from (ours or from `dpot import-checkpoint`)",
    )
    parser.add_argument(
        "--data",
        metavar=("DIR", "KEY=VALUE"),
        nargs="+",
        action=PathThenOverrides,
        help="one canonical dataset folder (DIR/<dataset>)",
    )
    add_run_arguments(
        parser,
        "finetune",
        "few_shot",
        "dotted overrides, e.g. train.max_steps=200 data.n_trajectories=8 "
        "finetune.freeze=[backbone] finetune.channels=widen model=fno",
    )
    parser.epilog = (
        "model=pretrained (default) adapts --from; model=scratch trains the same network from "
        "random weights; model=fno trains the neuraloperator FNO baseline. See docs/downstream.md."
    )


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from dpot.commands.runs import check_resume, overrides, summarize
    from dpot.training.finetune import load_finetune_config, run_finetune

    check_resume(args, {"config": "--config", "init": "--from", "data": "--data", "out": "--out"})
    cfg = load_finetune_config(args.config, overrides(args), resume=args.resume)
    if not args.resume:
        cfg = replace(
            cfg,
            init=args.init or cfg.init,
            out=args.out or cfg.out,
            data=replace(cfg.data, path=args.data or cfg.data.path),
        )
    return summarize(run_finetune(cfg, resume=bool(args.resume)), "finetune")
