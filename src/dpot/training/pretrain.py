"""`pretrain(config)`: build the dataset mixture, the model and the held-out sets from a `PretrainConfig`,
then train with `Trainer` into the run directory (`config.out`)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from dpot.config import find_preset, load_config, to_dict
from dpot.data.format import dataset_dirs, open_split
from dpot.data.stats import require_finite
from dpot.errors import DpotError
from dpot.training.config import DataConfig, PretrainConfig
from dpot.training.runlock import locked_fit
from dpot.training.trainer import FitResult, Trainer


def select_datasets(data: DataConfig) -> list[Path]:
    """The dataset folders to train on: `data.datasets` under `data.root` minus `data.exclude`; if empty,
    every time-dependent dataset of the most common spatial dimension."""
    if not data.root:
        raise DpotError("data.root is not set; pass data.root=DIR (a folder from `dpot generate` or `dpot convert`)")
    if not Path(data.root).is_dir():
        raise DpotError(
            f"data.root={data.root}: no such directory (create datasets with `dpot generate` or `dpot convert`)"
        )
    found = {p.name: p for p in dataset_dirs(data.root)}
    unknown = [n for n in [*data.datasets, *data.exclude, *data.weights] if n not in found]
    if unknown:
        raise DpotError(f"data: no dataset {unknown[0]!r} under {data.root} (found: {', '.join(found)})")
    if data.datasets:
        chosen = [found[n] for n in data.datasets if n not in set(data.exclude)]
    else:  # every time-dependent dataset of the most common dimension (one model has one dimension)
        metas = {n: open_split(p, "train").meta for n, p in found.items() if n not in set(data.exclude)}
        dims = [m.ndim for m in metas.values() if not m.steady]
        ndim = max(sorted(set(dims)), key=dims.count) if dims else 0
        chosen = [found[n] for n, m in metas.items() if not m.steady and m.ndim == ndim]
    steady = [p.name for p in chosen if open_split(p, "train").meta.steady]
    if steady:
        raise DpotError(
            f"data.datasets: {steady[0]!r} is steady-state (inputs -> targets); pre-training "
            "needs time series; fine-tune on it instead"
        )
    if not chosen:
        raise DpotError(f"data: no time-dependent datasets left under {data.root} to train on")
    return chosen


def build_mixture(cfg: PretrainConfig, dirs: list[Path], t_ar: int):
    """The training `Mixture` of `WindowDataset`s (ids 0..K-1 in the order of `dirs`)."""
    from dpot.data.mixture import Mixture

    d = cfg.data
    weights = [float(d.weights.get(p.name, 1.0)) for p in dirs]
    return Mixture.from_dirs(
        dirs,
        weights=weights,
        n_channels=d.n_channels,
        split="train",
        t_in=d.t_in,
        t_ar=t_ar,
        stride=d.stride,
        resolution=_resolution(d),
        resample=d.resample,
        n_trajectories=d.n_trajectories,
        normalize=d.normalize,
        mixed_grids=d.resolution == "native",
    )


def _resolution(d: DataConfig) -> Any:
    """The `resolution` argument of the datasets: None keeps their own grid (also in native mode)."""
    if d.resolution is None or d.resolution == "native":
        return None
    return d.resolution[0] if len(d.resolution) == 1 else tuple(d.resolution)


def build_model(cfg: PretrainConfig, mixture) -> torch.nn.Module:
    """A DPOT of `cfg.model.preset` sized for the data (dimension, grid, channels, T_in, one class per
    dataset); `cfg.model.options` override any field."""
    from dpot.models import DPOT

    shapes = [tuple(d.space_shape) for d in mixture.datasets]
    shape = shapes[0]
    fitted = dict(
        ndim=len(shape),
        img_size=list(shape),
        in_channels=mixture.n_channels,
        out_channels=mixture.n_channels,
        in_timesteps=cfg.data.t_in,
        n_cls=len(mixture.datasets),
    )
    if cfg.data.resolution == "native":  # positional embedding on the finest grid, interpolated to the others
        fitted.update(img_size=[max(s) for s in zip(*shapes)], interpolate_pos_embed=True)
    try:
        model = DPOT.from_preset(cfg.model.preset, **{**fitted, **cfg.model.options})
    except DpotError as exc:
        raise DpotError(f"model: {exc}") from None
    p = model.config.patch_size
    odd = [
        f"{d.name} {'x'.join(map(str, d.space_shape))}" for d in mixture.datasets if any(n % p for n in d.space_shape)
    ]
    if cfg.data.resolution == "native" and odd:
        raise DpotError(
            f"data.resolution=native: grids {', '.join(odd)} are not divisible by the model's "
            f"patch_size={p}; resample them (data.resolution=[...]) or pick another patch size"
        )
    return model


def build_eval_sets(cfg: PretrainConfig, mixture) -> list:
    """Held-out `TrajectoryDataset`s (first `train.eval_trajectories` of each dataset's eval split), cut to a
    `train.eval_steps`-frame horizon; datasets without that split are skipped."""
    from dpot.data.windows import TrajectoryDataset

    d, t = cfg.data, cfg.train
    sets = []
    for k, w in enumerate(mixture.datasets):
        if not (w.dataset_dir / f"{t.eval_split}.h5").is_file():
            continue
        n = len(open_split(w.dataset_dir, t.eval_split))
        ds = TrajectoryDataset(
            w.dataset_dir,
            split=t.eval_split,
            t_in=d.t_in,
            n_channels=mixture.n_channels,
            resolution=_resolution(d),
            resample=d.resample,
            dataset_id=k,
            n_trajectories=min(n, t.eval_trajectories),
            normalize=w.normalizer or False,
            stride=d.stride,
        )
        ds.horizon = min(ds.horizon, t.eval_steps)
        sets.append(ds)
    return sets


def data_manifest(mixture) -> list[dict[str, Any]]:
    """What the model was trained on, for the checkpoint: one entry per dataset (class id = position)."""
    out = []
    for k, w in enumerate(mixture.datasets):
        m = w.meta
        out.append(
            {
                "id": k,
                "name": w.name,
                "pde": m.pde,
                "channels": list(m.channels),
                "space": list(m.space),
                "native_shape": list(w.native_shape),
                "shape": list(w.space_shape),
                "dt": m.dt,
                "boundary": list(m.boundary),
                "n_windows": len(w),
                "n_trajectories": w.n_trajectories,
                "weight": float(mixture.weights[k]),
                "path": str(w.dataset_dir),
            }
        )
    return out


def normalization_stats(mixture) -> dict[str, Any] | None:
    """Per-dataset channel mean/std/scale the inputs were standardised with, by dataset name (datasets trained
    on raw values are absent; None: all raw). `dpot.data.normalize.checkpoint_normalizer` reads it back."""
    stats = {w.name: w.normalizer.to_dict() for w in mixture.datasets if w.normalizer is not None}
    return stats or None


def load_pretrain_config(
    path: str | os.PathLike | None = None, overrides: list[str] | tuple = (), resume: str | os.PathLike | None = None
) -> PretrainConfig:
    """A config from a packaged preset name or a YAML file (or a run's saved `config.yaml` when resuming) plus
    dotted overrides."""
    if resume is not None:
        saved = Path(resume) / "config.yaml"
        if not saved.is_file():
            raise DpotError(f"{resume}: not a run directory (no config.yaml); start a run with --config")
        cfg = load_config(PretrainConfig, saved, overrides)
        return replace(cfg, out=str(resume))
    if path is None:
        raise DpotError("give --config NAME|FILE (e.g. --config tiny) or --resume RUN_DIR")
    return load_config(PretrainConfig, find_preset("pretrain", path), overrides)


def run_pretrain(cfg: PretrainConfig, resume: bool = False, stop_at: float | None = None) -> FitResult:
    """Pre-train (or continue) the run described by `cfg`; returns what the trainer did. `stop_at`: an optional
    `time.perf_counter()` deadline (see `Trainer.fit`)."""
    if not cfg.out:
        raise DpotError("no run directory: pass --out RUN_DIR (or out=RUN_DIR)")
    run_dir = Path(cfg.out)
    if not resume and (run_dir / "checkpoint").exists():
        raise DpotError(
            f"{run_dir} already holds a run; continue it with `dpot pretrain --resume {run_dir}` "
            "or choose another --out"
        )
    if cfg.optim.schedule_steps is None:  # fix the schedule length now so that resumed runs keep it
        cfg = replace(cfg, optim=replace(cfg.optim, schedule_steps=cfg.train.max_steps))
    dirs = select_datasets(cfg.data)
    require_finite(dirs, ("train", cfg.train.eval_split))
    out_t = int(cfg.model.options.get("out_timesteps", 1))
    mixture = build_mixture(cfg, dirs, t_ar=cfg.train.t_ar * out_t)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, mixture)
    extra = {"data": data_manifest(mixture), "normalization": normalization_stats(mixture)}
    trainer = Trainer(
        model,
        mixture,
        cfg.train,
        cfg.optim,
        run_dir,
        config=to_dict(cfg),
        eval_sets=build_eval_sets(cfg, mixture),
        extra=extra,
        balanced=cfg.data.balanced,
        num_workers=cfg.data.num_workers,
    )
    return locked_fit(trainer, resume=resume, stop_at=stop_at)


def pretrain(config: PretrainConfig, resume: bool = False) -> Path:
    """Pre-train DPOT as `config` says; returns the run directory (checkpoint in `RUN/checkpoint`)."""
    return run_pretrain(config, resume).run_dir
