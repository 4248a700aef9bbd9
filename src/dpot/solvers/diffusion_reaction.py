"""PDEBench 2D diffusion-reaction (FitzHugh-Nagumo) on [-1, 1]^2 with zero-flux walls.

du/dt = Du Lap(u) + u - u^3 - k - v,   dv/dt = Dv Lap(v) + u - v,   Du = 1e-3, Dv = 5e-3, k = 5e-3,
u0, v0 ~ N(0, 1) i.i.d. per cell. Cell-centred finite volumes (mirrored ghost cells) and classical RK4 with a
fixed step inside each output interval, chosen from the diffusion and reaction stability bounds.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dpot.errors import DpotError
from dpot.solvers.base import Family, SimResult, trajectory_generator
from dpot.solvers.stepping import check_finite

DOMAIN = (-1.0, 1.0)


def neumann_laplacian(x: torch.Tensor, dx: float) -> torch.Tensor:
    """Five-point finite-volume Laplacian of `(B, C, N, M)` cells with zero-flux (mirrored) boundaries."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return (p[..., 2:, 1:-1] + p[..., :-2, 1:-1] + p[..., 1:-1, 2:] + p[..., 1:-1, :-2] - 4 * x) / dx**2


def fhn_rhs(y: torch.Tensor, dx: float, du: float, dv: float, k: float, reaction: bool = True) -> torch.Tensor:
    """Right-hand side for the state `(B, 2, N, M)` = (u, v)."""
    lap = neumann_laplacian(y, dx)
    u, v = y[:, 0], y[:, 1]
    out = torch.stack((du * lap[:, 0], dv * lap[:, 1]), dim=1)
    if reaction:
        out = out + torch.stack((u - u**3 - k - v, u - v), dim=1)
    return out


def rk4(y: torch.Tensor, h: torch.Tensor, f) -> torch.Tensor:
    """One classical Runge-Kutta 4 step of size h `(B, 1, 1, 1)` (zero leaves a trajectory unchanged)."""
    k1 = f(y)
    k2 = f(y + (h / 2) * k1)
    k3 = f(y + (h / 2) * k2)
    k4 = f(y + h * k3)
    return y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


def integrate(
    y0: torch.Tensor,
    frames: int,
    dt: float,
    dx: float,
    du: float,
    dv: float,
    k: float,
    reaction: bool = True,
    name: str = "diffusion_reaction_2d",
    start: int = 0,
) -> torch.Tensor:
    """Integrate `(B, 2, N, M)` from t=0; return `(B, frames, 2, N, M)`. RK4's real stability interval is
    about [-2.78, 0]; h <= 2 / (8 max(D) / dx^2 + J) keeps diffusion and the reaction Jacobian
    |1 - 3u^2| <= J in it. J = 30 (|u| < 3.2) unless a trajectory is larger; each trajectory gets its own
    number of equal sub-steps per frame, re-chosen every frame, so its result does not depend on the batch."""
    out = [y0]
    y = y0
    for f in range(1, frames):
        u_max = y[:, 0].abs().amax(dim=(1, 2)).double().cpu()
        jac = torch.clamp(3 * u_max**2 + 1, min=30.0) if reaction else torch.zeros_like(u_max)
        n_sub = torch.ceil(dt * (8 * max(du, dv) / dx**2 + jac) / 2.0).clamp(min=1)
        h_traj = (dt / n_sub).to(device=y.device, dtype=y.dtype).reshape(-1, 1, 1, 1)
        n_dev = n_sub.to(y.device).reshape(-1, 1, 1, 1)  # copied once per frame; sub-steps read nothing back
        for i in range(int(n_sub.max())):
            h = torch.where(n_dev > i, h_traj, torch.zeros_like(h_traj))
            y = rk4(y, h, lambda s: fhn_rhs(s, dx, du, dv, k, reaction))
        check_finite(y, name, start, f * dt)
        out.append(y)
    return torch.stack(out, dim=1)


def simulate(
    n: int,
    res: int,
    frames: int,
    seed: int,
    start: int = 0,
    device: str = "cpu",
    *,
    du: float = 1e-3,
    dv: float = 5e-3,
    k: float = 5e-3,
    dt: float = 0.05,
) -> SimResult:
    """Trajectories `start..start+n-1`: (u, v) `(n, frames, res, res, 2)` at t = 0, dt, ... (PDEBench: 101
    frames, dt = 0.05)."""
    if du <= 0 or dv <= 0 or dt <= 0:
        raise DpotError(f"diffusion_reaction_2d: need du, dv, dt > 0 (got du={du}, dv={dv}, dt={dt})")
    y0 = torch.empty(n, 2, res, res)
    for i in range(n):
        y0[i] = torch.randn(2, res, res, generator=trajectory_generator(seed, start + i))
    dx = (DOMAIN[1] - DOMAIN[0]) / res
    y = integrate(y0.to(device), frames, dt, dx, du, dv, k, start=start)
    return SimResult(fields=y.permute(0, 1, 3, 4, 2).cpu().numpy().astype(np.float32))


FAMILY = Family(
    name="diffusion_reaction_2d",
    pde="diffusion_reaction",
    channels=["u", "v"],
    space=["x", "y"],
    domain=[list(DOMAIN), list(DOMAIN)],
    boundary=["neumann", "neumann"],
    dt=0.05,
    simulate=simulate,
    defaults={"res": 64, "frames": 101, "du": 1e-3, "dv": 5e-3, "k": 5e-3, "dt": 0.05},
    description="PDEBench FitzHugh-Nagumo diffusion-reaction, zero-flux walls, white-noise initial state",
)
