"""CFDBench-like lid-driven cavity: incompressible Navier–Stokes in a square box whose top wall moves.

∂t u + u·∇u = −∇p + ν Δu, ∇·u = 0, no-slip walls, lid velocity U along x; the flow starts from rest.
The stored res×res grid covers [0, 1]² and includes a one-cell solid frame: the fluid fills the inner
(res−2)² cells, the frame holds the wall velocity (U on the lid row, 0 elsewhere) and the `mask` channel is 1 in
the fluid and 0 in the walls (also stored as the static SimResult.mask), as DPOT's CFDBench data (u, v, mask).
Scheme: MAC grid, semi-Lagrangian advection with wall-consistent ghost values, implicit (backward Euler)
diffusion and an exact pressure projection, both through eigen-decompositions of the 1D operators.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dpot.errors import DpotError
from dpot.solvers import _flows_mac as mac
from dpot.solvers.base import Family, SimResult, trajectory_generator

T_FRAME = 0.25
CFL = 2.0  # advective Courant number per step (semi-Lagrangian advection is stable beyond 1)


class CavitySolver:
    """Batched lid-driven cavity on an n×n fluid grid of spacing dx with per-trajectory lid speed and viscosity."""

    def __init__(self, n: int, dx: float, lid: torch.Tensor, nu: torch.Tensor):
        self.n, self.dx, self.lid, self.nu = n, dx, lid, nu
        dev, dtype = lid.device, lid.dtype
        node = mac.second_difference(n - 1, dx, "dirichlet_node")
        cell = mac.second_difference(n, dx, "dirichlet_cell")
        self.diff_u = mac.EigenSolver2D(node, cell, dev, dtype)  # u: interior x-nodes, y-cells
        self.diff_v = mac.EigenSolver2D(cell, node, dev, dtype)  # v: x-cells, interior y-nodes
        neu = mac.second_difference(n, dx, "neumann")
        self.pressure = mac.EigenSolver2D(neu, neu, dev, dtype)
        b = lid.shape[0]
        self.u = torch.zeros(b, n + 1, n, device=dev, dtype=dtype)
        self.v = torch.zeros(b, n, n + 1, device=dev, dtype=dtype)

    def step(self, h: float) -> None:
        """Advect (semi-Lagrangian), diffuse (backward Euler, lid term on the top row), project."""
        u, v = mac.advect_velocity(self.u, self.v, h, self.dx, "noslip", self.lid)
        c = self.nu * h
        ru = u[:, 1:-1].clone()
        ru[:, :, -1] += c.view(-1, 1) * 2.0 * self.lid.view(-1, 1) / self.dx**2
        ui = self.diff_u.helmholtz(ru, c)
        vi = self.diff_v.helmholtz(v[:, :, 1:-1], c)
        zu, zv = torch.zeros_like(u[:, :1]), torch.zeros_like(v[:, :, :1])
        self.u, self.v = mac.project(torch.cat((zu, ui, zu), 1), torch.cat((zv, vi, zv), 2), self.dx, self.pressure)

    def advance(self, t: float) -> None:
        """Integrate over time t with equal steps at advective Courant number <= CFL."""
        speed = max(float(self.lid.abs().max()), float(self.u.abs().max()), float(self.v.abs().max()))
        m = max(1, math.ceil(t * speed / (CFL * self.dx)))
        for _ in range(m):
            self.step(t / m)

    def frame(self) -> torch.Tensor:
        """(B, n+2, n+2, 3) = (u, v, mask) at cell centres including the wall frame."""
        b, n = self.u.shape[0], self.n
        uc, vc = mac.centre_velocity(self.u, self.v)
        out = torch.zeros(b, n + 2, n + 2, 3, device=uc.device, dtype=uc.dtype)
        out[:, 1:-1, 1:-1, 0] = uc
        out[:, 1:-1, 1:-1, 1] = vc
        out[:, 1:-1, -1, 0] = self.lid.view(-1, 1)
        out[:, 1:-1, 1:-1, 2] = 1.0
        return out


def _draw(n: int, seed: int, start: int, lid, nu) -> np.ndarray:
    """Per-trajectory (lid, nu): numbers are fixed, [lo, hi] ranges are drawn (lid uniform, nu log-uniform)."""
    out = np.empty((n, 2))
    for i in range(n):
        r = torch.rand(2, generator=trajectory_generator(seed, start + i), dtype=torch.float64).numpy()
        for k, (name, value) in enumerate((("lid", lid), ("nu", nu))):
            if isinstance(value, (int, float)):
                out[i, k] = float(value)
                continue
            lo, hi = (float(x) for x in value)
            if not 0 < lo <= hi:
                raise DpotError(f"cavity_2d: {name} range {value} must be [lo, hi] with 0 < lo <= hi")
            out[i, k] = lo + (hi - lo) * r[k] if k == 0 else math.exp(math.log(lo) + (math.log(hi / lo)) * r[k])
    if np.any(out <= 0):
        raise DpotError("cavity_2d: lid speed and viscosity must be positive")
    return out


def simulate(
    n: int,
    res: int = 64,
    frames: int = 21,
    seed: int = 0,
    start: int = 0,
    device: str = "cpu",
    lid=(0.5, 2.0),
    nu=(2e-3, 2e-2),
    dt: float = T_FRAME,
) -> SimResult:
    """Trajectories `start .. start+n-1` from rest; channels (u, v, mask); `lid` and `nu` are numbers or ranges
    ([lo, hi]: lid uniform, nu log-uniform per trajectory). Reynolds number = lid·(1 − 2/res)/nu."""
    if res < 8 or frames < 1 or n < 1 or dt <= 0:
        raise DpotError(f"cavity_2d: need n >= 1, res >= 8, frames >= 1, dt > 0 (got {n}, {res}, {frames}, {dt})")
    p = _draw(n, seed, start, lid, nu)
    dtype = torch.float32
    sim = CavitySolver(
        res - 2,
        1.0 / res,
        torch.as_tensor(p[:, 0], device=device, dtype=dtype),
        torch.as_tensor(p[:, 1], device=device, dtype=dtype),
    )
    out = torch.empty(n, frames, res, res, 3, device=device, dtype=dtype)
    for k in range(frames):
        if k > 0:
            sim.advance(dt)
        out[:, k] = sim.frame()
        bad = ~torch.isfinite(out[:, k]).flatten(1).all(1)
        if bool(bad.any()):
            j = int(torch.nonzero(bad)[0])
            raise DpotError(f"cavity_2d: trajectory {start + j} became non-finite at t={k * dt:.4g}")
    mask = out[0, 0, :, :, 2].cpu().numpy()
    return SimResult(fields=out.cpu().numpy(), params=p, mask=mask)


FAMILY = Family(
    name="cavity_2d",
    pde="cavity",
    channels=["u", "v", "mask"],
    space=["x", "y"],
    domain=[[0.0, 1.0], [0.0, 1.0]],
    boundary=["wall", "wall"],
    dt=T_FRAME,
    simulate=simulate,
    param_names=["lid", "nu"],
    defaults={"res": 64, "frames": 21, "lid": [0.5, 2.0], "nu": [2e-3, 2e-2], "dt": T_FRAME},
    description="CFDBench-like lid-driven cavity from rest (one-cell wall frame, mask channel): MAC grid, "
    "semi-Lagrangian advection, implicit diffusion, exact projection",
)
