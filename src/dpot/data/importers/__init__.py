"""Importers of public PDE datasets into the canonical format: one module per source, each with
`build(src, opts) -> Plan`; `convert()` applies the user's overrides and writes the dataset folder. A source
is one file or folder (split by the source or by `--split`) or one file per split (`{"train": A, "test": B}`)."""

from __future__ import annotations

import importlib
import re
from dataclasses import replace
from pathlib import Path

from dpot.data.format import SPLITS
from dpot.data.importers.common import (
    WHOLE,
    ConvertOptions,
    Plan,
    apply_overrides,
    carve_from_train,
    write_plan,
)
from dpot.errors import DpotError

# format name -> module in dpot.data.importers
IMPORTERS: dict[str, str] = {
    "fno-mat": "fno_mat",
    "pdebench": "pdebench",
    "pdearena": "pdearena",
    "the-well": "the_well",
    "cfdbench": "cfdbench",
    "arrays": "arrays",
    "neuralop": "neuralop",
    "dpot-ref": "dpot_ref",
}


def plan(fmt: str, src: str | Path | dict[str, str | Path], opts: ConvertOptions | None = None) -> Plan:
    """What `convert` would write (metadata, shapes, split sizes), without writing anything. `src` is one file
    or folder, or a dict split -> file (train/val/test) for sources shipped as one file per split."""
    if fmt not in IMPORTERS:
        raise DpotError(f"unknown format {fmt!r}; use one of: {', '.join(IMPORTERS)}")
    opts = opts or ConvertOptions()
    if isinstance(src, dict):
        return apply_overrides(_plan_split_files(fmt, {s: Path(p) for s, p in src.items()}, opts), opts)
    return apply_overrides(_build(fmt, Path(src), opts), opts)


def _build(fmt: str, src: Path, opts: ConvertOptions) -> Plan:
    if not src.exists():
        raise DpotError(f"{src}: no such file or directory")
    module = importlib.import_module(f"dpot.data.importers.{IMPORTERS[fmt]}")
    try:
        return module.build(src, opts)
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DpotError(f"{src}: cannot read ({first}); the file may be truncated or corrupt") from None


def _plan_split_files(fmt: str, files: dict[str, Path], opts: ConvertOptions) -> Plan:
    """One file per split: each file is read whole into its split; with a train file, the splits not given
    are carved from it by `--split`; without one, the dataset holds only the given splits (evaluation-only)."""
    unknown = [s for s in files if s not in SPLITS]
    if unknown or not files:
        raise DpotError(f"unknown split {unknown[0] if unknown else ''!r}; name files train=, val= or test=")
    given = [s for s in SPLITS if s in files]
    # metadata comes from the first file: the others are read with a dt set, so a missing time step warns once
    built = {
        s: _build(fmt, files[s], replace(opts, split=WHOLE, dt=opts.dt if s == given[0] else opts.dt or 1.0))
        for s in given
    }
    first_split, first = next(iter(built.items()))
    for s, p in built.items():
        if (
            p.meta.steady != first.meta.steady
            or p.meta.channels != first.meta.channels
            or (p.frame_shape, p.inputs_shape, p.targets_shape, p.n_params)
            != (first.frame_shape, first.inputs_shape, first.targets_shape, first.n_params)
        ):
            shape = p.frame_shape or p.inputs_shape
            raise DpotError(
                f"{files[s]}: samples {shape} (channels {', '.join(p.meta.channels)}) differ from "
                f"{files[first_split]} {first.frame_shape or first.inputs_shape}; splits of one dataset "
                f"share one shape: convert {s}={files[s]} alone as its own evaluation-only dataset "
                "(--name)"
            )
    parts = {s: [part for k in SPLITS for part in p.splits.get(k, [])] for s, p in built.items()}
    if "train" in parts:
        splits = carve_from_train(parts["train"], opts.split, [s for s in SPLITS if s not in parts])
        splits.update({s: ps for s, ps in parts.items() if s != "train"})
    else:
        splits = parts
    name = re.sub(r"[_\-.](train|test|valid|val)(?=[_\-.]|$)", "", first.meta.name, flags=re.IGNORECASE)
    meta = replace(first.meta, name=name or first.meta.name, source=", ".join(f"{s}={files[s]}" for s in built))
    meta.params = {**meta.params, "split_files": {s: str(files[s]) for s in built}}
    return replace(first, meta=meta, splits=splits)


def convert(
    fmt: str,
    src: str | Path | dict[str, str | Path],
    out: str | Path,
    opts: ConvertOptions | None = None,
    progress: bool = True,
) -> Path:
    """Convert `src` (format `fmt`; a path, or a dict split -> path) into `out/<name>/{train,val,test}.h5`;
    returns the dataset folder."""
    opts = opts or ConvertOptions()
    return write_plan(plan(fmt, src, opts), out, overwrite=opts.overwrite, progress=progress)


__all__ = ["IMPORTERS", "ConvertOptions", "Plan", "convert", "plan"]
