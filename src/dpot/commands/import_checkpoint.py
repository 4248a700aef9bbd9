"""`dpot import-checkpoint FILE.pth --out DIR`: convert a released DPOT reference checkpoint."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="reference checkpoint, e.g. model_Ti.pth (read with weights_only=True)")
    parser.add_argument("--out", required=True, help="output checkpoint folder")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dpot.errors import DpotError
    from dpot.models.checkpoint import checkpoint_summary
    from dpot.models.reference import import_reference_checkpoint

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise DpotError(f"{out} already exists and is not empty; pass --overwrite to replace it")
    import_reference_checkpoint(args.file, out)
    print(checkpoint_summary(out))
    return 0
