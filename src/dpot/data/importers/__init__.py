"""Importers of public PDE datasets into the canonical format: one module per source, each with
`build(src, opts) -> Plan`; `convert()` applies the user's overrides and writes the dataset folder."""

from __future__ import annotations

import importlib
from pathlib import Path

from dpot.data.importers.common import ConvertOptions, Plan, apply_overrides, write_plan
from dpot.errors import DpotError

# format name -> module in dpot.data.importers
IMPORTERS: dict[str, str] = {
    "fno-mat": "fno_mat",
    "pdebench": "pdebench",
    "pdearena": "pdearena",
    "the-well": "the_well",
    "cfdbench": "cfdbench",
    "arrays": "arrays",
}


def plan(fmt: str, src: str | Path, opts: ConvertOptions | None = None) -> Plan:
    """What `convert` would write (metadata, shapes, split sizes), without writing anything."""
    if fmt not in IMPORTERS:
        raise DpotError(f"unknown format {fmt!r}; use one of: {', '.join(IMPORTERS)}")
    opts = opts or ConvertOptions()
    src = Path(src)
    if not src.exists():
        raise DpotError(f"{src}: no such file or directory")
    module = importlib.import_module(f"dpot.data.importers.{IMPORTERS[fmt]}")
    try:
        built = module.build(src, opts)
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DpotError(f"{src}: cannot read ({first}); the file may be truncated or corrupt") from None
    return apply_overrides(built, opts)


def convert(fmt: str, src: str | Path, out: str | Path, opts: ConvertOptions | None = None,
            progress: bool = True) -> Path:
    """Convert `src` (format `fmt`) into `out/<name>/{train,val,test}.h5`; returns the dataset folder."""
    opts = opts or ConvertOptions()
    return write_plan(plan(fmt, src, opts), out, overwrite=opts.overwrite, progress=progress)


__all__ = ["IMPORTERS", "ConvertOptions", "Plan", "convert", "plan"]
