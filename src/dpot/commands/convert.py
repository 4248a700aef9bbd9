"""`dpot convert FORMAT SRC --out DIR` (or `FORMAT train=A test=B [val=C]`, or `FORMAT test=B` for an
evaluation-only dataset): import a public dataset into the canonical format (docs/data-format.md)."""

from __future__ import annotations

import argparse

FORMATS = ("fno-mat", "pdebench", "pdearena", "the-well", "cfdbench", "arrays", "neuralop", "dpot-ref")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", metavar="FORMAT", help=f"source format: {', '.join(FORMATS)}")
    parser.add_argument(
        "src",
        metavar="SRC",
        nargs="+",
        help="source file or folder; or one file per split: train=FILE [val=FILE] test=FILE "
        "(splits not given are carved from train by --split); test=FILE alone writes an "
        "evaluation-only dataset",
    )
    parser.add_argument("--out", required=True, help="output root; the dataset goes to OUT/<name>/")
    g = parser.add_argument_group("metadata overrides (default: read from the source)")
    g.add_argument("--name", help="dataset folder name")
    g.add_argument("--pde", help="pde word (see docs/data-format.md)")
    g.add_argument("--dt", type=float, help="physical time between stored frames")
    g.add_argument("--domain", help="extent per axis, e.g. 0:1 (all axes) or 0:1,0:2")
    g.add_argument("--boundary", help="per axis: periodic, neumann, dirichlet, wall, open (one word = all axes)")
    g.add_argument(
        "--channels",
        help="comma-separated channel names; for pdebench variable files it selects and orders "
        "variables (e.g. Vx,Vy,Vz,pressure,density)",
    )
    parser.add_argument(
        "--split",
        default="0.8,0.1,0.1",
        help="train,val,test fractions or counts over trajectories in source order (sources "
        "with their own splits keep them; with split files, a split not given takes its share "
        "of the train file); default 0.8,0.1,0.1",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = parser.add_argument_group("arrays format")
    a.add_argument(
        "--layout",
        help='axis names of the source arrays, e.g. "n t x y c" (n: trajectory, t: time, '
        "c: channel, other names: space axes in canonical order)",
    )
    a.add_argument("--fields", help="comma-separated keys of time-dependent arrays (stacked as channels)")
    a.add_argument("--inputs", help="comma-separated keys of steady-state inputs")
    a.add_argument("--targets", help="comma-separated keys of steady-state targets")
    a.add_argument("--input-channels", help="comma-separated names of the input channels (steady-state)")
    f = parser.add_argument_group("fno-mat / cfdbench formats")
    f.add_argument("--with-initial", action="store_true", help="fno-mat: prepend the initial vorticity `a` as frame 0")
    f.add_argument(
        "--frames",
        type=int,
        default=20,
        help="cfdbench: frames per stored window (cases are cut into windows); default 20",
    )


def run(args: argparse.Namespace) -> int:
    from dpot.data.importers import ConvertOptions, convert
    from dpot.data.importers.common import parse_names

    opts = ConvertOptions(
        name=args.name,
        pde=args.pde,
        dt=args.dt,
        domain=args.domain,
        boundary=args.boundary,
        channels=parse_names(args.channels),
        split=args.split,
        overwrite=args.overwrite,
        layout=args.layout,
        fields=parse_names(args.fields),
        inputs=parse_names(args.inputs),
        targets=parse_names(args.targets),
        input_channels=parse_names(args.input_channels),
        with_initial=args.with_initial,
        frames=args.frames,
    )
    target = convert(args.format, parse_sources(args.src), args.out, opts, progress=not args.no_progress)
    from dpot.data.format import SPLITS, Split

    splits = [Split(target / f"{s}.h5") for s in SPLITS if (target / f"{s}.h5").is_file()]
    sizes = "; ".join(f"{sp.path.stem} {sp.shape}" for sp in splits)
    meta = splits[0].meta
    only = "" if splits[0].path.stem == "train" else "; evaluation-only"
    print(f"wrote {target} ({meta.pde}; channels {', '.join(meta.channels)}; {sizes}{only})")
    return 0


def parse_sources(items: list[str]) -> str | dict[str, str]:
    """One SRC path, or `split=PATH` items (train/val/test, each at most once)."""
    from dpot.errors import DpotError

    named = [i for i in items if i.partition("=")[0] in ("train", "val", "test") and "=" in i]
    if len(items) == 1 and not named:
        return items[0]
    if len(named) != len(items):
        bad = next(i for i in items if i not in named)
        raise DpotError(f"source {bad!r}: give one SRC, or one file per split as train=FILE val=FILE test=FILE")
    out: dict[str, str] = {}
    for item in named:
        split, _, path = item.partition("=")
        if split in out:
            raise DpotError(f"{split}= given twice; name one file per split")
        out[split] = path
    return out
