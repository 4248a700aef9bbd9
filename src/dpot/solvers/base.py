"""What every built-in PDE family provides: its metadata and a batched, per-trajectory-seeded simulator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class SimResult:
    """Output of one `simulate` call for trajectories `start .. start+n-1`."""

    fields: np.ndarray | None = None  # (n, T, *space, C) float32, time-dependent families
    inputs: np.ndarray | None = None  # (n, *space, C_in), steady-state families
    targets: np.ndarray | None = None  # (n, *space, C_out), steady-state families
    params: np.ndarray | None = None  # (n, K) per-trajectory parameters, columns = Family.param_names
    mask: np.ndarray | None = None  # static geometry mask (*space), if any


@dataclass
class Family:
    """A built-in PDE family. `simulate(n, res, frames, seed, start, device, **params)` returns a SimResult;
    trajectory `start+i` depends only on (seed, start+i), so generation can be sharded and resumed."""

    name: str
    pde: str  # a word of dpot.data.format.PDES
    channels: list[str]
    space: list[str]
    domain: list[list[float]]
    boundary: list[str]
    dt: float  # physical time between stored frames
    simulate: Callable[..., SimResult]
    param_names: list[str] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)  # default res, frames and physical parameters
    steady: bool = False
    input_channels: list[str] = field(default_factory=list)
    description: str = ""


def trajectory_generator(seed: int, index: int, device: str | torch.device = "cpu") -> torch.Generator:
    """The RNG for trajectory `index` of a dataset generated with `seed`: independent of batching and sharding."""
    g = torch.Generator(device=device)
    g.manual_seed((int(seed) * 1_000_003 + int(index)) % (2**63 - 1))
    return g
