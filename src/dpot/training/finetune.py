"""Fine-tuning: adapt a checkpoint (or a fresh network) to one task, then train it with the pre-training `Trainer`.

`adapt_model` builds the target network for the task (its dimension, grid, channel count, T_in) and fills it by
`dpot.models.transfer` (what fits is copied, `pos_embed` interpolated, temporal weights resampled, channels
padded, widened or re-initialised, 2D -> 3D inflated); `training.param_groups` decides what trains at which rate.
`auto` channels (`resolve_channels`) pads when the task's fields are a pre-training dataset's, else re-initialises
the embedding and head (kept, a head trained on other fields made a rollout diverge: docs/downstream.md).
Every decision is logged and stored in the checkpoint. The config is `dpot.training.config.FinetuneConfig`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpot.config import find_preset, load_config, to_dict
from dpot.errors import DpotError
from dpot.training.config import FinetuneConfig, FinetuneDataConfig
from dpot.training.param_groups import HeadsFirst, param_groups
from dpot.training.trainer import FitResult, Trainer


@dataclass
class TaskShape:
    """What the task needs from a network: dimension, grid, channels, T_in and whether it is steady-state."""

    name: str
    ndim: int
    grid: tuple[int, ...]
    channels: int  # the dataset's own (max of inputs/targets for steady-state data)
    t_in: int
    steady: bool
    pde: str = ""
    fields: tuple[str, ...] = ()  # the dataset's channel names


def task_shape(dataset_dir: Path, data: FinetuneDataConfig, default_t_in: int) -> TaskShape:
    """Read the task's dimension, grid, channels and T_in from the dataset's train split."""
    from dpot.data.format import open_split
    from dpot.data.resample import target_shape

    split = open_split(dataset_dir, "train")
    meta = split.meta
    res = (
        None
        if data.resolution is None
        else (data.resolution[0] if len(data.resolution) == 1 else tuple(data.resolution))
    )
    grid = tuple(target_shape(res, tuple(split.space_shape)))
    chans = max(split.n_channels, split.targets_shape[-1]) if meta.steady else split.n_channels
    t_in = 1 if meta.steady else int(data.t_in or default_t_in)
    return TaskShape(meta.name, meta.ndim, grid, chans, t_in, meta.steady, meta.pde, tuple(meta.channels))


def resolve_channels(mode: str, task: TaskShape, trained: list[dict[str, Any]] | None) -> tuple[str, str]:
    """`finetune.channels=auto` -> `auto` (pad, copy every tensor that fits) when the task's fields (pde and
    channel names) are those of one of the checkpoint's pre-training datasets `trained` (its config.json `data`)
    or it records none, else `reinit`: its embedding and head learnt other fields. Returns the mode and a log line."""
    if mode != "auto":
        return mode, f"channels: {mode} (as set)"
    what = f"{task.pde} [{', '.join(task.fields)}]"
    if not trained:
        return "auto", f"channels auto: padded as is (the checkpoint records no pre-training data to check {what})"
    for d in trained:
        if d.get("pde", task.pde) == task.pde and tuple(d.get("channels") or ()) == task.fields:  # older: no pde
            return "auto", f"channels auto: padded as is ({what} are the fields of pre-training dataset {d['name']})"
    seen = "; ".join(sorted({f"{d.get('pde')} [{', '.join(d.get('channels') or ())}]" for d in trained}))
    return "reinit", (
        f"channels auto -> reinit: {what} of {task.name!r} are none of the checkpoint's pre-training fields "
        f"({seen}), so the patch embedding and output head start new (finetune.channels=widen keeps them)"
    )


def adapt_model(
    src: nn.Module | None, task: TaskShape, cfg: FinetuneConfig, trained: list[dict[str, Any]] | None = None
) -> tuple[nn.Module, list[str]]:
    """Build the network for `task` from checkpoint model `src` (or fresh) per `cfg.model`; return it and
    the transfer log. `trained`: the checkpoint's pre-training datasets (config.json `data`), for `auto`."""
    from dpot.models import DPOT
    from dpot.models.config import FNOConfig
    from dpot.models.fno_baseline import FNOBaseline
    from dpot.models.transfer import inflate_2d_to_3d, transfer_weights

    mode = cfg.finetune.channels
    if cfg.model == "fno":
        c = src.config.in_channels if src is not None and task.channels <= src.config.in_channels else task.channels
        fcfg = FNOConfig(
            ndim=task.ndim, in_channels=c, out_channels=c, in_timesteps=task.t_in, out_timesteps=1, **to_dict(cfg.fno)
        )
        return FNOBaseline(fcfg), ["FNO baseline (neuraloperator), random init"]
    if src is None:
        if cfg.model == "pretrained":
            raise DpotError("no checkpoint to fine-tune: pass --from CKPT (or model=scratch / model=fno)")
        model = DPOT.from_preset(
            cfg.preset,
            ndim=task.ndim,
            img_size=list(task.grid),
            in_channels=task.channels,
            out_channels=task.channels,
            in_timesteps=task.t_in,
        )
        return model, [f"DPOT preset {cfg.preset!r}, random init"]
    scfg = src.config
    if getattr(src, "model_type", "") == "fno":
        if task.channels > scfg.in_channels or task.t_in != scfg.in_timesteps or task.ndim != scfg.ndim:
            raise DpotError(
                f"the FNO checkpoint takes {scfg.in_channels} channels x T_in={scfg.in_timesteps} "
                f"in {scfg.ndim}D; the task needs {task.channels} x T_in={task.t_in} in {task.ndim}D "
                "(an FNO checkpoint is not adapted: train model=fno from scratch instead)"
            )
        model = FNOBaseline(scfg)
        if cfg.model == "pretrained":
            model.load_state_dict(src.state_dict())
            return model, ["FNO checkpoint loaded as is"]
        return model, ["FNO of the checkpoint's size, random init"]
    if task.channels > scfg.in_channels and mode == "auto":
        raise DpotError(
            f"dataset {task.name!r} has {task.channels} channels but the checkpoint takes {scfg.in_channels}; "
            "set finetune.channels=reinit (new embedding and head: for fields other than the checkpoint's) or "
            "finetune.channels=widen (its first channels are the checkpoint's fields, plus new ones)"
        )
    mode, channel_note = resolve_channels(mode, task, trained) if cfg.model == "pretrained" else (mode, "")
    if mode == "reinit":
        chans = task.channels
    else:
        chans = max(task.channels, scfg.in_channels)
    try:
        dcfg = scfg.replace(
            ndim=task.ndim,
            img_size=list(task.grid),
            in_channels=chans,
            out_channels=chans,
            in_timesteps=task.t_in,
        )
    except DpotError as exc:
        raise DpotError(
            f"cannot adapt the checkpoint to dataset {task.name!r}: {exc} (data.resolution=[...] resamples the data)"
        ) from None
    model = DPOT(dcfg)
    if cfg.model == "scratch":
        return model, ["DPOT of the checkpoint's architecture, random init (from scratch)"]
    if scfg.ndim == 2 and task.ndim == 3:  # inflate first; transfer_weights then adapts T_in and channels
        src = inflate_2d_to_3d(src, img_size=list(task.grid), in_channels=chans, out_channels=chans)
    log = transfer_weights(src, model, mode, cfg.finetune.time_agg)
    if task.ndim != scfg.ndim:
        how = "inflate_2d_to_3d" if (scfg.ndim, task.ndim) == (2, 3) else "blocks only"
        log.insert(0, f"{scfg.ndim}D -> {task.ndim}D transfer ({how})")
    if chans != scfg.in_channels:
        log.insert(0, f"channels {scfg.in_channels} -> {chans} ({mode})")
    log.insert(0, channel_note)
    return model, log


