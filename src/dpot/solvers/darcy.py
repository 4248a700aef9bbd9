"""FNO's steady Darcy flow: -div(a grad u) = 1 on the unit square, u = 0 on the boundary.

The coefficient is piecewise constant, a = 12 where a Gaussian random field (cosine series,
N(0, (-Lap + 9 I)^-2)) is non-negative and 3 elsewhere, as in FNO's `piececonst` data. Finite differences
on the vertex grid (res points per axis including the boundary) with harmonic face coefficients; one sparse
direct solve (scipy SuperLU) per sample.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from dpot.errors import DpotError
from dpot.solvers.base import Family, SimResult, trajectory_generator


def coefficient_field(
    n: int,
    res: int,
    seed: int,
    start: int,
    alpha: float = 2.0,
    tau: float = 3.0,
    high: float = 12.0,
    low: float = 3.0,
) -> np.ndarray:
    """`(n, res, res)` piecewise-constant coefficients thresholded from a Neumann (cosine-series) GRF."""
    k = np.arange(res)
    lam = tau ** (alpha - 1) * (math.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2) ** (-alpha / 2)
    out = np.empty((n, res, res))
    for i in range(n):
        xi = torch.randn(res, res, generator=trajectory_generator(seed, start + i), dtype=torch.float64).numpy()
        coeff = xi * lam  # only the sign matters for the thresholded field
        coeff[0, 0] = 0.0
        field = scipy.fft.idctn(coeff, type=2, norm="ortho")
        out[i] = np.where(field >= 0, high, low)
    return out


def system(a: np.ndarray, f: np.ndarray | float = 1.0) -> tuple[sp.csr_matrix, np.ndarray]:
    """The 5-point system A u = b for the interior unknowns of a `(res, res)` vertex grid on [0, 1]^2.

    Face coefficients are harmonic means of the neighbouring vertex values (flux-continuous across jumps).
    """
    res = a.shape[0]
    h = 1.0 / (res - 1)
    m = res - 2
    ax = 2 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])  # face between (i, j) and (i+1, j)
    ay = 2 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])
    idx = np.arange(m * m).reshape(m, m)
    east, west = ax[1:, 1:-1], ax[:-1, 1:-1]  # faces (i+1/2, j), (i-1/2, j) for interior i, j
    north, south = ay[1:-1, 1:], ay[1:-1, :-1]
    diag = (east + west + north + south) / h**2
    rows, cols, vals = [idx.ravel()], [idx.ravel()], [diag.ravel()]
    for coef, di, dj in ((east, 1, 0), (west, -1, 0), (north, 0, 1), (south, 0, -1)):
        ii, jj = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
        ni, nj = ii + di, jj + dj
        ok = (ni >= 0) & (ni < m) & (nj >= 0) & (nj < m)
        rows.append(idx[ii[ok], jj[ok]])
        cols.append(idx[ni[ok], nj[ok]])
        vals.append(-coef[ok] / h**2)
    mat = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m * m, m * m))
    rhs = np.broadcast_to(np.asarray(f, dtype=np.float64), (res, res))[1:-1, 1:-1].ravel().copy()
    return mat, rhs


def solve(a: np.ndarray, f: np.ndarray | float = 1.0) -> np.ndarray:
    """Solve -div(a grad u) = f with u = 0 on the boundary; returns `u` on the full `(res, res)` grid."""
    res = a.shape[0]
    mat, rhs = system(a, f)
    u = np.zeros((res, res))
    u[1:-1, 1:-1] = spla.spsolve(mat.tocsc(), rhs).reshape(res - 2, res - 2)
    return u


def simulate(
    n: int,
    res: int,
    frames: int = 1,
    seed: int = 0,
    start: int = 0,
    device: str = "cpu",
    *,
    high: float = 12.0,
    low: float = 3.0,
    alpha: float = 2.0,
    tau: float = 3.0,
) -> SimResult:
    """Samples `start..start+n-1`: inputs a `(n, res, res, 1)`, targets u `(n, res, res, 1)`. Runs on the CPU
    (sparse direct solves); `frames` and `device` are accepted for interface uniformity and not used."""
    if res < 4 or high <= 0 or low <= 0:
        raise DpotError(f"darcy_2d: need res >= 4 and positive coefficients (got res={res}, high={high}, low={low})")
    a = coefficient_field(n, res, seed, start, alpha, tau, high, low)
    u = np.stack([solve(ai) for ai in a])
    if not np.all(np.isfinite(u)):
        raise DpotError("darcy_2d: the sparse solve returned NaN/Inf")
    return SimResult(inputs=a[..., None].astype(np.float32), targets=u[..., None].astype(np.float32))


FAMILY = Family(
    name="darcy_2d",
    pde="darcy",
    channels=["u"],
    space=["x", "y"],
    domain=[[0.0, 1.0], [0.0, 1.0]],
    boundary=["dirichlet", "dirichlet"],
    dt=1.0,
    simulate=simulate,
    steady=True,
    input_channels=["a"],
    defaults={"res": 64, "high": 12.0, "low": 3.0},
    description="FNO steady Darcy flow, piecewise-constant coefficient, zero Dirichlet boundary",
)
