"""PDEBench-style 2D compressible Navier–Stokes on the periodic unit square (channels vx, vy, density, pressure).

Scheme: finite volume, MUSCL reconstruction of primitive variables with the MC limiter, HLLC Riemann solver,
SSP-RK2 (Heun) in time with a per-trajectory CFL step, then an operator-split viscous step solved exactly in
Fourier space (no viscous time-step limit; momentum and total energy are conserved, dissipated kinetic energy
becomes heat). Every trajectory keeps its own clock; only unfinished trajectories are stepped.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dpot.errors import DpotError
from dpot.solvers.base import Family, SimResult, trajectory_generator

GAMMA = 5.0 / 3.0
CFL = 0.3
T_FRAME = 0.05  # PDEBench: t in [0, 1], 21 frames
_MAX_RETRIES = 3  # a failed interval is redone with half the CFL number this many times before giving up
_MODES = [(i, j) for i in range(-4, 5) for j in range(-4, 5) if (i, j) != (0, 0)]
_CPU_CHUNK = 8  # trajectories integrated together on a CPU: small batches stay in cache (1.5x faster than 32)
_MIN_FACTOR = 0.05  # density/pressure perturbation factor floor (PDEBench's draw can reach <= 0)


def _mc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Monotonised-central limited slope from the backward (a) and forward (b) differences (0 at extrema)."""
    s = torch.minimum(torch.minimum(a.abs(), b.abs()), 0.25 * (a + b).abs())
    return (torch.sign(a) + torch.sign(b)) * s


def _cons(w: torch.Tensor, gamma: float) -> torch.Tensor:
    """Primitive (rho, u, v, p) -> conserved (rho, rho u, rho v, E), channel dim 1."""
    r, u, v, p = w.unbind(1)
    return torch.stack((r, r * u, r * v, p / (gamma - 1) + 0.5 * r * (u * u + v * v)), 1)


def _prim(q: torch.Tensor, gamma: float) -> torch.Tensor:
    """Conserved -> primitive, channel dim 1."""
    r, mx, my, e = q.unbind(1)
    u, v = mx / r, my / r
    return torch.stack((r, u, v, (gamma - 1) * (e - 0.5 * r * (u * u + v * v))), 1)


def _hllc(wl: torch.Tensor, wr: torch.Tensor, gamma: float) -> torch.Tensor:
    """Toro's HLLC flux for the face-normal velocity in channel 1, states (B, 4, ...)."""
    rl, ul, vl, pl = wl.unbind(1)
    rr, ur, vr, pr = wr.unbind(1)
    cl = torch.sqrt(gamma * pl / rl)
    cr = torch.sqrt(gamma * pr / rr)
    sl = torch.minimum(ul - cl, ur - cr)
    sr = torch.maximum(ul + cl, ur + cr)
    ml, mr = rl * (sl - ul), rr * (sr - ur)
    ss = (pr - pl + ul * ml - ur * mr) / (ml - mr)
    left = ss >= 0
    # star state on the side of the contact that holds the interface
    r = torch.where(left, rl, rr)
    u = torch.where(left, ul, ur)
    v = torch.where(left, vl, vr)
    p = torch.where(left, pl, pr)
    sk = torch.where(left, sl, sr)
    e = p / (gamma - 1) + 0.5 * r * (u * u + v * v)
    mu = r * u
    pstar = pl + ml * (ss - ul)
    supersonic = ((sl >= 0) & left) | ((sr <= 0) & ~left)
    a = ss / (sk - ss)  # F*_K = (S* (S_K U_K - F_K) + S_K p* D*) / (S_K - S*), D* = (0, 1, 0, S*)
    b = sk * pstar / (sk - ss)
    fluxes = []
    for qk, fk, dk in ((r, mu, None), (mu, mu * u + p, b), (r * v, mu * v, None), (e, u * (e + p), b * ss)):
        star = a * (sk * qk - fk)
        fluxes.append(torch.where(supersonic, fk, star if dk is None else star + dk))
    return torch.stack(fluxes, 1)


def _face_flux(w: torch.Tensor, gamma: float) -> torch.Tensor:
    """MUSCL-HLLC fluxes through the N+1 faces -1/2 .. N-1/2 along the last axis (periodic, two ghost cells
    each side), normal velocity in channel 1."""
    wp = torch.cat((w[..., -2:], w, w[..., :2]), -1)
    d = wp[..., 1:] - wp[..., :-1]
    s = _mc(d[..., :-1], d[..., 1:])  # slopes of cells -1 .. N
    return _hllc(wp[..., 1:-2] + 0.5 * s[..., :-1], wp[..., 2:-1] - 0.5 * s[..., 1:], gamma)


