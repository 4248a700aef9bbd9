"""`dpot pretrain --config NAME|FILE --out RUN_DIR [key=value ...]`: auto-regressive denoising pre-training on a
mixture."""

from __future__ import annotations

import argparse

from dpot.commands.runs import add_run_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(
        parser, "pretrain", "tiny", "dotted config overrides, e.g. data.root=DIR train.max_steps=100 optim.lr=3e-4"
    )
    parser.epilog = (
        "Under `torchrun --nproc_per_node N` it trains data-parallel (DDP; train.strategy=fsdp "
        "shards large models). SIGTERM or Ctrl-C saves a checkpoint before exiting."
    )


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from dpot.commands.runs import check_resume, overrides, summarize
    from dpot.training.pretrain import load_pretrain_config, run_pretrain

    check_resume(args, {"config": "--config", "out": "--out"})
    cfg = load_pretrain_config(args.config, overrides(args), resume=args.resume)
    if args.out:
        cfg = replace(cfg, out=args.out)
    return summarize(run_pretrain(cfg, resume=bool(args.resume)), "pretrain")
