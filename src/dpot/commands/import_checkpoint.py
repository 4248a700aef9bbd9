"""`dpot import-checkpoint FILE.pth|hf://OWNER/REPO/FILE.pth --out DIR`: convert a released DPOT reference
checkpoint, from a local file or by name from the Hugging Face Hub (through its cache)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        help="reference checkpoint (read with weights_only=True): a local model_Ti.pth or a name such as "
        "hf://hzk17/DPOT/model_Ti.pth[@REVISION] (needs `pip install 'dpot[hub]'`; honours HF_HUB_OFFLINE)",
    )
    parser.add_argument("--out", required=True, help="output checkpoint folder")
    parser.add_argument("--revision", help="hf:// only: branch, tag or commit to pin (same as @REVISION)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dpot.errors import DpotError
    from dpot.models.checkpoint import checkpoint_summary
    from dpot.models.hub import download, is_hub_uri, origin
    from dpot.models.reference import import_reference_checkpoint

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise DpotError(f"{out} already exists and is not empty; pass --overwrite to replace it")
    if is_hub_uri(args.file):
        path, ref = download(args.file, args.revision)
        import_reference_checkpoint(path, out, origin=origin(ref, path))
    elif args.revision:
        raise DpotError("--revision applies to hf:// names only")
    else:
        import_reference_checkpoint(args.file, out)
    print(checkpoint_summary(out))
    return 0
