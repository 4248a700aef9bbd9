"""Optimisers and learning-rate schedules, computed from the step number (a resumed run needs only the step).

`adamw` is decoupled weight decay (AdamW); `adam` is the reference's Adam with coupled L2 decay
(`torch.optim.Adam(weight_decay=…)` adds wd·θ to the gradient). Schedules: `onecycle` reproduces
`torch.optim.lr_scheduler.OneCycleLR` (cosine annealing, two phases) including, with `cycle_beta1`, its beta1
cycling 0.95→0.85→0.95 that the reference silently used; `cosine` is linear warm-up then cosine decay;
`constant` is linear warm-up then flat. Past `schedule_steps` the last value is kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from dpot.training.config import OptimConfig

BASE_BETA1, MAX_BETA1 = 0.85, 0.95  # torch OneCycleLR defaults (base_momentum, max_momentum)


def warmup_steps(cfg: OptimConfig, total: int) -> int:
    """Warm-up length in steps: `warmup` is a fraction of `total` if < 1, else a step count."""
    return int(cfg.warmup * total) if cfg.warmup < 1 else int(cfg.warmup)


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _onecycle_phase(cfg: OptimConfig, step: int, total: int) -> tuple[int, float]:
    """(phase 0 = warm-up / 1 = anneal, fraction done), exactly as torch's OneCycleLR (three_phase=False)."""
    step = min(step, total - 1)
    end_warm = float(cfg.warmup * total if cfg.warmup < 1 else cfg.warmup) - 1
    if step <= end_warm:
        return 0, step / end_warm if end_warm > 0 else 1.0
    return 1, (step - end_warm) / max(total - 1 - end_warm, 1e-12)


def lr_at(cfg: OptimConfig, step: int, total: int, base_lr: float | None = None) -> float:
    """Learning rate of the update at 0-based optimiser step `step` for a group whose peak is `base_lr`."""
    peak = cfg.lr if base_lr is None else base_lr
    if cfg.schedule == "onecycle":
        initial = peak / cfg.div_factor
        phase, pct = _onecycle_phase(cfg, step, total)
        return _cos(initial, peak, pct) if phase == 0 else _cos(peak, initial / cfg.final_div_factor, pct)
    warm = warmup_steps(cfg, total)
    if step < warm:
        return peak * (step + 1) / warm
    if cfg.schedule == "constant":
        return peak
    pct = min(1.0, (step - warm) / max(total - warm, 1))
    return peak * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * pct)))


def beta1_at(cfg: OptimConfig, step: int, total: int) -> float:
    """beta1 at `step`: constant `betas[0]`, or cycled against the lr (onecycle with `cycle_beta1`)."""
    if not (cfg.schedule == "onecycle" and cfg.cycle_beta1):
        return cfg.betas[0]
    phase, pct = _onecycle_phase(cfg, step, total)
    return _cos(MAX_BETA1, BASE_BETA1, pct) if phase == 0 else _cos(BASE_BETA1, MAX_BETA1, pct)


def build_optimizer(groups: Iterable[dict], cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW or coupled-decay Adam over parameter groups; a group may set its own peak `lr` (layer-wise LR),
    which is remembered as `base_lr` for the schedule.

    The fused implementation when every parameter is real (it has no complex support; the FNO baseline's
    spectral weights are complex): besides being one kernel per device, its `found_inf` lets the trainer skip
    a step decided on the device (weights, moments and step counters untouched) without reading it back."""
    groups = [dict(g) for g in groups]
    for g in groups:
        g.setdefault("lr", cfg.lr)
        g["base_lr"] = g["lr"]
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    fused = all(p.is_floating_point() for g in groups for p in g["params"])
    return cls(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay, fused=fused)


def apply_schedule(optimizer: torch.optim.Optimizer, cfg: OptimConfig, step: int, total: int) -> float:
    """Set every group's lr (and beta1) for the update at `step`; returns the lr of the first group."""
    beta1 = beta1_at(cfg, step, total)
    for g in optimizer.param_groups:
        g["lr"] = lr_at(cfg, step, total, g["base_lr"])
        g["betas"] = (beta1, g["betas"][1])
    return optimizer.param_groups[0]["lr"]
