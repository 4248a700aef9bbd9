"""What `dpot pretrain` and `dpot finetune` share: the run options, the resume guard and the closing summary."""

from __future__ import annotations

import argparse
import os


class PathThenOverrides(argparse.Action):
    """`--out DIR key=value ...`: the first value is the option's; any that follow are overrides, so that
    options and overrides may come in any order."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values[0])
        namespace.extra_overrides = [*getattr(namespace, "extra_overrides", []), *values[1:]]


def add_run_arguments(parser: argparse.ArgumentParser, kind: str, example: str, overrides_help: str) -> None:
    """`--config NAME|FILE`, `--out RUN_DIR`, `--resume RUN_DIR` and `KEY=VALUE` overrides, in any order."""
    from dpot.config import PRESETS

    names = ", ".join(sorted(p.stem for p in (PRESETS / kind).glob("*.yaml")))
    parser.add_argument(
        "--config",
        metavar=("NAME|FILE", "KEY=VALUE"),
        nargs="+",
        action=PathThenOverrides,
        help=f"a packaged preset ({names}; e.g. --config {example}) or a YAML file",
    )
    parser.add_argument(
        "--out",
        metavar=("RUN_DIR", "KEY=VALUE"),
        nargs="+",
        action=PathThenOverrides,
        help="run directory (config.yaml, metrics.jsonl, tb/, checkpoint/)",
    )
    parser.add_argument(
        "--resume",
        metavar=("RUN_DIR", "KEY=VALUE"),
        nargs="+",
        action=PathThenOverrides,
        help="continue the run in RUN_DIR from its last checkpoint (its config.yaml plus any "
        "overrides, e.g. train.max_steps=M)",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=overrides_help)


def overrides(args: argparse.Namespace) -> list[str]:
    """The positional overrides and those given after an option's value."""
    return [*args.overrides, *getattr(args, "extra_overrides", [])]


def check_resume(args: argparse.Namespace, new_run_options: dict[str, str]) -> None:
    """`--resume RUN_DIR` continues with the run's saved config: the options that start a new run
    (`new_run_options`: argparse dest -> flag) are refused beside it."""
    from dpot.errors import DpotError

    given = [flag for dest, flag in new_run_options.items() if getattr(args, dest, None)]
    if args.resume and given:
        raise DpotError(
            f"--resume RUN_DIR continues with its saved config.yaml; drop {', '.join(given)} "
            "(overrides such as train.max_steps=M may follow)"
        )


def summarize(result, command: str) -> int:
    """Print the run's last step, loss, evaluation and checkpoint (main rank only); the exit code."""
    if int(os.environ.get("RANK", "0")) == 0:
        loss = "n/a" if result.loss is None else f"{result.loss:.4g}"
        evals = ", ".join(f"{k} {v:.4f}" for k, v in result.eval.items())
        print(
            f"step {result.step}: loss {loss}"
            + (f"; rollout L2RE at step {result.eval_step}: {evals}" if evals else "")
            + f"; checkpoint {result.run_dir / 'checkpoint'}"
        )
        if result.interrupted:
            print(f"continue with `dpot {command} --resume {result.run_dir}`")
    if result.interrupted:
        return 143 if result.interrupted == "SIGTERM" else 130
    return 0
