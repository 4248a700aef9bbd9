"""PDEBench 2D shallow water, radial dam break, on [-2.5, 2.5]^2 with reflective walls.

h_t + div(h u) = 0,   (h u)_t + div(h u (x) u + g h^2 / 2 I) = 0,   g = 1;
h = 2 inside a circle of radius R ~ U(0.3, 0.7), 1 outside, at rest. Finite volumes: MUSCL reconstruction of
the conserved variables with the MC limiter, HLL flux, SSP-RK2, CFL step per trajectory.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from dpot.errors import DpotError
from dpot.solvers.base import Family, SimResult, trajectory_generator
from dpot.solvers.stepping import integrate_frames

DOMAIN = (-2.5, 2.5)
_H_MIN = 1e-6  # reconstructed depths are kept above this (the scheme is not meant for dry states)


def _mc_slope(q: torch.Tensor) -> torch.Tensor:
    """Monotonised-central limited slopes along dim -2 for cells 1..n-2 of the padded array."""
    dl = q[..., 1:-1, :] - q[..., :-2, :]
    dr = q[..., 2:, :] - q[..., 1:-1, :]
    dc = 0.5 * (dl + dr)
    mag = torch.minimum(torch.minimum(dc.abs(), 2 * dl.abs()), 2 * dr.abs())
    return torch.where(dl * dr > 0, torch.sign(dc) * mag, torch.zeros_like(dc))


def _flux_x(q: torch.Tensor, g: float) -> torch.Tensor:
    h, hu, hv = q[:, 0], q[:, 1], q[:, 2]
    u = hu / h
    return torch.stack((hu, hu * u + 0.5 * g * h * h, hv * u), dim=1)


@functools.lru_cache(maxsize=8)
def _mirror(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Sign flips of (h, hu, hv) at a reflective wall, `(1, 3, 1, 1)`: built once per device, not per step."""
    return torch.tensor([1.0, -1.0, 1.0], dtype=dtype, device=device).reshape(1, 3, 1, 1)


def _divergence_x(q: torch.Tensor, dx: float, g: float) -> torch.Tensor:
    """-(F_{i+1/2} - F_{i-1/2}) / dx along dim -2 for `(B, 3, N, M)` with reflective walls at both ends."""
    mirror = _mirror(q.dtype, q.device)
    lo = q[..., :2, :].flip(-2) * mirror  # ghost cells -2, -1 mirror cells 1, 0
    hi = q[..., -2:, :].flip(-2) * mirror  # ghost cells n, n+1 mirror cells n-1, n-2
    p = torch.cat((lo, q, hi), dim=-2)
    s = _mc_slope(p)  # slopes of padded cells 1..n+2
    c = p[..., 1:-1, :]
    ql = (c + 0.5 * s)[..., :-1, :]  # left state at faces -1/2 .. n-1/2
    qr = (c - 0.5 * s)[..., 1:, :]
    ql = torch.cat((ql[:, :1].clamp(min=_H_MIN), ql[:, 1:]), dim=1)
    qr = torch.cat((qr[:, :1].clamp(min=_H_MIN), qr[:, 1:]), dim=1)
    ul, ur = ql[:, 1] / ql[:, 0], qr[:, 1] / qr[:, 0]
    cl, cr = torch.sqrt(g * ql[:, 0]), torch.sqrt(g * qr[:, 0])
    sl = torch.minimum(ul - cl, ur - cr).clamp(max=0.0).unsqueeze(1)
    sr = torch.maximum(ul + cl, ur + cr).clamp(min=0.0).unsqueeze(1)
    fl, fr = _flux_x(ql, g), _flux_x(qr, g)
    flux = (sr * fl - sl * fr + sl * sr * (qr - ql)) / (sr - sl)
    return -(flux[..., 1:, :] - flux[..., :-1, :]) / dx


def rhs(q: torch.Tensor, dx: float, dy: float, g: float) -> torch.Tensor:
    """Semi-discrete right-hand side of `(B, 3, N, M)` = (h, hu, hv); x along dim -2, y along dim -1."""
    swap = [0, 2, 1]
    qt = q[:, swap].transpose(-1, -2)
    return _divergence_x(q, dx, g) + _divergence_x(qt, dy, g)[:, swap].transpose(-1, -2)


