"""What `dpot evaluate` and `dpot rollout` share: the options that load a checkpoint and run it."""

from __future__ import annotations

import argparse


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """`--batch-size`, `--device` and the repeatable `--set KEY=VALUE` load-time model options."""
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="load-time model option that keeps every weight's shape, e.g. interpolate_pos_embed=true (repeatable)",
    )
