"""`dpot generate PRESET|FAMILY --out DIR`: run the built-in solvers and write canonical datasets."""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", help="a preset (tiny, default, paper) or a PDE family name; see --list")
    parser.add_argument("--out", help="output folder (one sub-folder per dataset, plus manifest.json)")
    parser.add_argument("--list", action="store_true", help="list presets and families, then exit")
    parser.add_argument("--n", type=int, help="training trajectories per dataset (family mode default: 32)")
    parser.add_argument("--n-val", type=int, help="validation trajectories (family mode default: max(2, n/8))")
    parser.add_argument("--n-test", type=int, help="test trajectories (family mode default: max(2, n/8))")
    parser.add_argument("--res", type=int, help="grid points per axis")
    parser.add_argument("--frames", type=int, help="stored frames per trajectory, including t=0")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="physical parameter of the family (family mode), e.g. nu=1e-4; repeatable",
    )
    parser.add_argument("--name", help="dataset name in family mode (default: the family name)")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes (default 0 = one per CPU core, up to 8, unless the corpus is tiny)",
    )
    parser.add_argument("--device", default="cpu", help="torch device for the solvers, e.g. cuda (default cpu)")
    parser.add_argument("--batch", type=int, help="trajectories simulated together (default 32)")
    parser.add_argument("--shard", help="i/n: generate only shard i of n (default: RANK/WORLD_SIZE under torchrun)")
    parser.add_argument("--part-size", type=int, help="trajectories per part file (sharding/resume unit)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _parse_value(text: str):
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def _shard(args: argparse.Namespace) -> tuple[int, int]:
    from dpot.errors import DpotError

    if args.shard:
        try:
            i, n = (int(x) for x in args.shard.split("/"))
        except ValueError:
            raise DpotError(f"--shard {args.shard!r}: expected i/n, e.g. 0/4") from None
        return i, n
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


def _device(name: str) -> str:
    import torch

    from dpot.errors import DpotError

    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DpotError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if name == "cuda" and "LOCAL_RANK" in os.environ:
            return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return name


_INTERFACE = {"n", "res", "frames", "seed", "start", "device"}  # simulate's arguments that are not physics


def _keyword_parameters(family) -> dict:
    """The physical parameters `family.simulate` accepts, with their defaults."""
    import inspect

    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    sig = inspect.signature(family.simulate).parameters.values()
    return {p.name: p.default for p in sig if p.kind in kinds and p.name not in _INTERFACE}


def _listing() -> str:
    from dpot.solvers.presets import PRESETS
    from dpot.solvers.registry import FAMILIES

    lines = ["presets:"]
    for p in PRESETS.values():
        lines.append(
            f"  {p.name:24s} {p.description} ({len(p.datasets)} datasets: {', '.join(d.name for d in p.datasets)})"
        )
    lines.append("families:")
    for f in FAMILIES.values():
        params = ", ".join(f"{k}={v}" for k, v in f.defaults.items())
        lines.append(f"  {f.name:24s} {f.description} [{params}]")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from dpot.errors import DpotError
    from dpot.solvers.generate import generate
    from dpot.solvers.presets import PRESETS, DatasetSpec
    from dpot.solvers.registry import FAMILIES

    if args.list:
        print(_listing())
        return 0
    if not args.target:
        raise DpotError("give a preset or family to generate (see `dpot generate --list`)")
    if not args.out:
        raise DpotError("--out DIR is required")
    for flag in ("n", "n_val", "n_test", "res", "frames", "batch", "part_size"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag in ("n_val", "n_test") else 1):
            raise DpotError(f"--{flag.replace('_', '-')} must be positive (got {value})")
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DpotError(f"--param {item!r}: expected KEY=VALUE")
        params[key] = _parse_value(value)

    if args.target in PRESETS:
        preset = PRESETS[args.target]
        if params or args.name:
            raise DpotError("--param and --name apply to a single family, not to a preset")
        specs = []
        for d in preset.datasets:
            over = {
                k: v
                for k, v in (
                    ("n_train", args.n),
                    ("n_val", args.n_val),
                    ("n_test", args.n_test),
                    ("res", args.res),
                    ("frames", args.frames),
                    ("batch", args.batch),
                )
                if v is not None
            }
            specs.append(replace(d, **over))
        part_size, preset_name = args.part_size or preset.part_size, preset.name
    elif args.target in FAMILIES:
        family = FAMILIES[args.target]
        known = _keyword_parameters(family)
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise DpotError(f"family {family.name} has no parameter {unknown[0]!r}; known: {', '.join(sorted(known))}")
        for key, value in params.items():
            default = known[key]
            numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
            if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise DpotError(f"--param {key}={value}: expected a number")
            if isinstance(default, float):
                params[key] = float(value)
        n = args.n or 32
        specs = [
            DatasetSpec(
                args.name or family.name,
                family.name,
                n,
                args.n_val if args.n_val is not None else max(2, n // 8),
                args.n_test if args.n_test is not None else max(2, n // 8),
                res=args.res,
                frames=args.frames,
                params=params,
                batch=args.batch or 32,
            )
        ]
        part_size, preset_name = args.part_size or (1 << 30), None
    else:
        raise DpotError(
            f"unknown preset or family {args.target!r}; presets: {', '.join(PRESETS)}; "
            f"families: {', '.join(sorted(FAMILIES))}"
        )

    shard = _shard(args)
    manifest = generate(
        specs,
        args.out,
        seed=args.seed,
        workers=args.workers,
        device=_device(args.device),
        shard=shard,
        part_size=part_size,
        preset=preset_name,
        progress=not args.quiet,
        log=not args.quiet,
    )
    done = [name for name in (s.name for s in specs) if manifest["datasets"][name]["complete"]]
    print(f"{len(done)}/{len(specs)} datasets complete in {args.out} (manifest: {args.out}/manifest.json)")
    if shard[1] > 1 and len(done) < len(specs):
        print("other shards are still missing; rerun without --shard after all shards finish to merge parts")
    return 0
