"""`dpot convert FORMAT SRC --out DIR`: import a public dataset into the canonical format
(docs/data-format.md)."""

from __future__ import annotations

import argparse

FORMATS = ("fno-mat", "pdebench", "pdearena", "the-well", "cfdbench", "arrays")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", metavar="FORMAT", help=f"source format: {', '.join(FORMATS)}")
    parser.add_argument("src", metavar="SRC", help="source file or folder")
    parser.add_argument("--out", required=True, help="output root; the dataset goes to OUT/<name>/")
    g = parser.add_argument_group("metadata overrides (default: read from the source)")
    g.add_argument("--name", help="dataset folder name")
    g.add_argument("--pde", help="pde word (see docs/data-format.md)")
    g.add_argument("--dt", type=float, help="physical time between stored frames")
    g.add_argument("--domain", help="extent per axis, e.g. 0:1 (all axes) or 0:1,0:2")
    g.add_argument("--boundary",
                   help="per axis: periodic, neumann, dirichlet, wall, open (one word = all axes)")
    g.add_argument("--channels",
                   help="comma-separated channel names; for pdebench variable files it selects and orders "
                   "variables (e.g. Vx,Vy,Vz,pressure,density)")
    parser.add_argument("--split", default="0.8,0.1,0.1",
                        help="train,val,test fractions or counts over trajectories in source order (sources "
                        "with their own splits keep them); default 0.8,0.1,0.1")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = parser.add_argument_group("arrays format")
    a.add_argument("--layout",
                   help='axis names of the source arrays, e.g. "n t x y c" (n: trajectory, t: time, '
                   "c: channel, other names: space axes in canonical order)")
    a.add_argument("--fields", help="comma-separated keys of time-dependent arrays (stacked as channels)")
    a.add_argument("--inputs", help="comma-separated keys of steady-state inputs")
    a.add_argument("--targets", help="comma-separated keys of steady-state targets")
    a.add_argument("--input-channels", help="comma-separated names of the input channels (steady-state)")
    f = parser.add_argument_group("fno-mat / cfdbench formats")
    f.add_argument("--with-initial", action="store_true",
                   help="fno-mat: prepend the initial vorticity `a` as frame 0")
    f.add_argument("--frames", type=int, default=20,
                   help="cfdbench: frames per stored window (cases are cut into windows); default 20")


def run(args: argparse.Namespace) -> int:
    from dpot.data.importers import ConvertOptions, convert
    from dpot.data.importers.common import parse_names

    opts = ConvertOptions(
        name=args.name, pde=args.pde, dt=args.dt, domain=args.domain, boundary=args.boundary,
        channels=parse_names(args.channels), split=args.split, overwrite=args.overwrite, layout=args.layout,
        fields=parse_names(args.fields), inputs=parse_names(args.inputs), targets=parse_names(args.targets),
        input_channels=parse_names(args.input_channels), with_initial=args.with_initial, frames=args.frames,
    )
    target = convert(args.format, args.src, args.out, opts, progress=not args.no_progress)
    from dpot.data.format import SPLITS, open_split

    sizes = []
    for s in SPLITS:
        sp = open_split(target, s)
        sizes.append(f"{s} {sp.shape}")
    print(f"wrote {target} ({sp.meta.pde}; channels {', '.join(sp.meta.channels)}; {'; '.join(sizes)})")
    return 0
