"""FitzHugh-Nagumo diffusion-reaction: Neumann cosine-mode diffusion against the exact solution (second order
in space), conservation of the mean, bounded FHN dynamics, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpot.solvers import diffusion_reaction as dr

pytestmark = pytest.mark.usefixtures("one_thread")


def cosine_mode_error(res: int, t_end: float = 2.0) -> tuple[float, float]:
    """Relative max error of diffusing cos(m pi (x+1)/2) cos(l pi (y+1)/2) until t_end, and the mean drift."""
    dx = 2.0 / res
    x = -1 + dx * (torch.arange(res, dtype=torch.float64) + 0.5)
    m, l, d = 2, 1, 5e-2
    mode = torch.cos(m * math.pi * (x[:, None] + 1) / 2) * torch.cos(l * math.pi * (x[None, :] + 1) / 2)
    y0 = torch.stack((mode, 1.0 + mode), 0)[None]
    out = dr.integrate(y0, 2, t_end, dx, d, d, 0.0, reaction=False)[:, -1]
    decay = math.exp(-d * math.pi**2 * (m**2 + l**2) / 4 * t_end)
    err = (out[0, 0] - mode * decay).abs().max().item() / decay
    drift = abs(out[0, 1].mean().item() - 1.0)
    return err, drift


def test_neumann_diffusion_converges_second_order():
    errs, drifts = zip(*(cosine_mode_error(r) for r in (16, 32, 64)))
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(1.8 < p < 2.2 for p in orders), (errs, orders)
    assert max(drifts) < 1e-12  # zero-flux walls conserve the mean exactly


def test_fhn_trajectories_are_bounded_reproducible_and_named():
    r = dr.simulate(3, 16, 6, seed=1, start=4, dt=0.5)
    alone = dr.simulate(1, 16, 6, seed=1, start=6, dt=0.5)
    assert r.fields.shape == (3, 6, 16, 16, 2) and r.fields.dtype == np.float32
    np.testing.assert_array_equal(r.fields[2], alone.fields[0])
    assert np.isfinite(r.fields).all()
    # the cubic reaction pulls u into the FHN attractor: |u| stays O(1) after the white-noise start
    assert np.abs(r.fields[:, -1]).max() < 3.0
    # white-noise start of unit variance, then diffusion smooths it
    assert 0.8 < r.fields[:, 0].std() < 1.2 and r.fields[:, -1, ..., 0].std() < r.fields[:, 0, ..., 0].std()
