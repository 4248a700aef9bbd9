"""Evaluate checkpoints on datasets: auto-regressive rollout from the first T_in frames of each trajectory, at
the dataset's native grid, scored with `dpot.evaluation.metrics` per dataset, channel and rollout step."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dpot.data.normalize import Normalizer, checkpoint_normalizer
from dpot.errors import DpotError
from dpot.evaluation import metrics as M


@dataclass
class Snapshot:
    """Truth and prediction of one trajectory (real channels only), `(*space, T, C)` numpy arrays."""

    truth: np.ndarray
    pred: np.ndarray
    channels: list[str]


def pick_device(device: str = "auto", option: str = "--device") -> torch.device:
    """`auto` = the first CUDA device if there is one, else the CPU; a device this machine lacks is a one-line
    error naming `option`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DpotError(f"{option}={device}: not a device name (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DpotError(
            f"{option}={device}: no CUDA GPU is visible to PyTorch on this machine; use {option}=cpu (or auto)"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DpotError(f"{option}={device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def _model_grid(model: nn.Module, native: tuple[int, ...]) -> tuple[int, ...] | None:
    """The grid to evaluate on: None (native) unless a DPOT is tied to another grid (then its own)."""
    cfg = model.config
    if getattr(model, "architecture", "") != "dpot" or tuple(cfg.img_size) == tuple(native):
        return None
    if cfg.interpolate_pos_embed and not any(s % cfg.patch_size for s in native):
        return None
    return tuple(cfg.img_size)


def check_fit(cfg: Any, dataset_dir: str | os.PathLike, split: str = "test") -> None:
    """Raise a one-line DpotError when a model config cannot take the dataset (dimension, channels, T_in)."""
    from dpot.data.format import open_split

    s = open_split(dataset_dir, split)
    meta = s.meta
    c_in = s.n_channels
    c_out = s.targets_shape[-1] if meta.steady else c_in
    if meta.ndim != cfg.ndim:
        raise DpotError(
            f"dataset {meta.name!r} is {meta.ndim}D but the checkpoint is a {cfg.ndim}D model; "
            f"fine-tune it on this dataset first (dpot finetune, which transfers 2D -> 3D)"
        )
    if max(c_in, c_out) > cfg.in_channels:
        raise DpotError(
            f"dataset {meta.name!r} has {c_in} input / {c_out} output channels but the checkpoint "
            f"takes {cfg.in_channels} in / {cfg.out_channels} out; fine-tune with "
            "finetune.channels=widen or finetune.channels=reinit first"
        )
    if meta.steady and cfg.in_timesteps != 1:
        raise DpotError(
            f"dataset {meta.name!r} is steady-state (inputs -> targets, T_in = 1) but the checkpoint "
            f"takes T_in={cfg.in_timesteps}; fine-tune on it first (dpot finetune sets T_in=1)"
        )
    if not meta.steady and s.n_frames <= cfg.in_timesteps:
        raise DpotError(
            f"dataset {meta.name!r} has {s.n_frames} frames per trajectory, not more than the "
            f"checkpoint's T_in={cfg.in_timesteps}; nothing to roll out"
        )


def predict_physical(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    device: torch.device,
    *,
    steady: bool = False,
    steps: int | None = None,
    normalizer: Normalizer | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One `TrajectoryDataset` batch as `dpot evaluate` scores it: (prediction, target, target channel mask).

    The first `steps` frames of the rollout (None: all target frames; steady-state: the model's one output)
    and of the target, float32 and in physical units: `normalizer` (the statistics the batch was standardised
    with; None for raw data) is undone on both. The training run's periodic evaluation scores the same way."""
    from dpot.models import rollout as roll

    hist = batch["history"].to(device)
    target = batch["target"].to(device).float()
    mask = batch["mask"].to(device)
    if steady:
        pred = model(hist, channel_mask=mask)[..., :1, :]
    else:
        steps = target.shape[-2] if steps is None else min(steps, target.shape[-2])
        pred = roll(model, hist, steps, channel_mask=mask)
    target = target[..., : pred.shape[-2], :]
    pred = pred.float()
    if normalizer is not None:
        pred, target = normalizer.decode(pred), normalizer.decode(target)
    return pred, target, batch["target_mask"].to(device)


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    dataset_dir: str | os.PathLike,
    *,
    split: str = "test",
    rollout: int | None = None,
    n_trajectories: int | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    normalizer: Normalizer | None = None,
) -> tuple[dict[str, Any], Snapshot]:
    """Roll `model` out on every trajectory of `dataset_dir/<split>.h5` and score it.

    Returns the metrics dict (`l2re`, `nrmse`, `vrmse` averaged over trajectories, their `*_per_step` curves,
    `per_channel`, setup and timing) and a `Snapshot` of the first trajectory for plots. Steady-state datasets
    are scored on one step. `normalizer`: the model was trained on standardised channels
    (`normalizer_for(checkpoint, dataset_dir)`); inputs are standardised with it and predictions mapped back to
    physical units before scoring.
    """
    from torch.utils.data import DataLoader

    from dpot.data.format import open_split
    from dpot.data.windows import TrajectoryDataset

    cfg = model.config
    check_fit(cfg, dataset_dir, split)
    device = torch.device(device)
    native = tuple(open_split(dataset_dir, split).space_shape)
    grid = _model_grid(model, native)
    n = len(open_split(dataset_dir, split))
    ds = TrajectoryDataset(
        dataset_dir,
        split,
        t_in=cfg.in_timesteps,
        n_channels=cfg.in_channels,
        resolution=grid,
        n_trajectories=None if n_trajectories is None else min(n_trajectories, n),
        horizon=rollout,
        normalize=normalizer or False,
    )
    meta = ds.meta
    steady = meta.steady
    c_out = ds.out_channels
    names = list(meta.channels)[:c_out] or [f"c{i}" for i in range(c_out)]
    model.eval().to(device)
    sums: dict[str, Any] = {}
    count, frames, snap = 0, 0, None
    t0 = time.perf_counter()
    for batch in DataLoader(ds, batch_size=batch_size):
        pred, target, tmask = predict_physical(model, batch, device, steady=steady, normalizer=normalizer)
        frames += pred.shape[0] * pred.shape[-2]
        one_hot = torch.eye(cfg.in_channels, device=device)[:c_out]
        per = {
            "l2re": M.l2re(pred, target, tmask),
            "nrmse": M.nrmse(pred, target, tmask),
            "vrmse": M.vrmse(pred, target, tmask),
            "l2re_per_step": M.l2re_per_step(pred, target, tmask),
            "nrmse_per_step": torch.stack(
                [M.nrmse(pred[..., s : s + 1, :], target[..., s : s + 1, :], tmask) for s in range(pred.shape[-2])],
                -1,
            ),
            "vrmse_per_step": torch.stack(
                [M.vrmse(pred[..., s : s + 1, :], target[..., s : s + 1, :], tmask) for s in range(pred.shape[-2])],
                -1,
            ),
            "l2re_channel": M.relative_l2_per_channel(pred, target)[:, :c_out],
            "nrmse_channel": torch.stack([M.nrmse(pred, target, m) for m in one_hot], -1),
            "vrmse_channel": torch.stack([M.vrmse(pred, target, m) for m in one_hot], -1),
        }
        for key, value in per.items():
            total = value.double().sum(0).cpu()
            sums[key] = total if key not in sums else sums[key] + total
        count += pred.shape[0]
        if snap is None:
            snap = Snapshot(target[0, ..., :c_out].cpu().numpy(), pred[0, ..., :c_out].cpu().numpy(), names)
    seconds = time.perf_counter() - t0
    avg = {k: (v / count) for k, v in sums.items()}
    result: dict[str, Any] = {
        "dataset": meta.name,
        "pde": meta.pde,
        "steady": steady,
        "split": split,
        "n_trajectories": count,
        "t_in": cfg.in_timesteps,
        "steps": int(avg["l2re_per_step"].numel()),
        "resolution": list(ds.space_shape),
        "native_resolution": list(native),
        "channels": names,
        "l2re": float(avg["l2re"]),
        "nrmse": float(avg["nrmse"]),
        "vrmse": float(avg["vrmse"]),
        "l2re_per_step": [float(v) for v in avg["l2re_per_step"]],
        "nrmse_per_step": [float(v) for v in avg["nrmse_per_step"]],
        "vrmse_per_step": [float(v) for v in avg["vrmse_per_step"]],
        "per_channel": {
            c: {m: float(avg[f"{m}_channel"][i]) for m in ("l2re", "nrmse", "vrmse")} for i, c in enumerate(names)
        },
        "seconds": seconds,
        "frames_per_s": frames / max(seconds, 1e-9),
    }
    return result, snap


def checkpoint_label(spec: str) -> tuple[str, str]:
    """`LABEL=PATH` -> (label, path); a bare path by its run folder (`RUN/checkpoint` -> `RUN`)."""
    if "=" in spec and not Path(spec).exists():
        label, path = spec.split("=", 1)
        return label, path
    p = Path(spec)
    return (p.parent.name if p.name == "checkpoint" and p.parent.name else p.name) or str(p), spec


def normalizer_for(ckpt: str | os.PathLike, dataset_dir: str | os.PathLike) -> Normalizer | None:
    """The statistics checkpoint `ckpt` standardises `dataset_dir` with (None: raw values); see
    `dpot.data.normalize.checkpoint_normalizer`."""
    from dpot.models.checkpoint import read_checkpoint_config

    return checkpoint_normalizer(read_checkpoint_config(ckpt), dataset_dir)


def evaluate_checkpoints(
    checkpoints: list[str],
    data: list[str],
    *,
    rollout: int | None = None,
    split: str = "test",
    n_trajectories: int | None = None,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
) -> tuple[dict[str, dict[str, dict]], dict[str, dict[str, Snapshot]], dict[str, str]]:
    """Evaluate every checkpoint on every dataset: (results[label][dataset], snapshots, label -> path).
    `overrides`: load-time model options that keep every weight's shape (`load_model(dir, **overrides)`)."""
    from tqdm import tqdm

    from dpot.data.format import dataset_dirs
    from dpot.data.stats import warn_nonfinite
    from dpot.io import safetensors_shapes
    from dpot.models import load_model
    from dpot.models.checkpoint import load_model_config

    specs = [checkpoint_label(c) for c in checkpoints]
    labels = [lab for lab, _ in specs]
    if len(set(labels)) != len(labels):
        specs = [(f"{lab}#{i + 1}", p) for i, (lab, p) in enumerate(specs)]
    cfgs = [load_model_config(path, **(overrides or {})) for _, path in specs]
    dirs: list[Path] = []
    for root in data:  # a named dataset must fit; datasets found under a root that do not fit are skipped
        found = dataset_dirs(root)
        for d in found:
            try:
                for cfg in cfgs:
                    check_fit(cfg, d, split)
                dirs.append(d)
            except DpotError as exc:
                if len(found) == 1:
                    raise
                print(f"dpot evaluate: skipped {d.name}: {exc}", file=sys.stderr)
    if not dirs:
        raise DpotError(f"no dataset under {', '.join(map(str, data))} fits the checkpoint(s)")
    for d in dirs:
        warn_nonfinite(d, split, "dpot evaluate")
    dev = pick_device(device)
    results: dict[str, dict[str, dict]] = {}
    snaps: dict[str, dict[str, Snapshot]] = {}
    for _, path in specs:  # a damaged weights file fails now, not after other checkpoints ran
        safetensors_shapes(Path(path) / "model.safetensors")
    bar = tqdm(total=len(specs) * len(dirs), unit="eval", disable=not progress)
    for label, path in specs:
        model = load_model(path, map_location=dev, **(overrides or {}))
        for d in dirs:
            bar.set_description(f"{label} on {d.name}")
            res, snap = evaluate_model(
                model,
                d,
                split=split,
                rollout=rollout,
                n_trajectories=n_trajectories,
                batch_size=batch_size,
                device=dev,
                normalizer=normalizer_for(path, d),
            )
            results.setdefault(label, {})[d.name] = res
            snaps.setdefault(label, {})[d.name] = snap
            bar.update(1)
    bar.close()
    return results, snaps, dict(specs)


def write_evaluation(
    out: str | os.PathLike,
    results: dict[str, dict[str, dict]],
    snaps: dict[str, dict[str, Snapshot]],
    sources: dict[str, str] | None = None,
    title: str = "Evaluation",
) -> Path:
    """metrics.json / metrics.csv, error-vs-step and snapshot PNGs, `report.md` in `out`: all written into a
    temporary folder first, so a failure (a full disk) leaves no partial output."""
    from dpot.io import staged_folder

    with staged_folder(out) as stage:
        _write_files(stage, results, snaps, sources, title)
    return Path(out) / "report.md"


def _write_files(out: Path, results, snaps, sources, title) -> Path:
    from dpot.evaluation.plots import plot_error_curves, plot_snapshots, safe_name, snapshot_steps
    from dpot.evaluation.report import evaluation_markdown, write_metrics
    from dpot.io import write_text

    write_metrics(out, results)
    plots: dict[str, list[str]] = {}
    datasets = list(dict.fromkeys(n for per in results.values() for n in per))
    for name in datasets:
        curves = {lab: per[name]["l2re_per_step"] for lab, per in results.items() if name in per}
        files = []
        if max(len(c) for c in curves.values()) > 1:
            f = f"error_{safe_name(name)}.png"
            plot_error_curves(curves, out / f, title=f"{name}: L2RE per rollout step")
            files.append(f)
        for lab in results:
            snap = snaps.get(lab, {}).get(name)
            if snap is None:
                continue
            f = f"snapshots_{safe_name(lab)}_{safe_name(name)}.png"
            plot_snapshots(
                snap.truth,
                snap.pred,
                snapshot_steps(snap.truth.shape[-2]),
                snap.channels,
                out / f,
                title=f"{lab} on {name}",
            )
            files.append(f)
        plots[name] = files
    report = out / "report.md"
    text = evaluation_markdown(results, plots, sources).replace("# Evaluation", f"# {title}", 1)
    write_text(report, text + "\n")
    return report


def summary_table(results: dict[str, dict[str, dict]]) -> str:
    """Plain-text summary: one line per checkpoint and dataset."""
    lines = [f"{'checkpoint':<20} {'dataset':<28} {'steps':>5} {'L2RE':>9} {'nRMSE':>9} {'VRMSE':>9} {'frames/s':>9}"]
    for lab, per in results.items():
        for name, m in per.items():
            lines.append(
                f"{lab[:20]:<20} {name[:28]:<28} {m['steps']:>5} {m['l2re']:>9.4g} {m['nrmse']:>9.4g} "
                f"{m['vrmse']:>9.4g} {m['frames_per_s']:>9.1f}"
            )
    return "\n".join(lines)


def evaluate_command(
    checkpoints: list[str],
    data: list[str],
    out: str | os.PathLike,
    *,
    rollout: int | None = None,
    split: str = "test",
    n_trajectories: int | None = None,
    batch_size: int = 8,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
) -> str:
    """What `dpot evaluate` does: evaluate, write everything into `out`, return a printable summary."""
    if rollout is not None and rollout < 1:
        raise DpotError(f"--rollout {rollout}: give at least 1 step")
    if Path(out).exists() and not Path(out).is_dir():
        raise DpotError(f"--out {out} is an existing file; give a folder (new or existing) for the results")
    results, snaps, sources = evaluate_checkpoints(
        checkpoints,
        data,
        rollout=rollout,
        split=split,
        n_trajectories=n_trajectories,
        batch_size=batch_size,
        device=device,
        overrides=overrides,
    )
    report = write_evaluation(out, results, snaps, sources)
    return summary_table(results) + f"\nwrote {Path(out) / 'metrics.json'}, metrics.csv, plots and {report}"
