"""Shallow water: exact mass conservation with reflective walls, positivity and symmetry of the radial dam
break, and first-order convergence to Stoker's exact dam-break solution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from dpot.solvers import shallow_water as sw

pytestmark = pytest.mark.usefixtures("one_thread")


def stoker(x: np.ndarray, t: float, hl: float, hr: float, g: float = 1.0) -> np.ndarray:
    """Exact depth of the wet-bed dam break (rarefaction to the left, shock to the right)."""
    cl = math.sqrt(g * hl)

    def gap(hm: float) -> float:
        return 2 * (cl - math.sqrt(g * hm)) - (hm - hr) * math.sqrt(g / 2 * (1 / hm + 1 / hr))

    hm = brentq(gap, hr, hl)
    um = 2 * (cl - math.sqrt(g * hm))
    s = hm * um / (hm - hr)
    xi = x / t
    fan = (2 * cl - xi) ** 2 / (9 * g)
    return np.where(xi < -cl, hl, np.where(xi < um - math.sqrt(g * hm), fan, np.where(xi < s, hm, hr)))


def dam_break_error(nx: int, t_end: float = 1.0) -> float:
    length, ny = 8.0, 4
    dx = length / nx
    x = -length / 2 + dx * (np.arange(nx) + 0.5)
    h0 = torch.tensor(np.where(x < 0, 2.0, 1.0))[:, None].expand(nx, ny)
    q0 = torch.stack((h0, torch.zeros_like(h0), torch.zeros_like(h0)))[None].to(torch.float64)
    q = sw.ShallowWaterSolver(dx, dx, 1.0).run(q0, 2, t_end)[0, -1]
    assert (q[0] - q[0, :, :1]).abs().max() < 1e-12  # stays one-dimensional
    exact = stoker(x, t_end, 2.0, 1.0)
    return float(np.abs(q[0, :, 0].numpy() - exact).sum() * dx / (np.abs(exact).sum() * dx))


def test_dam_break_converges_to_stoker():
    errs = [dam_break_error(n) for n in (100, 200, 400)]
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert errs[-1] < 5e-3 and all(p > 0.7 for p in orders), (errs, orders)


def test_mass_is_conserved_through_wall_reflections():
    # t = 3: the bore has hit the walls and reflected
    r = sw.simulate(2, 32, 7, seed=0, dt=0.5)
    h = r.fields[..., 0].astype(np.float64)
    mass = h.sum(axis=(2, 3))
    assert np.abs(mass / mass[:, :1] - 1).max() < 2e-6
    assert h.min() > 0.2 and np.isfinite(r.fields).all()
    assert not np.allclose(h[:, -1, 0, :], 1.0)  # waves did reach the boundary


def test_radial_dam_break_keeps_its_symmetry_and_parameters():
    r = sw.simulate(2, 32, 4, seed=5, start=3, dt=0.2)
    h = r.fields[..., 0]
    np.testing.assert_allclose(h, np.swapaxes(h, 2, 3), atol=1e-5)
    np.testing.assert_allclose(h, h[:, :, ::-1, :], atol=1e-5)
    assert ((r.params >= 0.3) & (r.params <= 0.7)).all()
    u, v = r.fields[..., 1], r.fields[..., 2]
    assert np.abs(u[:, 0]).max() == 0 and np.abs(v[:, 0]).max() == 0
    alone = sw.simulate(1, 32, 4, seed=5, start=4, dt=0.2)
    np.testing.assert_allclose(alone.fields[0], r.fields[1], atol=1e-6)
