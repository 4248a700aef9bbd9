"""The solvers' sub-steps read nothing back to the host (no device sync on a GPU): counted on the CPU with the
`host_reads` fixture. Host reads happen once per run of sub-steps or per saved frame, not per sub-step."""

from __future__ import annotations

import torch

from dpot.solvers import compressible_ns, diffusion_reaction, ns2d_vorticity, ns3d, shallow_water


def _count_calls(monkeypatch, owner, name: str) -> list[int]:
    calls = [0]
    fn = getattr(owner, name)

    def wrapped(*args, **kwargs):
        calls[0] += 1
        return fn(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)
    return calls


def test_adaptive_sub_steps_make_no_host_read(host_reads):
    """One sub-step of each `integrate_frames` solver (CFL step, then the step) reads and copies nothing."""
    torch.manual_seed(0)
    w0 = torch.randn(2, 16, 16)
    vort = ns2d_vorticity.VorticitySolver(16, torch.full((2,), 1e-3), ns2d_vorticity.fno_forcing(16))
    sw = shallow_water.ShallowWaterSolver(0.1, 0.1)
    vel = ns3d.VelocitySolver3D(8, torch.full((2,), 1e-2), 0.5, "cpu")
    states = [
        (vort, torch.fft.rfft2(w0)),
        (sw, 1.0 + 0.1 * torch.rand(2, 3, 16, 16)),
        (vel, vel.project(torch.fft.rfftn(torch.randn(2, 3, 8, 8, 8), dim=(-3, -2, -1)))),
    ]
    for solver, state in states:
        solver.step(state, solver.max_step(state).double())  # warm-up (per-device constants)
        host_reads.reset()
        for _ in range(3):
            state = solver.step(state, solver.max_step(state).detach().double())
        assert host_reads.calls == {}, (type(solver).__name__, host_reads.calls)


def test_integrate_frames_reads_per_frame_not_per_sub_step(host_reads, monkeypatch):
    vort = ns2d_vorticity.VorticitySolver(16, torch.full((2,), 1e-3), ns2d_vorticity.fno_forcing(16), cfl=0.05)
    steps = _count_calls(monkeypatch, vort, "step")
    w0 = ns2d_vorticity.gaussian_random_field_2d(2, 16, seed=0, start=0)
    host_reads.reset()
    w = vort.run(w0, frames=3, dt=1.0)
    assert w.shape == (2, 3, 16, 16) and torch.isfinite(w).all()
    assert steps[0] >= 20 and host_reads.reads <= 5 * 2, (steps[0], host_reads.calls)
    assert host_reads.copies == 0


def test_diffusion_reaction_reads_per_frame_not_per_sub_step(host_reads, monkeypatch):
    steps = _count_calls(monkeypatch, diffusion_reaction, "rk4")
    host_reads.reset()
    y = diffusion_reaction.integrate(torch.randn(2, 2, 16, 16), 3, 0.05, 0.02, 1e-3, 5e-3, 5e-3)
    assert y.shape == (2, 3, 2, 16, 16)
    assert steps[0] >= 8 and host_reads.reads <= 3 * 2 and host_reads.copies == 0, (steps[0], host_reads.calls)


def test_compressible_sub_steps_read_once_per_run(host_reads):
    w0 = compressible_ns.random_initial_state(3, 16, seed=1, start=0, mach=0.1).float()
    host_reads.reset()
    q, steps = compressible_ns.integrate(w0, 3, 0.05, 0.1, 0.1)
    assert q.shape == (3, 3, 4, 16, 16) and torch.isfinite(q).all()
    runs = host_reads.calls.get("tolist", 0)
    # one read per run of sub-steps (a run ends when a trajectory finishes its frame), not one per sub-step
    assert steps >= 3 * runs and host_reads.reads <= runs + 2 * 2, (steps, host_reads.calls)