class ShallowWaterSolver:
    """SSP-RK2 (Heun) stepping of the MUSCL-HLL scheme with a CFL-limited step per trajectory."""

    def __init__(self, dx: float, dy: float, g: float = 1.0, cfl: float = 0.45):
        self.dx, self.dy, self.g, self.cfl = dx, dy, g, cfl

    def max_step(self, q: torch.Tensor) -> torch.Tensor:
        h = q[:, 0].clamp(min=_H_MIN)
        c = torch.sqrt(self.g * h)
        sx = ((q[:, 1] / h).abs() + c).amax(dim=(1, 2))
        sy = ((q[:, 2] / h).abs() + c).amax(dim=(1, 2))
        return self.cfl / (sx / self.dx + sy / self.dy)

    def step(self, q: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        h = h.to(device=q.device, dtype=q.dtype).reshape(-1, 1, 1, 1)
        q1 = q + h * rhs(q, self.dx, self.dy, self.g)
        return 0.5 * (q + q1 + h * rhs(q1, self.dx, self.dy, self.g))

    def run(
        self, q0: torch.Tensor, frames: int, dt: float, name: str = "shallow_water_2d", start: int = 0
    ) -> torch.Tensor:
        """Integrate `(B, 3, N, M)`; return the conserved state `(B, frames, 3, N, M)`."""
        return integrate_frames(q0, frames, dt, self.step, self.max_step, lambda q: q, name=name, start=start)


def simulate(
    n: int,
    res: int,
    frames: int,
    seed: int,
    start: int = 0,
    device: str = "cpu",
    *,
    dt: float = 0.01,
    g: float = 1.0,
    h_in: float = 2.0,
    h_out: float = 1.0,
    r_min: float = 0.3,
    r_max: float = 0.7,
    cfl: float = 0.45,
) -> SimResult:
    """Trajectories `start..start+n-1`: (h, u, v) `(n, frames, res, res, 3)` (PDEBench: 101 frames)."""
    if not (0 < h_out and 0 < h_in and 0 < r_min <= r_max and dt > 0 and g > 0 and 0 < cfl <= 0.5):
        raise DpotError(
            "shallow_water_2d: need positive depths, 0 < r_min <= r_max, dt > 0, g > 0, "
            f"0 < cfl <= 0.5 (got h_in={h_in}, h_out={h_out}, r=[{r_min}, {r_max}], dt={dt}, cfl={cfl})"
        )
    radius = torch.empty(n, dtype=torch.float64)
    for i in range(n):
        radius[i] = r_min + (r_max - r_min) * torch.rand(
            (), generator=trajectory_generator(seed, start + i), dtype=torch.float64
        )
    dx = (DOMAIN[1] - DOMAIN[0]) / res
    x = DOMAIN[0] + dx * (torch.arange(res, dtype=torch.float64) + 0.5)
    r = torch.sqrt(x[:, None] ** 2 + x[None, :] ** 2)
    h0 = torch.where(r[None] < radius[:, None, None], h_in, h_out)
    q0 = torch.stack((h0, torch.zeros_like(h0), torch.zeros_like(h0)), dim=1).to(device=device, dtype=torch.float32)
    q = ShallowWaterSolver(dx, dx, g, cfl).run(q0, frames, dt, start=start)
    depth = q[:, :, 0]
    if bool((depth <= 0).any()):
        raise DpotError("shallow_water_2d: a depth became non-positive; reduce cfl")
    out = torch.stack((depth, q[:, :, 1] / depth, q[:, :, 2] / depth), dim=-1)
    return SimResult(fields=out.cpu().numpy().astype(np.float32), params=radius.numpy().reshape(n, 1))


FAMILY = Family(
    name="shallow_water_2d",
    pde="shallow_water",
    channels=["h", "u", "v"],
    space=["x", "y"],
    domain=[list(DOMAIN), list(DOMAIN)],
    boundary=["wall", "wall"],
    dt=0.01,
    simulate=simulate,
    param_names=["radius"],
    defaults={"res": 64, "frames": 101, "dt": 0.01, "g": 1.0},
    description="PDEBench radial dam break, shallow-water equations, reflective walls",
)
