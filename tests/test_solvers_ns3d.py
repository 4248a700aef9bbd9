"""3D Navier-Stokes: exact decay of an ABC (Beltrami) flow, fourth-order time integration, divergence-free
velocity, monotone energy decay and per-trajectory reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpot.solvers import ns3d

pytestmark = pytest.mark.usefixtures("one_thread")


def test_abc_flow_decays_exactly():
    """ABC flow is an eigenfunction of the curl: omega x u = 0 and u(t) = u0 exp(-nu t)."""
    res, nu = 16, 0.05
    x = torch.arange(res, dtype=torch.float64) * (2 * math.pi / res)
    X, Y, Z = torch.meshgrid(x, x, x, indexing="ij")
    a, b, c = 1.0, 0.7, 0.4
    u0 = torch.stack(
        (a * torch.sin(Z) + c * torch.cos(Y), b * torch.sin(X) + a * torch.cos(Z), c * torch.sin(Y) + b * torch.cos(X))
    )[None]
    solver = ns3d.VelocitySolver3D(res, torch.full((1,), nu, dtype=torch.float64))
    u = solver.run(u0.float(), frames=3, dt=1.0)
    for f in range(3):
        exact = u0[0] * math.exp(-nu * f)
        assert (u[0, f].double() - exact).norm() / exact.norm() < 1e-5


def _run_fixed(u0: torch.Tensor, solver: ns3d.VelocitySolver3D, t_end: float, steps: int) -> torch.Tensor:
    u = solver.project(torch.fft.rfftn(u0, dim=(-3, -2, -1)))
    h = torch.full((1,), t_end / steps, dtype=torch.float64)
    for _ in range(steps):
        u = solver.step(u, h)
    return solver.physical(u)


def test_time_integration_is_fourth_order():
    u0 = ns3d.random_solenoidal(1, 12, seed=0, start=0).double()
    solver = ns3d.VelocitySolver3D(12, torch.full((1,), 0.02), dtype=torch.float64)
    ref = _run_fixed(u0, solver, 0.5, 128)
    errs = [(_run_fixed(u0, solver, 0.5, s) - ref).norm().item() for s in (4, 8, 16)]
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(3.6 < p < 4.4 for p in orders), (errs, orders)


def test_trajectories_are_divergence_free_decaying_and_reproducible():
    r = ns3d.simulate(2, 12, 4, seed=1, start=3, dt=0.2)
    assert r.fields.shape == (2, 4, 12, 12, 12, 3) and np.isfinite(r.fields).all()
    u = torch.from_numpy(r.fields).double().permute(0, 1, 5, 2, 3, 4)
    k = ns3d.VelocitySolver3D(12, torch.ones(1), dtype=torch.float64).k
    axes = (-3, -2, -1)
    div = torch.fft.irfftn((1j * k * torch.fft.rfftn(u, dim=axes)).sum(2), s=(12,) * 3, dim=axes)
    assert div.abs().max() < 1e-4 * u.abs().max()  # float32 storage
    momentum = u.mean(dim=(3, 4, 5))
    assert momentum.abs().max() < 1e-6  # total momentum is conserved (zero)
    energy = (u**2).mean(dim=(2, 3, 4, 5))
    assert torch.all(energy[:, 1:] < energy[:, :-1])
    np.testing.assert_allclose(energy[:, 0], 1.0, rtol=1e-5)  # rms 1 per component
    alone = ns3d.simulate(1, 12, 4, seed=1, start=4, dt=0.2)
    np.testing.assert_allclose(alone.fields[0], r.fields[1], atol=1e-5)
