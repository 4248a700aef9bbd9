"""The demo's training phases within a wall-clock budget: time a few throw-away steps, size each run's step
count to its share of the time, train (with a hard time limit as a safety net).

Step times come from the trainer's own measurement (`FitResult.step_seconds`); the rest of a calibration run's
wall time (data set-up, warm-up, the final evaluation, the checkpoint) is the per-run overhead."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpot.config import find_preset
from dpot.errors import DpotError

if TYPE_CHECKING:
    from dpot.training.trainer import FitResult
    from dpot.workflows.demo import DemoPlan

# the three models trained on the held-out task: label -> (run folder, `model=` of the fine-tuning config)
HOLDOUT_RUNS = {
    "DPOT fine-tuned": ("finetune", "pretrained"),
    "DPOT from scratch": ("scratch", "scratch"),
    "FNO": ("fno", "fno"),
}


def say(msg: str) -> None:
    """A progress line of the demo on stderr."""
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def pretrain_config_path(name: str) -> Path:
    """`demo` -> the packaged pretrain preset of that name; a path to a YAML file as is."""
    path = find_preset("pretrain", name)
    if not path.is_file():
        raise DpotError(f"demo: pretrain_config {name}: no such file")
    return path


def calibration(result: FitResult, wall: float) -> tuple[float, float]:
    """(seconds per optimiser step, fixed seconds per run) of a calibration run that took `wall` seconds."""
    if result.step_seconds is None:
        raise DpotError("demo: the calibration run logged no step time; raise calibration_steps")
    return result.step_seconds, max(0.0, wall - result.step * result.step_seconds)


def steps_for(plan: DemoPlan, seconds: float, step_s: float, overhead: float) -> int:
    """Steps that fit `seconds` (5 % kept as a margin for jitter), at least `min_steps`."""
    return max(plan.min_steps, int(0.95 * (seconds - overhead) / step_s))


def pretrain_phase(
    plan: DemoPlan, data_root: Path, exclude: list[str], pretrain_sets: list[str], out: Path, seconds: float
) -> tuple[Path, dict[str, Any]]:
    """Calibrate (unless `plan.pretrain_steps` is set), then pre-train into `out/pretrain`; (checkpoint, info)."""
    from dpot.training.pretrain import load_pretrain_config, run_pretrain

    path = pretrain_config_path(plan.pretrain_config)
    base = [
        f"data.root={data_root}",
        f"data.datasets=[{','.join(pretrain_sets)}]",
        f"train.progress={'true' if plan.progress else 'false'}",
        "train.eval_every=0",
        "train.eval_trajectories=2",
        "train.eval_steps=2",
        *plan.pretrain_overrides,
    ]
    info: dict[str, Any] = {"config": str(path), "datasets": pretrain_sets, "excluded": exclude}
    steps = plan.pretrain_steps
    calibrated = steps is None
    if calibrated:
        n = plan.calibration_steps
        cfg = load_pretrain_config(
            path,
            [*base, f"train.max_steps={n}", "train.log_every=1", "train.progress=false", f"train.checkpoint_every={n}"],
        )
        t0 = time.perf_counter()
        result = run_pretrain(replace(cfg, out=str(out / "calibrate" / "pretrain")))
        wall = time.perf_counter() - t0
        step_s, overhead = calibration(result, wall)
        seconds -= wall
        steps = steps_for(plan, seconds, step_s, overhead)
        info.update(measured_step_seconds=step_s, measured_overhead_seconds=overhead)
        say(
            f"pre-training: {step_s:.3f} s/step + {overhead:.0f} s per run measured -> {steps} steps for "
            f"{seconds:.0f} s"
        )
    cfg = load_pretrain_config(
        path,
        [
            *base,
            f"train.max_steps={steps}",
            f"optim.schedule_steps={steps}",
            f"train.checkpoint_every={max(steps // 4, 1)}",
        ],
    )
    t0 = time.perf_counter()
    # a calibrated step count fits the budget; the time limit holds it if the machine slows down afterwards
    # (a spent budget still trains min_steps: the later phases need a pre-trained model)
    stop_at = t0 + seconds if calibrated and steps > plan.min_steps else None
    result = run_pretrain(replace(cfg, out=str(out / "pretrain")), stop_at=stop_at)
    info.update(
        steps=result.step,
        seconds=time.perf_counter() - t0,
        final_loss=result.loss,
        batch_size=cfg.train.batch_size,
        t_in=cfg.data.t_in,
    )
    return out / "pretrain" / "checkpoint", info


def _finetune_cfg(
    plan: DemoPlan, ckpt: Path, holdout_dir: Path, run: Path, model: str, steps: int, extra: tuple[str, ...] = ()
):
    from dpot.training.finetune import load_finetune_config

    over = [
        f"model={model}",
        f"train.max_steps={steps}",
        f"optim.schedule_steps={steps}",
        f"data.n_trajectories={plan.n_trajectories}",
        f"train.batch_size={plan.finetune_batch}",
        f"optim.lr={plan.finetune_lr}",
        f"train.noise={plan.finetune_noise}",
        f"data.normalize={'true' if plan.finetune_normalize else 'false'}",
        "train.noise_mode=rms",
        "finetune.channels=widen",
        f"fno.modes={plan.fno.modes}",
        f"fno.width={plan.fno.width}",
        f"fno.n_layers={plan.fno.n_layers}",
        f"train.checkpoint_every={max(steps, 1)}",
        f"train.progress={'true' if plan.progress else 'false'}",
        "train.eval_trajectories=2",
        "train.eval_steps=2",
        *plan.finetune_overrides,
        *extra,
    ]
    cfg = load_finetune_config(None, over)
    return replace(cfg, init=str(ckpt), out=str(run), data=replace(cfg.data, path=str(holdout_dir)))


def holdout_phase(
    plan: DemoPlan, ckpt: Path, holdout_dir: Path, out: Path, seconds: float
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Fine-tune DPOT; train DPOT from scratch and the FNO on the same trajectories with the same budget.

    Budgeting by time (`plan.finetune_steps` null), each model gets the same wall-clock share: its step count
    comes from its own measured step time (so every run completes its learning-rate schedule), with a hard
    limit as a safety net. With fixed steps, all three train exactly that many steps."""
    from dpot.training.finetune import run_finetune

    steps = plan.finetune_steps
    info: dict[str, Any] = {}
    end = time.perf_counter() + seconds if steps is None else None  # a hard limit only when budgeting by time
    planned = {label: steps for label in HOLDOUT_RUNS}
    if steps is None:
        t0 = time.perf_counter()
        measured = {}
        for label, (folder, model) in HOLDOUT_RUNS.items():
            cfg = _finetune_cfg(
                plan,
                ckpt,
                holdout_dir,
                out / "calibrate" / folder,
                model,
                plan.calibration_steps,
                ("train.log_every=1",),
            )
            c0 = time.perf_counter()
            result = run_finetune(cfg)
            measured[label] = calibration(result, time.perf_counter() - c0)
        per_run = (seconds - (time.perf_counter() - t0)) / len(HOLDOUT_RUNS)
        planned = {lab: steps_for(plan, per_run, *measured[lab]) for lab in HOLDOUT_RUNS}
        info["measured_step_seconds"] = {lab: m[0] for lab, m in measured.items()}
        info["measured_overhead_seconds"] = {lab: m[1] for lab, m in measured.items()}
        info["seconds_per_model"] = per_run
        say(
            f"fine-tuning: {per_run:.0f} s per model; measured s/step "
            + ", ".join(f"{lab} {m[0]:.3f} -> {planned[lab]} steps" for lab, m in measured.items())
        )
    ckpts: dict[str, Path] = {}
    for i, (label, (folder, model)) in enumerate(HOLDOUT_RUNS.items()):
        n = planned[label]
        say(f"training {label} ({n} steps, {plan.n_trajectories} trajectories)")
        t0 = time.perf_counter()
        stop_at = None if end is None else t0 + max(end - t0, 0.0) / (len(HOLDOUT_RUNS) - i)  # this run's share
        result = run_finetune(_finetune_cfg(plan, ckpt, holdout_dir, out / folder, model, n), stop_at=stop_at)
        if result.interrupted:
            say(f"{label}: stopped by the time budget at step {result.step} of {n}")
        info[label] = {
            "steps": result.step,
            "planned_steps": n,
            "seconds": time.perf_counter() - t0,
            "final_loss": result.loss,
            "run": str(out / folder),
            "stopped_by_budget": bool(result.interrupted),
        }
        ckpts[label] = out / folder / "checkpoint"
    info["budget"] = "time" if steps is None else "steps"
    return ckpts, info
