"""The registry of built-in PDE families: one module per family, each defining `FAMILY`."""

from __future__ import annotations

import importlib

from dpot.errors import DpotError
from dpot.solvers.base import Family

# Modules under dpot.solvers that define a FAMILY; add a module name here to register a new family.
_MODULES: tuple[str, ...] = (
    "ns2d_vorticity",
    "diffusion_reaction",
    "shallow_water",
    "darcy",
    "ns3d",
    "compressible_ns",
    "buoyancy",
    "cavity",
)


def _load() -> dict[str, Family]:
    families: dict[str, Family] = {}
    for module in _MODULES:
        family = importlib.import_module(f"dpot.solvers.{module}").FAMILY
        families[family.name] = family
    return families


FAMILIES: dict[str, Family] = _load()


def get_family(name: str) -> Family:
    """The family called `name`, or a DpotError listing the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise DpotError(f"unknown PDE family {name!r}; known families: {', '.join(sorted(FAMILIES))}") from None
