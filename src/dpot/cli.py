"""The `dpot` command line: one sub-command per module in `dpot.commands`, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from dpot.errors import DpotError, environment_error
from dpot.io import prune_empty_dirs

# name -> (module in dpot.commands, one-line help). Each module defines add_arguments(parser) and run(args).
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("generate", "run the built-in PDE solvers and write canonical datasets"),
    "convert": (
        "convert",
        "import a public dataset (fno-mat, pdebench, pdearena, the-well, cfdbench, neuralop, dpot-ref, arrays)",
    ),
    "info": ("info", "describe a dataset folder or a checkpoint"),
    "pretrain": ("pretrain", "auto-regressive denoising pre-training on a dataset mixture"),
    "finetune": ("finetune", "fine-tune a checkpoint on one task"),
    "evaluate": ("evaluate", "roll out a checkpoint on datasets: metrics JSON/CSV, plots, report"),
    "rollout": ("rollout", "predict a trajectory from your own history"),
    "import-checkpoint": ("import_checkpoint", "convert a released DPOT reference checkpoint (.pth or hf://)"),
    "export": ("export", "merge a LoRA adapter into its base: a plain checkpoint (--merge ADAPTER_DIR)"),
    "demo": ("demo", "the main job: generate, pre-train, evaluate, fine-tune, compare, report"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dpot", description="DPOT: PDE foundation models (pre-train, fine-tune, evaluate, roll out)."
    )
    from dpot import __version__

    parser.add_argument("--version", action="version", version=f"dpot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        _load(module).add_arguments(p)
    return parser


def _load(module: str):
    return importlib.import_module(f"dpot.commands.{module}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    out = getattr(args, "out", None) if isinstance(getattr(args, "out", None), str) else None
    fresh = out is not None and not os.path.exists(out)
    try:
        code = _load(args._module).run(args)
    except (DpotError, OSError) as exc:
        message = exc if isinstance(exc, DpotError) else environment_error(exc, args.command)
        if message is None:  # an OSError that is not about the machine's state: a bug, show the traceback
            raise
        print(f"dpot {args.command}: error: {message}", file=sys.stderr)
        if fresh:
            prune_empty_dirs(out)
        return 2
    except KeyboardInterrupt:
        print(f"dpot {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


def entry() -> None:
    """The `dpot` console command: `main`, then exit. A torchrun worker exits without interpreter finalisation,
    where gloo's threads can abort a run that already finished and saved (docs/training.md)."""
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
