"""Generation presets: which datasets `dpot generate PRESET` writes, with sizes, grids and frame counts.

`tiny` is for tests (every family, seconds), `default` is the embedded pre-training corpus (64x64, minutes
on a CPU), `paper` follows the sizes and grids of the datasets DPOT was pre-trained on (for GPU machines,
sharded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dpot.errors import DpotError


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset to generate: family, split sizes, grid, frames, physical parameters (None = default)."""

    name: str
    family: str
    n_train: int
    n_val: int
    n_test: int
    res: int | None = None
    frames: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    batch: int = 32  # trajectories simulated together


@dataclass(frozen=True)
class Preset:
    """A named corpus; splits larger than `part_size` are written in parts (unit of sharding and resume)."""

    name: str
    description: str
    datasets: tuple[DatasetSpec, ...]
    part_size: int = 1 << 30


def _ns(name: str, nu: float, n: tuple[int, int, int], res: int, frames: int, **kw: Any) -> DatasetSpec:
    return DatasetSpec(name, "ns2d_vorticity", *n, res=res, frames=frames, params={"nu": nu, **kw})


def _cns(name: str, mach: float, eta: float, n: tuple[int, int, int], res: int, frames: int, **kw: Any) -> DatasetSpec:
    params = {"mach": mach, "eta": eta, "zeta": eta, **kw}
    return DatasetSpec(name, "compressible_ns_2d", *n, res=res, frames=frames, params=params)


TINY = Preset(
    "tiny",
    "every family on tiny grids, a few trajectories (seconds; used by tests)",
    (
        _ns("ns2d_nu1e-3", 1e-3, (4, 2, 2), 16, 14),
        _ns("ns2d_nu1e-5", 1e-5, (4, 2, 2), 16, 14),
        DatasetSpec("diffusion_reaction_2d", "diffusion_reaction_2d", 4, 2, 2, res=16, frames=14, params={"dt": 0.1}),
        DatasetSpec("shallow_water_2d", "shallow_water_2d", 4, 2, 2, res=16, frames=14, params={"dt": 0.05}),
        DatasetSpec("darcy_2d", "darcy_2d", 4, 2, 2, res=16),
        DatasetSpec("ns3d", "ns3d", 4, 2, 2, res=16, frames=14),
        _cns("cns2d_M1_eta1e-2", 1.0, 0.01, (4, 2, 2), 16, 14, dt=0.02),
        DatasetSpec("ns2d_buoyancy", "ns2d_buoyancy", 4, 2, 2, res=16, frames=14),
        DatasetSpec("cavity_2d", "cavity_2d", 4, 2, 2, res=16, frames=14),
    ),
)

DEFAULT = Preset(
    "default",
    "the embedded pre-training corpus: 64x64, >= 100 training trajectories per dataset",
    (
        _ns("ns2d_nu1e-3", 1e-3, (100, 16, 16), 64, 25),
        _ns("ns2d_nu1e-4", 1e-4, (100, 16, 16), 64, 25),
        _ns("ns2d_nu1e-5", 1e-5, (100, 16, 16), 64, 21, upsample=2),  # 64² alone is under-resolved (docs/solvers.md)
        DatasetSpec(
            "diffusion_reaction_2d",
            "diffusion_reaction_2d",
            100,
            16,
            16,
            res=64,
            frames=26,
            params={"dt": 0.2},
        ),
        DatasetSpec("shallow_water_2d", "shallow_water_2d", 100, 16, 16, res=64, frames=26, params={"dt": 0.04}),
        DatasetSpec("darcy_2d", "darcy_2d", 100, 16, 16, res=64),
        DatasetSpec("ns2d_buoyancy", "ns2d_buoyancy", 100, 16, 16, res=64, frames=32),
        DatasetSpec("cavity_2d", "cavity_2d", 100, 16, 16, res=64, frames=21),
    ),
)

PAPER = Preset(
    "paper",
    "the sizes, grids and frame counts of DPOT's pre-training data (GPU machines, sharded)",
    (
        _ns("ns2d_nu1e-3", 1e-3, (1000, 100, 200), 64, 51),
        _ns("ns2d_nu1e-4", 1e-4, (9800, 100, 200), 64, 31, upsample=2),
        _ns("ns2d_nu1e-5", 1e-5, (1000, 100, 200), 64, 21, upsample=4),
        DatasetSpec("diffusion_reaction_2d", "diffusion_reaction_2d", 900, 40, 60, res=128, frames=101),
        DatasetSpec("shallow_water_2d", "shallow_water_2d", 900, 40, 60, res=128, frames=101),
        DatasetSpec("darcy_2d", "darcy_2d", 1000, 100, 100, res=128),
        DatasetSpec("ns3d", "ns3d", 540, 30, 60, res=32, frames=21),
        _cns("cns2d_M0.1_eta1e-1", 0.1, 0.1, (9000, 100, 200), 128, 21),
        _cns("cns2d_M0.1_eta1e-2", 0.1, 0.01, (9000, 100, 200), 128, 21),
        _cns("cns2d_M1_eta1e-1", 1.0, 0.1, (9000, 100, 200), 128, 21),
        _cns("cns2d_M1_eta1e-2", 1.0, 0.01, (9000, 100, 200), 128, 21),
        DatasetSpec("ns2d_buoyancy", "ns2d_buoyancy", 6656, 100, 200, res=128, frames=56),
        DatasetSpec("cavity_2d", "cavity_2d", 1000, 100, 200, res=64, frames=21),
    ),
    part_size=500,
)

PRESETS: dict[str, Preset] = {p.name: p for p in (TINY, DEFAULT, PAPER)}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a DpotError listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise DpotError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None
