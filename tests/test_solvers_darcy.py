"""Darcy flow: residual of the sparse solve, second-order convergence to a manufactured solution, maximum
principle and the two-valued coefficient."""

from __future__ import annotations

import math

import numpy as np

from dpot.solvers import darcy


def manufactured_error(res: int) -> float:
    """u = sin(pi x) sin(pi y), a = 1 + x^2 + y: f = -div(a grad u) computed by hand."""
    x = np.linspace(0.0, 1.0, res)
    X, Y = np.meshgrid(x, x, indexing="ij")
    s, c = np.sin(math.pi * X), np.cos(math.pi * X)
    sy, cy = np.sin(math.pi * Y), np.cos(math.pi * Y)
    a = 1 + X**2 + Y
    u = s * sy
    f = -(2 * X * math.pi * c * sy + 1.0 * math.pi * s * cy - a * 2 * math.pi**2 * u)
    return float(np.abs(darcy.solve(a, f) - u).max())


def test_manufactured_solution_converges_second_order():
    errs = [manufactured_error(r) for r in (17, 33, 65)]
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(1.8 < p < 2.2 for p in orders), (errs, orders)


def test_generated_samples_solve_the_discrete_system():
    r = darcy.simulate(3, 24, seed=2, start=5)
    assert r.inputs.shape == (3, 24, 24, 1) and r.targets.shape == (3, 24, 24, 1) and r.fields is None
    assert set(np.unique(r.inputs)) <= {3.0, 12.0} and len(np.unique(r.inputs)) == 2
    for a, u in zip(r.inputs[..., 0].astype(np.float64), r.targets[..., 0].astype(np.float64)):
        mat, rhs = darcy.system(a)
        residual = np.linalg.norm(mat @ u[1:-1, 1:-1].ravel() - rhs) / np.linalg.norm(rhs)
        assert residual < 1e-5  # float32 storage of u
        assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0) and np.all(u[:, -1] == 0)
        assert u[1:-1, 1:-1].min() > 0  # maximum principle: f = 1 > 0
    alone = darcy.simulate(1, 24, seed=2, start=7)
    np.testing.assert_array_equal(alone.targets[0], r.targets[2])
