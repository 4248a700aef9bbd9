"""Fourier helpers for the periodic pseudo-spectral solvers: wavenumber grids, 2/3-rule dealiasing masks and
Gaussian random fields drawn per trajectory."""

from __future__ import annotations

import math

import torch

from dpot.solvers.base import trajectory_generator


def wavenumbers(
    n: int,
    ndim: int,
    length: float = 1.0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> list[torch.Tensor]:
    """Angular wavenumbers for an `rfftn` of an `n^ndim` grid on a box of side `length`, one broadcastable
    tensor per axis (the last axis is the half-spectrum)."""
    full = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64) * (2 * math.pi / length)
    half = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64) * (2 * math.pi / length)
    ks = []
    for axis in range(ndim):
        k = half if axis == ndim - 1 else full
        shape = [1] * ndim
        shape[axis] = -1
        ks.append(k.reshape(shape).to(device=device, dtype=dtype))
    return ks


def dealias_mask(n: int, ndim: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """Orszag's 2/3 rule on an `rfftn` grid: keep integer modes with |k| < n/3 on every axis."""
    full = torch.fft.fftfreq(n, d=1.0 / n).abs()
    half = torch.fft.rfftfreq(n, d=1.0 / n)
    mask = torch.ones([n] * (ndim - 1) + [n // 2 + 1], dtype=torch.bool)
    for axis in range(ndim):
        k = half if axis == ndim - 1 else full
        shape = [1] * ndim
        shape[axis] = -1
        mask = mask & (k.reshape(shape) < n / 3)
    return mask.to(device)


def gaussian_random_field_2d(
    n_traj: int,
    res: int,
    seed: int,
    start: int,
    alpha: float = 2.5,
    tau: float = 7.0,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """FNO's periodic `GaussianRF(2, res, alpha, tau)` on the unit torus,
    N(0, tau^(2 alpha - 2)(-Delta + tau^2)^-alpha) with zero mean, one draw per trajectory from its own
    generator; returns `(n_traj, res, res)` float32."""
    sigma = tau ** (0.5 * (2 * alpha - 2.0))
    k = torch.fft.fftfreq(res, d=1.0 / res, dtype=torch.float64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    sqrt_eig = res**2 * math.sqrt(2.0) * sigma * (4 * math.pi**2 * k2 + tau**2) ** (-alpha / 2.0)
    sqrt_eig[0, 0] = 0.0
    out = torch.empty(n_traj, res, res, dtype=torch.float64)
    for i in range(n_traj):
        g = trajectory_generator(seed, start + i)
        noise = torch.randn(2, res, res, generator=g, dtype=torch.float64)
        coeff = torch.complex(noise[0], noise[1]) * sqrt_eig
        out[i] = torch.fft.ifft2(coeff).real
    return out.to(device=device, dtype=torch.float32)
