"""FNO's incompressible Navier-Stokes in vorticity form on the periodic unit torus (Li et al. 2021).

dw/dt + u.grad(w) = nu Lap(w) + f,  u = (d_y psi, -d_x psi),  -Lap(psi) = w,
f = 0.1 (sin 2pi(x+y) + cos 2pi(x+y)),  w0 ~ N(0, 7^(3/2) (-Lap + 49 I)^(-2.5)).
Pseudo-spectral, 2/3-rule dealiasing, integrating-factor RK4 (diffusion exact), adaptive CFL step per
trajectory.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dpot.errors import DpotError
from dpot.solvers.base import Family, SimResult
from dpot.solvers.spectral import dealias_mask, gaussian_random_field_2d, wavenumbers
from dpot.solvers.stepping import if_rk4_step, integrate_frames


class VorticitySolver:
    """Batched pseudo-spectral solver for `(B, N, N)` vorticity fields with per-trajectory viscosity."""

    def __init__(
        self,
        res: int,
        nu: torch.Tensor,
        forcing: torch.Tensor | None,
        cfl: float = 0.5,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        self.res, self.cfl = res, cfl
        self.kx, self.ky = wavenumbers(res, 2, device=device, dtype=dtype)
        self.k2 = self.kx**2 + self.ky**2
        self.inv_k2 = torch.where(self.k2 > 0, 1.0 / torch.where(self.k2 > 0, self.k2, 1.0), 0.0)
        self.mask = dealias_mask(res, 2, device)
        self.nu = nu.to(device=device, dtype=dtype).reshape(-1, 1, 1)
        self.f_hat = None if forcing is None else torch.fft.rfft2(forcing.to(device=device, dtype=dtype))
        self.dtype = dtype

    def velocity(self, w_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """u = d_y psi, v = -d_x psi with psi_hat = w_hat / |k|^2, in physical space."""
        psi = w_hat * self.inv_k2
        u = torch.fft.irfft2(1j * self.ky * psi, s=(self.res, self.res))
        v = torch.fft.irfft2(-1j * self.kx * psi, s=(self.res, self.res))
        return u, v

    def rhs(self, w_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Explicit part -u.grad(w) + f in Fourier space, and max|velocity| per trajectory (for the CFL)."""
        u, v = self.velocity(w_hat)
        wx = torch.fft.irfft2(1j * self.kx * w_hat, s=(self.res, self.res))
        wy = torch.fft.irfft2(1j * self.ky * w_hat, s=(self.res, self.res))
        nl = -torch.fft.rfft2(u * wx + v * wy) * self.mask
        if self.f_hat is not None:
            nl = nl + self.f_hat
        speed = torch.maximum(u.abs().amax(dim=(1, 2)), v.abs().amax(dim=(1, 2)))
        return nl, speed

    def max_step(self, w_hat: torch.Tensor) -> torch.Tensor:
        """CFL step per trajectory; keeps the first RK stage so that `step` on the same state reuses it."""
        k1, speed = self.rhs(w_hat)
        self._stage = (w_hat, k1)
        return self.cfl * (1.0 / self.res) / speed.clamp(min=1e-6)

    def step(self, w_hat: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One integrating-factor RK4 step of size h `(B,)`; diffusion is integrated exactly."""
        h = h.to(device=w_hat.device, dtype=self.dtype).reshape(-1, 1, 1)
        cached, self._stage = getattr(self, "_stage", None), None
        k1 = cached[1] if cached is not None and cached[0] is w_hat else None
        return if_rk4_step(w_hat, h, self.nu * self.k2, self.rhs, k1)

    def run(
        self, w0: torch.Tensor, frames: int, dt: float, name: str = "ns2d_vorticity", start: int = 0
    ) -> torch.Tensor:
        """Integrate from `w0` `(B, N, N)`; return `(B, frames, N, N)` at t = 0, dt, ..., (frames-1) dt."""
        s = (self.res, self.res)
        return integrate_frames(
            torch.fft.rfft2(w0.to(self.dtype)),
            frames,
            dt,
            self.step,
            self.max_step,
            lambda w: torch.fft.irfft2(w, s=s),
            name=name,
            start=start,
        )


def fno_forcing(res: int) -> torch.Tensor:
    """FNO's forcing 0.1 (sin 2pi(x+y) + cos 2pi(x+y)) on the grid x_i = i/res."""
    x = torch.arange(res, dtype=torch.float64) / res
    s = 2 * math.pi * (x[:, None] + x[None, :])
    return 0.1 * (torch.sin(s) + torch.cos(s))


def simulate(
    n: int,
    res: int,
    frames: int,
    seed: int,
    start: int = 0,
    device: str = "cpu",
    *,
    nu: float = 1e-3,
    dt: float = 1.0,
    cfl: float = 0.5,
    upsample: int = 1,
) -> SimResult:
    """Trajectories `start..start+n-1`: vorticity `(n, frames, res, res, 1)` at t = 0, dt, ...; with
    `upsample` > 1 the flow is solved on a `res*upsample` grid and subsampled, as FNO did (256 -> 64)."""
    if nu <= 0 or dt <= 0 or not 0 < cfl <= 1.0 or upsample < 1:
        raise DpotError(
            f"ns2d_vorticity: need nu > 0, dt > 0, 0 < cfl <= 1, upsample >= 1 "
            f"(got nu={nu}, dt={dt}, cfl={cfl}, upsample={upsample})"
        )
    sim_res = res * int(upsample)
    w0 = gaussian_random_field_2d(n, sim_res, seed, start, alpha=2.5, tau=7.0, device=device)
    solver = VorticitySolver(sim_res, torch.full((n,), float(nu)), fno_forcing(sim_res), cfl=cfl, device=device)
    w = solver.run(w0, frames, dt, start=start)[:, :, ::upsample, ::upsample]
    fields = w.unsqueeze(-1).cpu().numpy().astype(np.float32)
    return SimResult(fields=fields, params=np.full((n, 1), nu, dtype=np.float64))


FAMILY = Family(
    name="ns2d_vorticity",
    pde="ns2d_vorticity",
    channels=["w"],
    space=["x", "y"],
    domain=[[0.0, 1.0], [0.0, 1.0]],
    boundary=["periodic", "periodic"],
    dt=1.0,
    simulate=simulate,
    param_names=["nu"],
    defaults={"res": 64, "frames": 21, "nu": 1e-3, "dt": 1.0},
    description="FNO incompressible Navier-Stokes, vorticity form, periodic torus, GRF initial vorticity",
)
