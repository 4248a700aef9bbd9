"""`dpot evaluate --checkpoint CKPT... --data DIR... [--rollout K] --out DIR`: metrics, plots and a report."""

from __future__ import annotations

import argparse

from dpot.commands.loading import add_inference_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        nargs="+",
        required=True,
        metavar="CKPT",
        help="checkpoint directories; several are compared on one figure (LABEL=CKPT names a curve)",
    )
    parser.add_argument(
        "--data", nargs="+", required=True, metavar="DIR", help="dataset folders, or roots holding several"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (metrics.json, metrics.csv, PNG plots, report.md)",
    )
    parser.add_argument(
        "--rollout", type=int, metavar="K", help="rollout steps (default: every frame after the first T_in)"
    )
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument(
        "--n-trajectories",
        type=int,
        metavar="N",
        help="evaluate only the first N trajectories of each dataset",
    )
    add_inference_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from dpot.evaluation.evaluate import checkpoint_label, evaluate_command
    from dpot.models.checkpoint import parse_overrides

    summary = evaluate_command(
        args.checkpoint,
        args.data,
        args.out,
        rollout=args.rollout,
        split=args.split,
        n_trajectories=args.n_trajectories,
        batch_size=args.batch_size,
        device=args.device,
        overrides=parse_overrides(checkpoint_label(args.checkpoint[0])[1], args.set),
    )
    print(summary)
    return 0
