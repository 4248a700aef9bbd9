"""`dpot rollout --checkpoint CKPT --input FILE --steps K --out FILE`: predict from your own history."""

from __future__ import annotations

import argparse

from dpot.commands.loading import add_inference_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint directory")
    parser.add_argument(
        "--input",
        required=True,
        metavar="FILE",
        help="history: a canonical split file (.h5; fields (N, T, *space, C)) or .npy/.npz",
    )
    parser.add_argument("--steps", required=True, type=int, metavar="K", help="frames to predict")
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output file, same kind and layout as the input (.h5, .npy or .npz)",
    )
    parser.add_argument(
        "--layout",
        metavar="AXES",
        help='axis order of a .npy/.npz input, e.g. "n t x y c" (letters n, t, c, x, y, z; n and c optional)',
    )
    parser.add_argument("--key", help="array name inside a .npz (default: its only array)")
    parser.add_argument(
        "--include-history", action="store_true", help="write the history frames before the predicted ones"
    )
    add_inference_arguments(parser)
    parser.add_argument(
        "--dataset",
        metavar="NAME",
        help="whose normalisation statistics to use, for a checkpoint trained on several standardised "
        "datasets (default: the input's dataset name)",
    )


def run(args: argparse.Namespace) -> int:
    from dpot.evaluation.inference import rollout_file
    from dpot.models.checkpoint import parse_overrides

    print(
        rollout_file(
            args.checkpoint,
            args.input,
            args.steps,
            args.out,
            layout=args.layout,
            key=args.key,
            include_history=args.include_history,
            batch_size=args.batch_size,
            device=args.device,
            dataset=args.dataset,
            overrides=parse_overrides(args.checkpoint, args.set),
        )
    )
    return 0
