"""`dpot demo [--out DIR]`: generate, pre-train, evaluate zero-shot, fine-tune, compare with FNO, report."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", metavar="DIR", help="working folder (default demo_out)")
    parser.add_argument("--data", metavar="DIR", help="corpus folder (default OUT/data; generated if absent)")
    parser.add_argument(
        "--config", metavar="FILE", help="demo plan YAML (default: the DemoPlan defaults, see docs/downstream.md)"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="plan overrides, e.g. holdout=shallow_water_2d budget_seconds=600",
    )


def run(args: argparse.Namespace) -> int:
    from dpot.workflows.demo import run_demo

    report = run_demo(args.out, data=args.data, config=args.config, overrides=args.overrides)
    print(f"report: {report}")
    return 0