# -------------------------------------------------------------------------------------------------- running
def load_finetune_config(
    path: str | os.PathLike | None = None,
    overrides: list[str] | tuple = (),
    resume: str | os.PathLike | None = None,
    base: dict[str, Any] | None = None,
) -> FinetuneConfig:
    """A config from defaults (or `base`), an optional packaged preset name or YAML file and dotted overrides;
    `resume` reads the run's saved `config.yaml` instead."""
    if resume is not None:
        saved = Path(resume) / "config.yaml"
        if not saved.is_file():
            raise DpotError(f"{resume}: not a fine-tuning run directory (no config.yaml)")
        return replace(load_config(FinetuneConfig, saved, overrides), out=str(resume))
    return load_config(FinetuneConfig, None if path is None else find_preset("finetune", path), overrides, base=base)


def run_finetune(cfg: FinetuneConfig, resume: bool = False, stop_at: float | None = None) -> FitResult:
    """Adapt `cfg.init` to the dataset `cfg.data.path` and train into `cfg.out` (or continue that run).

    `stop_at` (a `time.perf_counter()` value): a hard time limit; the run then stops after the current step
    with a checkpoint, exactly as on SIGTERM (`FitResult.interrupted == "time budget"`)."""
    from dpot.data.format import dataset_dirs, open_split
    from dpot.data.mixture import Mixture
    from dpot.data.normalize import checkpoint_normalizer, dataset_normalizer, trained_standardised
    from dpot.data.stats import require_finite
    from dpot.data.windows import TrajectoryDataset, WindowDataset
    from dpot.models import load_model
    from dpot.models.checkpoint import read_checkpoint_config
    from dpot.training.pretrain import data_manifest, normalization_stats

    if not cfg.out:
        raise DpotError("no run directory: pass --out FT_DIR")
    if not cfg.data.path:
        raise DpotError("no dataset: pass --data DIR/<dataset>")
    run_dir = Path(cfg.out)
    if not resume and (run_dir / "checkpoint").exists():
        raise DpotError(
            f"{run_dir} already holds a run; continue it with `dpot finetune --resume {run_dir}` "
            "or choose another --out"
        )
    dirs = dataset_dirs(cfg.data.path)
    if len(dirs) != 1:
        raise DpotError(f"--data {cfg.data.path} holds {len(dirs)} datasets; fine-tune on one: --data {dirs[0]}")
    ddir = dirs[0]
    require_finite([ddir], ("train", cfg.train.eval_split))
    if resume:  # the adapted architecture; the Trainer loads its weights and state
        model = load_model(run_dir / "checkpoint")
        src_meta = read_checkpoint_config(run_dir / "checkpoint")
        task = task_shape(ddir, cfg.data, model.config.in_timesteps)
        log = ["resumed"]
    else:
        src, src_meta = None, {}
        if cfg.init:
            src_meta = read_checkpoint_config(cfg.init)
            src = load_model(cfg.init)
        elif cfg.model == "pretrained":
            raise DpotError("no checkpoint to fine-tune: pass --from CKPT (or model=scratch / model=fno)")
        task = task_shape(ddir, cfg.data, src.config.in_timesteps if src is not None else 10)
        torch.manual_seed(cfg.train.seed)
        model, log = adapt_model(src, task, cfg, src_meta.get("data"))
    if cfg.finetune.method == "lora" and not resume:  # only the adapter trains and is saved
        from dpot.models.lora import attach

        model = attach(model, src if cfg.model == "pretrained" else None, cfg.init, cfg.finetune.lora)
        log.append(f"LoRA rank {cfg.finetune.lora.rank} on {len(model.lora_record['targets'])} weights")
    mcfg = model.config
    if resume:  # exactly the statistics the run started with
        norm = checkpoint_normalizer(src_meta, ddir)
    else:
        setting = cfg.data.normalize
        if setting in ("auto", None) and trained_standardised(src_meta):
            setting = True
        norm = dataset_normalizer(ddir, setting)
    res = (
        None
        if cfg.data.resolution is None
        else (cfg.data.resolution[0] if len(cfg.data.resolution) == 1 else tuple(cfg.data.resolution))
    )
    kw = dict(n_channels=mcfg.in_channels, resolution=res, resample=cfg.data.resample, normalize=norm or False)
    window = WindowDataset(
        ddir,
        "train",
        t_in=task.t_in,
        t_ar=cfg.train.t_ar * mcfg.out_timesteps,
        stride=cfg.data.stride,
        n_trajectories=cfg.data.n_trajectories,
        **kw,
    )
    mixture = Mixture([window])
    evals = []
    for split in (cfg.train.eval_split, "val", "test"):
        if (ddir / f"{split}.h5").is_file():
            n = len(open_split(ddir, split))
            ev = TrajectoryDataset(
                ddir,
                split,
                t_in=task.t_in,
                n_trajectories=min(n, cfg.train.eval_trajectories),
                stride=cfg.data.stride,
                **kw,
            )
            ev.horizon = min(ev.horizon, cfg.train.eval_steps)
            evals.append(ev)
            break
    if cfg.optim.schedule_steps is None:
        cfg = replace(cfg, optim=replace(cfg.optim, schedule_steps=cfg.train.max_steps))
    groups = param_groups(model, cfg.finetune, cfg.optim.lr)
    extra = {
        "data": data_manifest(mixture),
        "normalization": normalization_stats(mixture),
        "finetune": {"from": cfg.init, "model": cfg.model, "adaptation": log},
    }
    trainer = Trainer(
        model,
        mixture,
        cfg.train,
        cfg.optim,
        run_dir,
        config=to_dict(cfg),
        param_groups=groups,
        eval_sets=evals,
        extra=extra,
        num_workers=cfg.data.num_workers,
    )
    if cfg.finetune.heads_only_steps:
        HeadsFirst(model, trainer, cfg.finetune.heads_only_steps)
    if not resume:
        trainer.say(f"fine-tuning {cfg.model} on {ddir.name}: " + "; ".join(log))
    n_train = sum(p.numel() for g in groups for p in (dict(model.named_parameters())[n] for n in g["params"]))
    trainer.say(
        f"{n_train:,} of {sum(p.numel() for p in model.parameters()):,} parameters train; "
        f"{window.n_trajectories} trajectories, {len(window)} windows"
    )
    from dpot.training.runlock import locked_fit

    return locked_fit(trainer, resume=resume, stop_at=stop_at)


def finetune(config: FinetuneConfig, resume: bool = False) -> Path:
    """Fine-tune as `config` says; returns the run directory (checkpoint in `RUN/checkpoint`)."""
    return run_finetune(config, resume).run_dir
