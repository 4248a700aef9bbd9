"""`dpot pretrain --config FILE [key=value ...]`: auto-regressive denoising pre-training on a mixture."""

from __future__ import annotations

import argparse


class _PathThenOverrides(argparse.Action):
    """`--out DIR key=value ...`: the first value is the option's; any that follow are overrides, so that
    options and overrides may come in any order."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values[0])
        namespace.extra_overrides = [*getattr(namespace, "extra_overrides", []), *values[1:]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar=("FILE", "KEY=VALUE"), nargs="+", action=_PathThenOverrides,
                        help="YAML config (e.g. configs/pretrain/tiny.yaml)")
    parser.add_argument("--out", metavar=("RUN_DIR", "KEY=VALUE"), nargs="+", action=_PathThenOverrides,
                        help="run directory (config.yaml, metrics.jsonl, tb/, checkpoint/)")
    parser.add_argument("--resume", metavar=("RUN_DIR", "KEY=VALUE"), nargs="+", action=_PathThenOverrides,
                        help="continue the run in RUN_DIR from its last checkpoint (its config.yaml plus any "
                        "overrides, e.g. train.max_steps=M)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="dotted config overrides, e.g. data.root=DIR train.max_steps=100 optim.lr=3e-4")
    parser.epilog = ("Under `torchrun --nproc_per_node N` it trains data-parallel (DDP; train.strategy=fsdp "
                     "shards large models). SIGTERM or Ctrl-C saves a checkpoint before exiting.")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from dpot.errors import DpotError
    from dpot.training.pretrain import load_pretrain_config, run_pretrain

    if args.resume and args.config:
        raise DpotError("give either --config (a new run) or --resume RUN_DIR (its saved config), not both")
    if args.resume and args.out:
        raise DpotError("--resume continues in RUN_DIR itself; drop --out")
    overrides = [*args.overrides, *getattr(args, "extra_overrides", [])]
    cfg = load_pretrain_config(args.config, overrides, resume=args.resume)
    if args.out:
        cfg = replace(cfg, out=args.out)
    result = run_pretrain(cfg, resume=bool(args.resume))
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        loss = "n/a" if result.loss is None else f"{result.loss:.4g}"
        evals = ", ".join(f"{k} {v:.4f}" for k, v in result.eval.items())
        print(f"step {result.step}: loss {loss}"
              + (f"; rollout L2RE at step {result.eval_step}: {evals}" if evals else "")
              + f"; checkpoint {result.run_dir / 'checkpoint'}")
    if result.interrupted:
        return 143 if result.interrupted == "SIGTERM" else 130
    return 0
