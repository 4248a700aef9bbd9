"""Time stepping shared by the solvers: per-trajectory clocks that land exactly on the output times, and the
NaN check that turns a blown-up trajectory into a DpotError naming it."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from dpot.errors import DpotError

_MAX_STEPS_PER_FRAME = 200_000  # a guard against a time step collapsing to zero (it would never finish)


def check_finite(x: torch.Tensor, name: str, start: int, t: float) -> None:
    """Raise a DpotError naming the first trajectory (global index) whose state is not finite at time t."""
    bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0, 0])
        raise DpotError(
            f"{name}: trajectory {start + i} became NaN/Inf at t={t:.6g}; the settings are unstable "
            "(reduce the time step factor or the parameter range)"
        )


def integrate_frames(
    state,
    frames: int,
    dt: float,
    step: Callable,
    max_step: Callable,
    record: Callable,
    *,
    name: str,
    start: int = 0,
):
    """Advance `state` through `frames - 1` output intervals of length `dt`; return the recorded frames
    stacked on axis 1 as `(B, frames, ...)`.

    `max_step(state) -> (B,)` is the largest stable step per trajectory; `step(state, h) -> state` takes a
    step of `h` `(B,)` (zero for trajectories already at the output time, which must leave them unchanged);
    `record(state) -> (B, ...)` makes a stored frame. Each trajectory keeps its own clock, so its result does
    not depend on the other trajectories in the batch.

    Sub-steps never read back to the host (clocks and flags stay on the state's device): the loop runs them
    in runs whose length is the current estimate of the steps left, and reads one small vector after each
    run (about two or three reads per frame, plus the NaN check).
    """
    out = [record(state)]
    b, dev = out[0].shape[0], out[0].device
    for f in range(1, frames):
        target = f * dt
        tol = 1e-12 * max(1.0, target)
        # one clock per trajectory, float64 so that thousands of steps still land on the output time
        t = torch.full((b,), (f - 1) * dt, dtype=torch.float64, device=dev)
        collapsed = torch.zeros(b, dtype=torch.bool, device=dev)
        run, taken = 1, 0
        while True:
            for _ in range(run):
                remaining = target - t
                active = remaining > tol
                h_max = max_step(state).detach().to(torch.float64)
                h_max = torch.nan_to_num(h_max, nan=0.0, posinf=dt, neginf=0.0).clamp(min=0.0, max=dt)
                collapsed = collapsed | (active & (h_max <= 0))
                # take the remainder whole when it is barely above the stable step, to avoid a tiny last step
                h = torch.where(remaining <= h_max * 1.0001, remaining, h_max)
                h = torch.where(active, h, torch.zeros_like(h))
                state = step(state, h)
                t = t + h
            taken += run
            left = torch.where(target - t > tol, (target - t) / (h_max * 1.0001), torch.zeros_like(t))
            more, bad, steps = torch.stack(
                [(target - t > tol).any().double(), collapsed.any().double(), left.nan_to_num(0.0).amax()]
            ).tolist()
            if bad:
                check_finite(record(state), name, start, float(f - 1) * dt)
                raise DpotError(f"{name}: the stable time step collapsed to zero before t={target:.6g}")
            if not more:
                break
            if taken >= _MAX_STEPS_PER_FRAME:
                raise DpotError(
                    f"{name}: more than {_MAX_STEPS_PER_FRAME} steps for one frame; the time step is "
                    "too small for these settings"
                )
            run = int(min(max(math.ceil(steps), 1), _MAX_STEPS_PER_FRAME - taken))
        check_finite(record(state), name, start, target)
        out.append(record(state))
    return torch.stack(out, dim=1)


def if_rk4_step(
    u_hat: torch.Tensor, h: torch.Tensor, decay: torch.Tensor, rhs: Callable, k1: torch.Tensor | None = None
) -> torch.Tensor:
    """One integrating-factor RK4 step for du/dt = -decay·u + rhs(u) in Fourier space: the linear decay is
    integrated exactly. `h` broadcasts against `u_hat` (one step size per trajectory); `k1` = rhs(u_hat) if known."""
    e2 = torch.exp(-decay * (h / 2))
    e = e2 * e2
    if k1 is None:
        k1 = rhs(u_hat)[0]
    k2, _ = rhs(e2 * (u_hat + (h / 2) * k1))
    k3, _ = rhs(e2 * u_hat + (h / 2) * k2)
    k4, _ = rhs(e * u_hat + h * e2 * k3)
    return e * u_hat + (h / 6) * (e * k1 + 2 * e2 * (k2 + k3) + k4)