def _rhs(q: torch.Tensor, dx: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """-div F for conserved q (B, 4, X, Y), and the primitive state it used. Both sweeps run as one batch."""
    w = _prim(q, gamma)
    b = w.shape[0]
    wx = w.transpose(-1, -2)  # x-sweep along the last axis; normal velocity u is channel 1
    wy = w[:, [0, 2, 1, 3]]  # y-sweep: swap so that the normal velocity v is channel 1
    f = _face_flux(torch.cat((wx, wy), 0), gamma)
    fx = f[:b].transpose(-1, -2)
    fy = f[b:][:, [0, 2, 1, 3]]
    div = (fx[..., 1:, :] - fx[..., :-1, :] + fy[..., 1:] - fy[..., :-1]) / dx
    return -div, w


def _viscous(
    q: torch.Tensor, h: torch.Tensor, eta: float, zeta: float, k2: torch.Tensor, kx: torch.Tensor, ky: torch.Tensor
) -> torch.Tensor:
    """Exact Fourier solve of dv/dt = eta Δv + (eta/3 + zeta) ∇(∇·v) over per-trajectory steps h (B,).

    Momentum changes by rho·Δv with its mean removed (total momentum exact); E is kept, so the dissipated
    kinetic energy becomes internal energy."""
    r = q[:, :1]
    v = q[:, 1:3] / r
    vh = torch.fft.rfft2(v)
    hb = h.view(-1, 1, 1).to(k2.dtype)
    a = torch.expm1(-eta * k2 * hb)  # transverse decay - 1
    b = torch.expm1(-(4.0 * eta / 3.0 + zeta) * k2 * hb)  # longitudinal decay - 1
    kdotv = (kx * vh[:, 0] + ky * vh[:, 1]) / torch.where(k2 > 0, k2, torch.ones_like(k2))
    lx, ly = kx * kdotv, ky * kdotv
    dvh = torch.stack(((vh[:, 0] - lx) * a + lx * b, (vh[:, 1] - ly) * a + ly * b), 1)
    dm = r * torch.fft.irfft2(dvh, s=v.shape[-2:])
    dm = dm - dm.mean(dim=(-2, -1), keepdim=True)
    return torch.cat((q[:, :1], q[:, 1:3] + dm, q[:, 3:]), 1)


def _max_speed(q: torch.Tensor, gamma: float) -> torch.Tensor:
    """Largest signal speed |v| + c per trajectory (B,)."""
    w = _prim(q, gamma)
    c = torch.sqrt((gamma * w[:, 3] / w[:, 0]).clamp_min(0))
    return (torch.sqrt(w[:, 1] ** 2 + w[:, 2] ** 2) + c).amax(dim=(-2, -1))


def _advance(
    q: torch.Tensor,
    h: torch.Tensor,
    dx: float,
    gamma: float,
    eta: float,
    zeta: float,
    k2: torch.Tensor,
    kx: torch.Tensor,
    ky: torch.Tensor,
) -> torch.Tensor:
    """One SSP-RK2 (Heun) step of the inviscid part with per-trajectory steps h (B,), then the viscous step."""
    hq = h.view(-1, 1, 1, 1)
    q1 = q + hq * _rhs(q, dx, gamma)[0]
    qn = 0.5 * (q + q1 + hq * _rhs(q1, dx, gamma)[0])
    if eta > 0 or zeta > 0:
        qn = _viscous(qn, h, eta, zeta, k2, kx, ky)
    return qn


def random_initial_state(n: int, res: int, seed: int, start: int, mach: float, gamma: float = GAMMA) -> torch.Tensor:
    """PDEBench "Rand" initial condition: primitive (n, 4, res, res) = (rho, u, v, p), float64.

    rho0, T0 ~ U(0.1, 10), p0 = rho0 T0; four fields sum_{k in [-4,4]^2} |k|^-1/2 sin(2πk·x + φ) with their own
    phases; velocity scaled to mean |v| = M sqrt(γ T0); rho = rho0 (1 + δρ f/mean|f|), δρ ~ U(0.01, 0.2), same for
    p; with probability 1/2 the perturbation is confined to a random tanh box (gas at rest outside)."""
    x = (torch.arange(res, dtype=torch.float64) + 0.5) / res
    xx, yy = torch.meshgrid(x, x, indexing="ij")
    kk = torch.tensor(_MODES, dtype=torch.float64)
    amp = kk.norm(dim=1) ** -0.5
    phase = 2 * math.pi * (kk[:, 0, None, None] * xx + kk[:, 1, None, None] * yy)  # (M, X, Y)
    out = torch.empty(n, 4, res, res, dtype=torch.float64)
    for i in range(n):
        g = trajectory_generator(seed, start + i)
        u01 = torch.rand(8, generator=g, dtype=torch.float64)
        phi = 2 * math.pi * torch.rand(4, len(_MODES), generator=g, dtype=torch.float64)
        rho0, t0 = 0.1 + 9.9 * u01[0], 0.1 + 9.9 * u01[1]
        d_rho, d_p = 0.01 + 0.19 * u01[2], 0.01 + 0.19 * u01[3]
        f = torch.einsum("m,fmxy->fxy", amp, torch.sin(phase[None] + phi[:, :, None, None]))
        win = torch.ones(res, res, dtype=torch.float64)
        if u01[4] < 0.5:
            edges = torch.rand(4, generator=g, dtype=torch.float64)
            lo, hi = 0.1 + 0.35 * edges[:2], 0.55 + 0.35 * edges[2:]
            wx = 0.5 * (torch.tanh((x - lo[0]) / 0.01) - torch.tanh((x - hi[0]) / 0.01))
            wy = 0.5 * (torch.tanh((x - lo[1]) / 0.01) - torch.tanh((x - hi[1]) / 0.01))
            win = wx[:, None] * wy[None, :]
        vel = f[:2]
        vel = vel * (mach * math.sqrt(gamma * float(t0)) / vel.norm(dim=0).mean())
        fr = (d_rho * f[2] / f[2].abs().mean()).clamp_min(_MIN_FACTOR - 1)
        fp = (d_p * f[3] / f[3].abs().mean()).clamp_min(_MIN_FACTOR - 1)
        out[i, 0] = rho0 * (1 + fr * win)
        out[i, 1:3] = vel * win
        out[i, 3] = rho0 * t0 * (1 + fp * win)
    return out


def integrate(
    w0: torch.Tensor,
    frames: int,
    dt: float,
    eta: float,
    zeta: float,
    gamma: float = GAMMA,
    cfl: float = CFL,
    first_index: int = 0,
) -> tuple[torch.Tensor, int]:
    """Integrate primitive states w0 (B, 4, X, Y) on the periodic unit square; return conserved frames
    (B, frames, 4, X, Y) at t = 0, dt, 2dt, ... and the number of (batch) steps taken. A non-finite or
    non-positive state is redone with a smaller CFL number, and otherwise raised as a DpotError naming
    trajectory `first_index + b` and the time."""
    b, _, nx, ny = w0.shape
    if nx != ny:
        raise DpotError(f"compressible_ns_2d needs a square grid, got {nx}x{ny}")
    dx = 1.0 / nx
    dev, dtype = w0.device, w0.dtype
    kf = 2 * math.pi * torch.fft.fftfreq(nx, d=dx, device=dev, dtype=dtype)
    kr = 2 * math.pi * torch.fft.rfftfreq(ny, d=dx, device=dev, dtype=dtype)
    kx, ky = torch.meshgrid(kf, kr, indexing="ij")
    k2 = kx * kx + ky * ky
    steps = 0
    q = _cons(w0, gamma)
    out = torch.empty(b, frames, 4, nx, ny, dtype=dtype, device=dev)
    out[:, 0] = q
    t = torch.zeros(b, dtype=torch.float64, device=dev)
    cfl_b = torch.full((b,), float(cfl), dtype=torch.float64, device=dev)
    for fi in range(1, frames):
        t_out = fi * dt
        for attempt in range(_MAX_RETRIES + 1):
            q_start, t_start = q.clone(), t.clone()
            # Sub-steps read nothing back to the host: the clocks stay on the device and the steps left per
            # trajectory are read once per run of steps (the fewest any unfinished one still needs), which
            # also re-selects the unfinished subset.
            left = (t < t_out - 1e-9 * dt).double()  # estimated steps left; > 0 while unfinished
            while True:
                flags = left.tolist()
                todo = [i for i, v in enumerate(flags) if v > 0]
                if not todo:
                    break
                run = max(1, math.ceil(min(flags[i] for i in todo) - 1e-6))
                full = len(todo) == b
                idx = None if full else torch.tensor(todo, device=dev)
                cfl_a = cfl_b if full else cfl_b[idx]
                for _ in range(run):
                    qa, ta = (q, t) if full else (q[idx], t[idx])
                    smax = _max_speed(qa, gamma).to(torch.float64)
                    smax = torch.nan_to_num(smax, nan=1.0, posinf=1.0).clamp_min(1e-12)
                    h_cfl = cfl_a * dx / smax
                    h = torch.minimum(h_cfl, t_out - ta).clamp_min(0.0)  # 0 once done: state kept as is
                    qn = _advance(qa, h.to(dtype), dx, gamma, eta, zeta, k2, kx, ky)
                    qn = torch.where((h > 0).view(-1, 1, 1, 1), qn, qa)
                    steps += 1
                    if full:
                        q, t = qn, ta + h
                    else:
                        q[idx], t[idx] = qn, ta + h
                rest = t_out - (t if full else t[idx])
                n_left = torch.where(rest > 1e-9 * dt, rest / h_cfl, torch.zeros_like(rest))
                left = n_left if full else torch.zeros_like(left).index_copy(0, idx, n_left)
            bad = ~(
                torch.isfinite(q).flatten(1).all(1)
                & (q[:, 0].flatten(1).amin(1) > 0)
                & (_prim(q, gamma)[:, 3].flatten(1).amin(1) > 0)
            )
            if not bool(bad.any()):
                break
            if attempt == _MAX_RETRIES:
                j = int(torch.nonzero(bad)[0])
                raise DpotError(
                    f"compressible_ns_2d: trajectory {first_index + j} became non-finite or non-positive "
                    f"before t={t_out:.4g} even with CFL {float(cfl_b[j]):.3g}; lower the Mach number "
                    f"or raise the resolution"
                )
            q = torch.where(bad.view(-1, 1, 1, 1), q_start, q)
            t = torch.where(bad, t_start, torch.full_like(t, t_out))
            cfl_b = torch.where(bad, 0.5 * cfl_b, cfl_b)
        out[:, fi] = q
    return out, steps


def simulate(
    n: int,
    res: int = 64,
    frames: int = 21,
    seed: int = 0,
    start: int = 0,
    device: str = "cpu",
    mach: float = 0.1,
    eta: float = 0.1,
    zeta: float = 0.1,
    dt: float = T_FRAME,
) -> SimResult:
    """Trajectories `start .. start+n-1` of the PDEBench 2D CFD "Rand" setting; channels (vx, vy, rho, p),
    frames every `dt` (PDEBench: 0.05, 21 frames on t in [0, 1])."""
    if res < 8 or frames < 1 or n < 1:
        raise DpotError(
            f"compressible_ns_2d: need n >= 1, res >= 8 and frames >= 1 (got n={n}, res={res}, frames={frames})"
        )
    if mach <= 0 or eta < 0 or zeta < 0 or dt <= 0:
        raise DpotError(
            f"compressible_ns_2d: need mach > 0, dt > 0 and eta, zeta >= 0 (got mach={mach}, "
            f"eta={eta}, zeta={zeta}, dt={dt})"
        )
    chunk = n if torch.device(device).type != "cpu" else _CPU_CHUNK
    fields = np.empty((n, frames, res, res, 4), dtype=np.float32)
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        w0 = random_initial_state(m, res, seed, start + i, mach).to(device=device, dtype=torch.float32)
        q, _ = integrate(w0, frames, dt, eta, zeta, first_index=start + i)
        w = _prim(q.flatten(0, 1), GAMMA).unflatten(0, q.shape[:2])
        fields[i : i + m] = w[:, :, [1, 2, 0, 3]].permute(0, 1, 3, 4, 2).cpu().numpy()
    params = np.tile(np.array([[mach, eta, zeta]], dtype=np.float64), (n, 1))
    return SimResult(fields=fields, params=params)


FAMILY = Family(
    name="compressible_ns_2d",
    pde="compressible_ns",
    channels=["vx", "vy", "density", "pressure"],
    space=["x", "y"],
    domain=[[0.0, 1.0], [0.0, 1.0]],
    boundary=["periodic", "periodic"],
    dt=T_FRAME,
    simulate=simulate,
    param_names=["mach", "eta", "zeta"],
    defaults={"res": 64, "frames": 21, "mach": 0.1, "eta": 0.1, "zeta": 0.1, "dt": T_FRAME},
    description="PDEBench 2D CFD (Rand, periodic), gamma=5/3: MUSCL-HLLC + SSP-RK2, exact Fourier viscous step",
)
