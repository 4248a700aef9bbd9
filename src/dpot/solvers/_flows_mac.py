"""Shared pieces of the staggered (MAC) grid solvers in `buoyancy` and `cavity`.

Arrays are indexed [batch, i, j] with i along x and j along y. On an N×N cell grid of spacing dx, the x-velocity u
lives on vertical faces (N+1, N) at (i dx, (j+1/2) dx), v on horizontal faces (N, N+1) and scalars at cell centres.
Linear solves use the exact eigen-decomposition of the 1D second-difference operators (dense, float64 setup).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def second_difference(n: int, dx: float, ends: str) -> np.ndarray:
    """1D second-difference matrix on n unknowns: `neumann` (zero-flux cell centres), `dirichlet_node`
    (unknowns are the interior nodes, zero boundary nodes) or `dirichlet_cell` (cell centres, ghost = -interior)."""
    a = np.diag(np.full(n, -2.0)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    if ends == "neumann":
        a[0, 0] = a[-1, -1] = -1.0
    elif ends == "dirichlet_cell":
        a[0, 0] = a[-1, -1] = -3.0
    elif ends != "dirichlet_node":
        raise ValueError(f"unknown boundary treatment {ends!r}")
    return a / dx**2


class EigenSolver2D:
    """Solve f(Lx ⊗ I + I ⊗ Ly) x = rhs for (B, nx, ny) right-hand sides, with the 1D operators diagonalised once."""

    def __init__(self, ax: np.ndarray, ay: np.ndarray, device: str | torch.device, dtype: torch.dtype):
        lx, qx = np.linalg.eigh(ax)
        ly, qy = np.linalg.eigh(ay)
        self.qx = torch.as_tensor(qx, device=device, dtype=dtype)
        self.qy = torch.as_tensor(qy, device=device, dtype=dtype)
        self.lam = torch.as_tensor(lx[:, None] + ly[None, :], device=device, dtype=dtype)  # (nx, ny)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.qx.T @ x @ self.qy

    def inverse(self, xh: torch.Tensor) -> torch.Tensor:
        return self.qx @ xh @ self.qy.T

    def poisson(self, rhs: torch.Tensor) -> torch.Tensor:
        """Solution of L x = rhs with the null space (a zero eigenvalue, Neumann) projected out."""
        lam = self.lam
        zero = lam.abs() < 1e-9 * lam.abs().max()
        inv = torch.where(zero, torch.zeros_like(lam), 1.0 / torch.where(zero, torch.ones_like(lam), lam))
        return self.inverse(self.forward(rhs) * inv)

    def helmholtz(self, rhs: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Solution of (I - c L) x = rhs for a per-trajectory coefficient c (B,)."""
        return self.inverse(self.forward(rhs) / (1.0 - c.view(-1, 1, 1) * self.lam))


def divergence(u: torch.Tensor, v: torch.Tensor, dx: float) -> torch.Tensor:
    """Cell-centred divergence (B, N, N) of face velocities u (B, N+1, N), v (B, N, N+1)."""
    return (u[:, 1:] - u[:, :-1] + v[:, :, 1:] - v[:, :, :-1]) / dx


