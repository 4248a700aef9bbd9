"""FNO Navier-Stokes vorticity solver: exact eigenmode decay, time-order of convergence, divergence-free
velocity, per-trajectory reproducibility, bounded fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpot.errors import DpotError
from dpot.solvers import ns2d_vorticity as ns
from dpot.solvers.stepping import integrate_frames

pytestmark = pytest.mark.usefixtures("one_thread")


def grid(res: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(res, dtype=torch.float64) / res
    return x[:, None], x[None, :]


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 2e-6), (torch.float64, 1e-12)])
def test_taylor_green_decays_exactly(dtype, tol):
    """w0 = 2 k sin(kx) sin(ky) is a Laplacian eigenmode: u.grad(w) = 0 and w(t) = w0 exp(-2 nu k^2 t)."""
    res, nu, k = 32, 1e-2, 2 * math.pi
    x, y = grid(res)
    w0 = (2 * k * torch.sin(k * x) * torch.sin(k * y)).expand(2, res, res)
    solver = ns.VorticitySolver(res, torch.full((2,), nu, dtype=torch.float64), None, dtype=dtype)
    w = solver.run(w0.to(dtype), frames=5, dt=0.5)
    t = torch.arange(5, dtype=torch.float64) * 0.5
    exact = w0[None].to(torch.float64) * torch.exp(-2 * nu * k**2 * t)[:, None, None, None]
    err = (w.transpose(0, 1).to(torch.float64) - exact).norm() / exact.norm()
    assert err < tol


def _run_fixed(w0: torch.Tensor, solver: ns.VorticitySolver, t_end: float, steps: int) -> torch.Tensor:
    w = torch.fft.rfft2(w0)
    h = torch.full((w0.shape[0],), t_end / steps, dtype=torch.float64)
    for _ in range(steps):
        w = solver.step(w, h)
    return torch.fft.irfft2(w, s=w0.shape[-2:])


def test_time_integration_is_fourth_order():
    """Forced nonlinear flow at fixed steps h, h/2, h/4 against h/32: the observed order is RK4's."""
    res = 32
    w0 = ns.gaussian_random_field_2d(1, res, seed=3, start=0).to(torch.float64)
    solver = ns.VorticitySolver(res, torch.full((1,), 1e-3), ns.fno_forcing(res), dtype=torch.float64)
    ref = _run_fixed(w0, solver, 1.0, 256)
    errs = [(_run_fixed(w0, solver, 1.0, s) - ref).norm().item() for s in (8, 16, 32)]
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(3.6 < p < 4.4 for p in orders), (errs, orders)


def test_velocity_is_divergence_free_and_inverts_the_vorticity():
    res = 32
    w0 = ns.gaussian_random_field_2d(2, res, seed=0, start=0).to(torch.float64)
    solver = ns.VorticitySolver(res, torch.full((2,), 1e-3), None, dtype=torch.float64)
    w_hat = torch.fft.rfft2(w0) * solver.mask  # drop the Nyquist modes, which have no derivative
    w0 = torch.fft.irfft2(w_hat, s=(res, res))
    u, v = solver.velocity(w_hat)
    u_hat, v_hat = torch.fft.rfft2(u), torch.fft.rfft2(v)
    div = torch.fft.irfft2(1j * solver.kx * u_hat + 1j * solver.ky * v_hat, s=(res, res))
    curl = torch.fft.irfft2(1j * solver.kx * v_hat - 1j * solver.ky * u_hat, s=(res, res))
    assert div.abs().max() < 1e-10 * u.abs().max()
    # u = (psi_y, -psi_x) gives v_x - u_y = -Lap(psi) = w
    assert (curl - w0).abs().max() < 1e-10 * w0.abs().max()


def test_simulate_is_reproducible_per_trajectory_and_bounded():
    batch = ns.simulate(3, 16, 5, seed=7, start=10, nu=1e-4)
    alone = ns.simulate(1, 16, 5, seed=7, start=12, nu=1e-4)
    assert batch.fields.shape == (3, 5, 16, 16, 1) and batch.fields.dtype == np.float32
    np.testing.assert_allclose(batch.fields[2], alone.fields[0], atol=1e-5)
    assert np.isfinite(batch.fields).all()
    # maximum principle with forcing: max|w(t)| <= max|w0| + t max|f|
    w0max = np.abs(batch.fields[:, 0]).max()
    assert np.abs(batch.fields).max() <= w0max + 4 * 0.1 * math.sqrt(2) + 1e-3
    np.testing.assert_allclose(batch.params, 1e-4)


def test_upsampled_generation_matches_the_stored_grid():
    r = ns.simulate(1, 8, 2, seed=0, upsample=2)
    assert r.fields.shape == (1, 2, 8, 8, 1)


def test_bad_parameters_and_nan_are_clear_errors():
    with pytest.raises(DpotError, match="nu > 0"):
        ns.simulate(1, 8, 2, seed=0, nu=-1.0)

    def step(state, h):  # trajectory 1 blows up on its first step
        state = state + h.to(state.dtype)[:, None]
        state[1] = float("nan")
        return state

    with pytest.raises(DpotError, match=r"trajectory 6 became NaN/Inf at t=0\.5"):
        integrate_frames(
            torch.zeros(3, 4), 3, 0.5, step, lambda s: torch.full((3,), 0.1), lambda s: s, name="test", start=5
        )


def test_unforced_energy_budget():
    """Without forcing, E = |u|^2 / 2 obeys dE/dt = -nu |w|^2 (mean over the torus): check it by quadrature."""
    res, nu, dt, frames = 32, 1e-2, 0.05, 21
    w0 = ns.gaussian_random_field_2d(1, res, seed=4, start=0).to(torch.float64)
    solver = ns.VorticitySolver(res, torch.full((1,), nu, dtype=torch.float64), None, dtype=torch.float64)
    w = solver.run(w0, frames, dt)[0]
    w_hat = torch.fft.rfft2(w) * solver.mask
    w = torch.fft.irfft2(w_hat, s=(res, res))
    u, v = solver.velocity(w_hat)
    energy = 0.5 * (u**2 + v**2).mean(dim=(1, 2))
    enstrophy = (w**2).mean(dim=(1, 2))
    assert torch.all(energy[1:] < energy[:-1])
    # trapezoidal rule on the dissipation; second-order in the 0.05 frame spacing
    budget = energy[0] - nu * dt * (enstrophy[1:] + enstrophy[:-1]).sum() / 2
    assert abs(budget - energy[-1]) < 2e-3 * (energy[0] - energy[-1])
