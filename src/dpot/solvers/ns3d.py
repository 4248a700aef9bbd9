"""3D incompressible Navier-Stokes (decaying turbulence) in a periodic box [0, 2pi]^3, velocity form.

du/dt + omega x u = -grad P + nu Lap(u),  div u = 0,  omega = curl u,  P = p + |u|^2 / 2.
Pseudo-spectral: rotational form of the nonlinear term, 2/3-rule dealiasing, Leray projection,
integrating-factor RK4 with an adaptive CFL step per trajectory. Initial velocity: random solenoidal field
with energy spectrum E(k) ~ k^4 exp(-2 (k / k0)^2), scaled to the given rms velocity.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dpot.errors import DpotError
from dpot.solvers.base import Family, SimResult, trajectory_generator
from dpot.solvers.spectral import dealias_mask, wavenumbers
from dpot.solvers.stepping import if_rk4_step, integrate_frames

LENGTH = 2 * math.pi


class VelocitySolver3D:
    """Batched spectral solver for velocity `(B, 3, N, N, N)` on the 2pi-periodic cube."""

    def __init__(
        self,
        res: int,
        nu: torch.Tensor,
        cfl: float = 1.0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        self.res, self.cfl, self.dtype = res, cfl, dtype
        self.k = torch.stack(torch.broadcast_tensors(*wavenumbers(res, 3, LENGTH, device, dtype)))  # (3, N, N, M)
        self.k2 = (self.k**2).sum(0)
        self.inv_k2 = torch.where(self.k2 > 0, 1.0 / torch.where(self.k2 > 0, self.k2, 1.0), 0.0)
        self.mask = dealias_mask(res, 3, device)
        self.nu = nu.to(device=device, dtype=dtype).reshape(-1, 1, 1, 1, 1)
        self._stage = None

    def project(self, v_hat: torch.Tensor) -> torch.Tensor:
        """Leray projection onto divergence-free fields: v - k (k.v) / |k|^2."""
        return v_hat - self.k * ((self.k * v_hat).sum(1, keepdim=True) * self.inv_k2)

    def curl(self, v_hat: torch.Tensor) -> torch.Tensor:
        k = self.k
        return 1j * torch.stack(
            (
                k[1] * v_hat[:, 2] - k[2] * v_hat[:, 1],
                k[2] * v_hat[:, 0] - k[0] * v_hat[:, 2],
                k[0] * v_hat[:, 1] - k[1] * v_hat[:, 0],
            ),
            dim=1,
        )

    def physical(self, v_hat: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfftn(v_hat, s=(self.res,) * 3, dim=(-3, -2, -1))

    def rhs(self, u_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected, dealiased u x omega in Fourier space, and max(|u|+|v|+|w|) per trajectory."""
        u = self.physical(u_hat)
        w = self.physical(self.curl(u_hat))
        cross = torch.stack(
            (
                u[:, 1] * w[:, 2] - u[:, 2] * w[:, 1],
                u[:, 2] * w[:, 0] - u[:, 0] * w[:, 2],
                u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0],
            ),
            dim=1,
        )
        nl = self.project(torch.fft.rfftn(cross, dim=(-3, -2, -1)) * self.mask)
        return nl, u.abs().sum(1).amax(dim=(1, 2, 3))

    def max_step(self, u_hat: torch.Tensor) -> torch.Tensor:
        """CFL step per trajectory; keeps the first RK stage so that `step` on the same state reuses it."""
        k1, speed = self.rhs(u_hat)
        self._stage = (u_hat, k1)
        return self.cfl * (LENGTH / self.res) / speed.clamp(min=1e-6)

    def step(self, u_hat: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Integrating-factor RK4 step of size h `(B,)`; viscosity is integrated exactly."""
        h = h.to(device=u_hat.device, dtype=self.dtype).reshape(-1, 1, 1, 1, 1)
        cached, self._stage = self._stage, None
        k1 = cached[1] if cached is not None and cached[0] is u_hat else None
        return if_rk4_step(u_hat, h, self.nu * self.k2, self.rhs, k1)

    def run(self, u0: torch.Tensor, frames: int, dt: float, name: str = "ns3d", start: int = 0) -> torch.Tensor:
        """Integrate from `u0` `(B, 3, N, N, N)`; return `(B, frames, 3, N, N, N)`."""
        u_hat = self.project(torch.fft.rfftn(u0.to(self.dtype), dim=(-3, -2, -1)))
        return integrate_frames(u_hat, frames, dt, self.step, self.max_step, self.physical, name=name, start=start)


def random_solenoidal(
    n: int,
    res: int,
    seed: int,
    start: int,
    k0: float = 2.0,
    u_rms: float = 1.0,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """`(n, 3, res, res, res)` divergence-free velocity with spectrum ~ k^4 exp(-2 (k/k0)^2) and given rms."""
    k = torch.stack(torch.broadcast_tensors(*wavenumbers(res, 3, LENGTH, dtype=torch.float64)))
    kk = torch.sqrt((k**2).sum(0))
    # amplitude per mode: E(k) / (4 pi k^2) shell density -> |u_hat| ~ sqrt(E(k)) / k
    amp = torch.where(kk > 0, kk * torch.exp(-((kk / k0) ** 2)), torch.zeros_like(kk)) * dealias_mask(res, 3)
    inv_k2 = torch.where(kk > 0, 1.0 / torch.where(kk > 0, kk**2, 1.0), 0.0)
    out = torch.empty(n, 3, res, res, res, dtype=torch.float64)
    for i in range(n):
        g = trajectory_generator(seed, start + i)
        noise = torch.randn(2, 3, *amp.shape, generator=g, dtype=torch.float64)
        c = torch.complex(noise[0], noise[1]) * amp
        c = c - k * ((k * c).sum(0, keepdim=True) * inv_k2)
        u = torch.fft.irfftn(c, s=(res,) * 3, dim=(-3, -2, -1))
        out[i] = u * (u_rms / u.pow(2).mean().sqrt().clamp(min=1e-30))
    return out.to(device=device, dtype=torch.float32)


def simulate(
    n: int,
    res: int,
    frames: int,
    seed: int,
    start: int = 0,
    device: str = "cpu",
    *,
    nu: float = 0.04,
    dt: float = 0.1,
    k0: float = 2.0,
    u_rms: float = 1.0,
    cfl: float = 1.0,
) -> SimResult:
    """Trajectories `start..start+n-1`: velocity `(n, frames, res, res, res, 3)` at t = 0, dt, ..."""
    if nu <= 0 or dt <= 0 or not 0 < cfl <= 1.0 or u_rms <= 0:
        raise DpotError(f"ns3d: need nu > 0, dt > 0, 0 < cfl <= 1, u_rms > 0 (got nu={nu}, dt={dt}, cfl={cfl})")
    u0 = random_solenoidal(n, res, seed, start, k0, u_rms, device)
    u = VelocitySolver3D(res, torch.full((n,), float(nu)), cfl, device).run(u0, frames, dt, start=start)
    fields = u.permute(0, 1, 3, 4, 5, 2).cpu().numpy().astype(np.float32)
    return SimResult(fields=fields, params=np.full((n, 1), nu, dtype=np.float64))


FAMILY = Family(
    name="ns3d",
    pde="ns3d",
    channels=["vx", "vy", "vz"],
    space=["x", "y", "z"],
    domain=[[0.0, LENGTH]] * 3,
    boundary=["periodic"] * 3,
    dt=0.1,
    simulate=simulate,
    param_names=["nu"],
    defaults={"res": 32, "frames": 21, "nu": 0.04, "dt": 0.1},
    description="3D incompressible Navier-Stokes, decaying turbulence in a periodic box, pseudo-spectral",
)