def project(u: torch.Tensor, v: torch.Tensor, dx: float, solver: EigenSolver2D) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove the gradient part of (u, v) in a closed box: wall-normal faces are kept, the result is discretely
    divergence-free (the Neumann Laplacian is exactly div∘grad on this grid)."""
    phi = solver.poisson(divergence(u, v, dx))
    u = torch.cat((u[:, :1], u[:, 1:-1] - (phi[:, 1:] - phi[:, :-1]) / dx, u[:, -1:]), 1)
    v = torch.cat((v[:, :, :1], v[:, :, 1:-1] - (phi[:, :, 1:] - phi[:, :, :-1]) / dx, v[:, :, -1:]), 2)
    return u, v


def sample(f: torch.Tensor, fi: torch.Tensor, fj: torch.Tensor) -> torch.Tensor:
    """Bilinear values of f (B, ni, nj) at fractional indices fi, fj (B, *out) (clamped to the array)."""
    ni, nj = f.shape[-2:]
    grid = torch.stack((2.0 * fj / (nj - 1) - 1.0, 2.0 * fi / (ni - 1) - 1.0), -1)
    return F.grid_sample(f.unsqueeze(1), grid, mode="bilinear", padding_mode="border", align_corners=True)[:, 0]


def face_coords(n: int, dx: float, device: str | torch.device, dtype: torch.dtype):
    """Physical coordinates of the u-faces, v-faces and cell centres, each as an (x, y) pair of (ni, nj) grids."""
    nodes = torch.arange(n + 1, device=device, dtype=dtype) * dx
    cells = (torch.arange(n, device=device, dtype=dtype) + 0.5) * dx
    uxy = torch.meshgrid(nodes, cells, indexing="ij")
    vxy = torch.meshgrid(cells, nodes, indexing="ij")
    cxy = torch.meshgrid(cells, cells, indexing="ij")
    return uxy, vxy, cxy


def pad_tangential(
    u: torch.Tensor, v: torch.Tensor, ghost: str, lid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """u padded in y to (B, N+1, N+2) and v padded in x to (B, N+2, N+1) with ghost values outside the walls:
    `zero` (velocity zero outside) or `noslip` (ghost = -interior, i.e. zero at the wall; with `lid` (B,) the top
    wall moves in x: ghost = 2·lid - interior)."""
    if ghost == "zero":
        return F.pad(u, (1, 1)), F.pad(v, (0, 0, 1, 1))
    top = -u[:, :, -1:] if lid is None else 2.0 * lid.view(-1, 1, 1) - u[:, :, -1:]
    up = torch.cat((-u[:, :, :1], u, top), 2)
    vp = torch.cat((-v[:, :1], v, -v[:, -1:]), 1)
    return up, vp


def velocity_at(
    up: torch.Tensor, vp: torch.Tensor, x: torch.Tensor, y: torch.Tensor, dx: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear (u, v) at physical points (x, y) from the padded face arrays of `pad_tangential`."""
    return sample(up, x / dx, y / dx + 0.5), sample(vp, x / dx + 0.5, y / dx)


def advect_velocity(
    u: torch.Tensor, v: torch.Tensor, h: float, dx: float, ghost: str, lid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Semi-Lagrangian self-advection of the face velocities (one backward Euler trace, bilinear interpolation);
    departure points are clamped to the box, wall-normal faces stay zero."""
    n = u.shape[-1]
    length = n * dx
    (ux, uy), (vx, vy), _ = face_coords(n, dx, u.device, u.dtype)
    up, vp = pad_tangential(u, v, ghost, lid)
    bsz = u.shape[0]
    dep = []
    for px, py in ((ux, uy), (vx, vy)):
        px, py = px.expand(bsz, -1, -1), py.expand(bsz, -1, -1)
        a, b = velocity_at(up, vp, px, py, dx)
        dep.append(((px - h * a).clamp(0.0, length), (py - h * b).clamp(0.0, length)))
    u_new = sample(up, dep[0][0] / dx, dep[0][1] / dx + 0.5)
    v_new = sample(vp, dep[1][0] / dx + 0.5, dep[1][1] / dx)
    u_new = torch.cat((torch.zeros_like(u_new[:, :1]), u_new[:, 1:-1], torch.zeros_like(u_new[:, :1])), 1)
    v_new = torch.cat((torch.zeros_like(v_new[:, :, :1]), v_new[:, :, 1:-1], torch.zeros_like(v_new[:, :, :1])), 2)
    return u_new, v_new


def laplacian_faces(
    u: torch.Tensor, v: torch.Tensor, dx: float, ghost: str, lid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """5-point Laplacian of the interior faces (wall-normal faces get 0), tangential ghosts as in `pad_tangential`."""
    up, vp = pad_tangential(u, v, ghost, lid)
    lu = (up[:, 2:, 1:-1] + up[:, :-2, 1:-1] + up[:, 1:-1, 2:] + up[:, 1:-1, :-2] - 4 * up[:, 1:-1, 1:-1]) / dx**2
    lv = (vp[:, 2:, 1:-1] + vp[:, :-2, 1:-1] + vp[:, 1:-1, 2:] + vp[:, 1:-1, :-2] - 4 * vp[:, 1:-1, 1:-1]) / dx**2
    zu = torch.zeros_like(u[:, :1])
    zv = torch.zeros_like(v[:, :, :1])
    return torch.cat((zu, lu, zu), 1), torch.cat((zv, lv, zv), 2)


def centre_velocity(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Face velocities averaged to cell centres, (B, N, N) each."""
    return 0.5 * (u[:, 1:] + u[:, :-1]), 0.5 * (v[:, :, 1:] + v[:, :, :-1])
