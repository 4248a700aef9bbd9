"""`dpot export --merge ADAPTER_DIR --out DIR`: fold a LoRA adapter into its base checkpoint, giving a plain
DPOT checkpoint that loads with no adapter code and no extra dependency."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--merge",
        required=True,
        metavar="ADAPTER_DIR",
        help="a LoRA fine-tuning checkpoint (RUN/checkpoint of `dpot finetune ... finetune.method=lora`)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output checkpoint folder")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dpot.errors import DpotError
    from dpot.models.checkpoint import checkpoint_summary
    from dpot.models.lora import export_merged

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise DpotError(f"{out} already exists and is not empty; pass --overwrite to replace it")
    export_merged(args.merge, out)
    print(checkpoint_summary(out))
    return 0
