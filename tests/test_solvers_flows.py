"""Validation of the flow families: compressible NS (PDEBench CFD), buoyant smoke (PDEArena), lid-driven cavity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpot.errors import DpotError
from dpot.solvers import _flows_mac as mac
from dpot.solvers import buoyancy, cavity
from dpot.solvers import compressible_ns as cns


def _totals(fields: np.ndarray) -> np.ndarray:
    """Mass, x/y momentum and total energy per frame from (n, T, X, Y, [vx, vy, rho, p]) fields."""
    f = fields.astype(np.float64)
    vx, vy, r, p = (f[..., i] for i in range(4))
    e = p / (cns.GAMMA - 1) + 0.5 * r * (vx**2 + vy**2)
    return np.stack([q.sum(axis=(2, 3)) for q in (r, r * vx, r * vy, e)], -1)


def test_cns_conserves_mass_momentum_energy_and_stays_positive():
    res = cns.simulate(3, res=16, frames=4, seed=1, mach=1.0, eta=0.01, zeta=0.01)
    f = res.fields
    assert f.shape == (3, 4, 16, 16, 4) and f.dtype == np.float32 and np.isfinite(f).all()
    assert (f[..., 2] > 0).all() and (f[..., 3] > 0).all()
    tot = _totals(f)
    scale = np.abs(f[..., 2:3] * f[..., :2]).sum(axis=(2, 3)).max(axis=1)  # momentum scale sum rho|v|
    for k in (0, 3):  # mass, energy
        assert np.abs(tot[:, :, k] / tot[:, :1, k] - 1).max() < 2e-5
    assert (np.abs(tot[:, :, 1:3] - tot[:, :1, 1:3]).max(axis=1) / scale).max() < 2e-5
    np.testing.assert_allclose(res.params, [[1.0, 0.01, 0.01]] * 3)


def test_cns_trajectories_do_not_depend_on_batching():
    a = cns.simulate(2, res=16, frames=2, seed=3, mach=0.1, eta=0.1, zeta=0.1).fields
    b = cns.simulate(1, res=16, frames=2, seed=3, start=1, mach=0.1, eta=0.1, zeta=0.1).fields
    np.testing.assert_allclose(a[1:], b, rtol=1e-5, atol=1e-6)


pytestmark = pytest.mark.usefixtures("one_thread")


def _density_wave(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    x = (torch.arange(n, dtype=dtype) + 0.5) / n
    xx, yy = torch.meshgrid(x, x, indexing="ij")
    one = torch.ones_like(xx)
    return torch.stack((1 + 0.2 * torch.sin(2 * math.pi * (xx + yy)), one, one, one))[None]


def test_cns_second_order_on_advected_density_wave():
    errors = []
    for n in (32, 64):
        q, _ = cns.integrate(_density_wave(n, torch.float32), 2, 0.125, eta=0.0, zeta=0.0)
        rho = q[0, -1, 0].double()
        x = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        exact = 1 - 0.2 * torch.cos(2 * math.pi * (x[:, None] + x[None, :]))  # moved by (1/8, 1/8): phase -π/2
        errors.append(float((rho - exact).abs().mean()))
    order = math.log2(errors[0] / errors[1])
    assert errors[1] < 1e-3 and order > 1.7, (errors, order)  # measured 1.86 (MC limiter clips extrema)


def test_cns_viscous_shear_wave_decays_exactly():
    n, eta, t = 16, 0.05, 0.2
    y = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    w0 = torch.zeros(1, 4, n, n, dtype=torch.float64)
    w0[:, 0], w0[:, 3] = 1.0, 1.0
    w0[:, 1] = 0.01 * torch.sin(2 * math.pi * y)[None, :]  # small: viscous heating (O(amp²)) stays negligible
    q, _ = cns.integrate(w0, 2, t, eta=eta, zeta=eta)
    u = q[0, -1, 1] / q[0, -1, 0]
    exact = w0[0, 1] * math.exp(-eta * (2 * math.pi) ** 2 * t)
    assert float((u - exact).abs().max()) < 1e-5 * float(exact.abs().max())


def test_cns_nan_is_an_error_naming_the_trajectory():
    w0 = _density_wave(8).repeat(2, 1, 1, 1)
    w0[1, 0, 3, 3] = -1.0  # negative density: the state cannot be integrated
    with pytest.raises(DpotError, match="trajectory 6"):
        cns.integrate(w0, 2, 0.01, eta=0.0, zeta=0.0, first_index=5)
    with pytest.raises(DpotError, match="mach"):
        cns.simulate(1, res=16, frames=2, mach=-1.0)


def test_projection_makes_velocity_divergence_free():
    n, dx = 16, 0.5
    a = mac.second_difference(n, dx, "neumann")
    solver = mac.EigenSolver2D(a, a, "cpu", torch.float64)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, n + 1, n, generator=g, dtype=torch.float64)
    v = torch.randn(2, n, n + 1, generator=g, dtype=torch.float64)
    u[:, 0] = u[:, -1] = 0
    v[:, :, 0] = v[:, :, -1] = 0
    before = mac.divergence(u, v, dx).abs().max()
    pu, pv = mac.project(u, v, dx, solver)
    assert float(mac.divergence(pu, pv, dx).abs().max()) < 1e-10 * float(before)
    assert float(pu[:, 0].abs().max() + pv[:, :, -1].abs().max()) == 0.0


def test_buoyancy_smoke_mass_conserved_and_flow_divergence_free():
    r = buoyancy.simulate(2, res=16, frames=6, seed=2, buoyancy=[0.2, 0.5], warmup=2)
    f = r.fields
    assert f.shape == (2, 6, 16, 16, 3) and np.isfinite(f).all()
    mass = f[..., 0].astype(np.float64).sum(axis=(2, 3))
    assert np.abs(mass / mass[:, :1] - 1).max() < 1e-5
    assert (f[..., 0] >= 0).all() and np.abs(f[:, -1, ..., 2]).max() > 1e-3  # smoke rises
    assert ((r.params >= 0.2) & (r.params <= 0.5)).all() and r.params.shape == (2, 1)
    # the velocity after a full step is discretely divergence-free
    n, dx = 16, buoyancy.LENGTH / 16
    a = mac.second_difference(n, dx, "neumann")
    solver = mac.EigenSolver2D(a, a, "cpu", torch.float32)
    s = buoyancy.initial_smoke(1, n, 0, 0).float()
    u, v = torch.zeros(1, n + 1, n), torch.zeros(1, n, n + 1)
    for _ in range(3):
        s, u, v = buoyancy.step(s, u, v, torch.tensor([0.5]), dx, solver)
    assert float(mac.divergence(u, v, dx).abs().max()) < 1e-4 * float(v.abs().max() / dx)
    again = buoyancy.simulate(1, res=16, frames=6, seed=2, start=1, buoyancy=[0.2, 0.5], warmup=2)
    np.testing.assert_allclose(again.fields[0], f[1], rtol=1e-5, atol=1e-6)


def test_cavity_walls_mask_and_divergence():
    r = cavity.simulate(2, res=16, frames=4, seed=0, lid=[0.5, 2.0], nu=[2e-3, 2e-2])
    f = r.fields
    assert f.shape == (2, 4, 16, 16, 3) and np.isfinite(f).all()
    mask = r.mask
    assert mask.shape == (16, 16) and mask[1:-1, 1:-1].all() and not mask[0].any() and not mask[:, -1].any()
    np.testing.assert_array_equal(f[..., 2], np.broadcast_to(mask, f[..., 2].shape))
    np.testing.assert_allclose(f[:, :, 1:-1, -1, 0], np.broadcast_to(r.params[:, None, None, 0], (2, 4, 14)))
    assert not f[:, :, 0].any() and not f[:, :, -1].any() and not f[:, :, :, 0].any()
    sim = cavity.CavitySolver(14, 1 / 16, torch.tensor([1.0]), torch.tensor([0.01]))
    sim.advance(0.5)
    assert float(mac.divergence(sim.u, sim.v, sim.dx).abs().max()) < 1e-4 / sim.dx
    assert not sim.u[:, [0, -1]].any() and not sim.v[:, :, [0, -1]].any()  # no flow through the walls


def test_cavity_reaches_ghia_steady_state_at_re100():
    n = 32
    dx = 1 / (n + 2)
    sim = cavity.CavitySolver(n, dx, torch.tensor([1.0]), torch.tensor([n * dx / 100]))
    sim.advance(14.0)
    before = sim.u.clone()
    sim.advance(1.0)
    assert float((sim.u - before).abs().max()) < 1e-3  # steady state approached
    u = sim.u[0, n // 2].numpy()  # vertical centre line
    y = (np.arange(n) + 0.5) / n
    gy = np.array([0.9766, 0.9531, 0.8516, 0.7344, 0.6172, 0.5, 0.4531, 0.2813, 0.1719, 0.1016, 0.0625])
    gu = np.array(
        [0.84123, 0.68717, 0.23151, 0.00332, -0.13641, -0.20581, -0.2109, -0.15662, -0.1015, -0.06434, -0.04192]
    )  # Ghia, Ghia & Shin (1982), Re = 100
    assert np.abs(np.interp(gy, y, u) - gu).max() < 0.03


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: cavity.simulate(1, res=16, frames=2, nu=[0.1, 0.01]), "nu range"),
        (lambda: cavity.simulate(1, res=4, frames=2), "res >= 8"),
        (lambda: buoyancy.simulate(1, res=16, frames=2, buoyancy=[0.5, 0.2]), "buoyancy range"),
        (lambda: buoyancy.simulate(1, res=16, frames=2, nu=-1.0), "nu must be >= 0"),
        (lambda: cns.simulate(1, res=16, frames=2, eta=-0.1), "eta, zeta >= 0"),
    ],
)
def test_bad_parameters_are_one_clear_error(call, needle):
    with pytest.raises(DpotError, match=needle):
        call()
