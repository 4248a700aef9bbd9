"""Fine-tuning: adapt a pre-trained checkpoint to one task, then train it with the pre-training `Trainer`.

Adaptation (`adapt_model`) builds the target network for the task (its dimension, grid, channel count, T_in)
and copies every pre-trained tensor that fits, by these rules (each logged and stored in the checkpoint):
- same shape: copied; a 1x1 kernel that gained a unit axis (2D -> 3D): reshaped;
- `pos_embed` on another latent grid: interpolated (linear/bilinear/trilinear); another dimension: new;
- temporal aggregation for another T_in: the `(T, D, D)` weights resampled linearly along T and rescaled by
  T_old/T_new (T_in = 1 takes their sum), so a slowly varying input keeps its response;
- channels: `auto` pads a narrower dataset up to the checkpoint's channels (the reference's practice) and
  refuses a wider one; `widen` grows the patch embedding and output head, keeping the pre-trained weights of
  the existing channels (new input channels start at zero, new output channels random); `reinit` builds a new
  patch embedding, output head and class head of the dataset's width (the reference's
  `load_components=['blocks','pos','time_agg']`);
- 2D -> 3D: `dpot.models.transfer.inflate_2d_to_3d` (Fourier blocks as the reference; patch embedding
  inflated along z, positional embedding and output head replicated along z; see docs/model.md), then the
  rules above for T_in and channels.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from dpot.config import load_config, to_dict
from dpot.errors import DpotError
from dpot.models.lora import LoraConfig
from dpot.training.config import OptimConfig, TrainConfig
from dpot.training.trainer import FitResult, Trainer


@dataclass
class FinetuneTrainConfig(TrainConfig):
    """The pre-training loop settings plus the few-shot subset; fine-tuning defaults to no input noise."""

    noise: float = 0.0  # the reference fine-tunes without noise; e.g. train.noise=5e-4 turns it on
    n_trajectories: int | None = None  # few-shot: use only the first N training trajectories
    checkpoint_every: int = 200
    eval_trajectories: int = 8


@dataclass
class FinetuneDataConfig:
    """The task: one dataset folder (`--data`), its window shape and preprocessing."""

    path: str = ""  # DIR/<dataset> with train.h5 (and val.h5 / test.h5)
    t_in: int | None = None  # null = the checkpoint's T_in (steady-state datasets always use 1)
    stride: int = 1
    resolution: list[int] | None = None  # null = the dataset's native grid
    resample: Literal["bilinear", "fft"] = "bilinear"
    normalize: bool | None = None  # null = as the checkpoint was trained
    num_workers: int = 0


@dataclass
class FNOSize:
    """Size of the neuraloperator FNO baseline (`model=fno`)."""

    modes: int = 12
    width: int = 32
    n_layers: int = 4


@dataclass
class AdaptConfig:
    """How the checkpoint is adapted and which parts train (see the module docstring)."""

    channels: Literal["auto", "widen", "reinit"] = "auto"
    time_agg: Literal["interpolate", "reinit"] = "interpolate"  # when T_in differs from the checkpoint's
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes or backbone/embedding/head
    heads_only_steps: int = 0  # train only the embedding and output heads for N steps, then everything
    layer_decay: float = 1.0  # layer-wise LR: block i of L gets lr·decay^(L-i), embeddings lr·decay^(L+1)
    lr_scale: dict[str, float] = field(default_factory=dict)  # extra LR factor per name prefix or alias
    method: Literal["full", "lora"] = "full"  # lora: low-rank updates only, saved as an adapter (models/lora.py)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self) -> None:
        if not 0 < self.layer_decay <= 1:
            raise DpotError(f"finetune.layer_decay={self.layer_decay} must be in (0, 1]")
        if self.heads_only_steps < 0:
            raise DpotError(f"finetune.heads_only_steps={self.heads_only_steps} must be >= 0")


@dataclass
class FinetuneConfig:
    """Everything `dpot finetune` needs; saved as `RUN/config.yaml`."""

    init: str = ""  # checkpoint directory to start from (`--from`)
    model: Literal["pretrained", "scratch", "fno"] = "pretrained"  # scratch = same network, fresh weights
    preset: str = "demo"  # architecture for model=scratch without a checkpoint
    fno: FNOSize = field(default_factory=FNOSize)
    data: FinetuneDataConfig = field(default_factory=FinetuneDataConfig)
    finetune: AdaptConfig = field(default_factory=AdaptConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(warmup=0.1))
    train: FinetuneTrainConfig = field(default_factory=lambda: FinetuneTrainConfig(max_steps=500))
    out: str = ""  # run directory


# Parameter-name aliases (prefixes) understood by `finetune.freeze` and `finetune.lr_scale`, per model type.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "dpot": {
        "backbone": ("blocks.",),
        "embedding": ("patch_embed.", "pos_embed", "time_agg_layer."),
        "head": ("out_layer.", "cls_head."),
    },
    "fno": {"backbone": ("fno.fno_blocks.",), "embedding": ("fno.lifting.",), "head": ("fno.projection.",)},
}
HEADS = ("embedding", "head")  # what `heads_only_steps` trains first


def _prefixes(model: nn.Module, names: list[str] | tuple[str, ...]) -> list[str]:
    aliases = ALIASES.get(getattr(model, "model_type", ""), {})
    params = [n for n, _ in model.named_parameters()]
    out = []
    for name in names:
        pre = aliases.get(name, (name,))
        if not any(p.startswith(q) for p in params for q in pre):
            raise DpotError(
                f"finetune: {name!r} matches no parameter; use backbone, embedding, head or a "
                f"name prefix such as {params[0].rsplit('.', 1)[0]!r}"
            )
        out.extend(pre)
    return out


def _matches(name: str, prefixes: list[str]) -> bool:
    return any(name.startswith(p) for p in prefixes)


# ------------------------------------------------------------------------------------------------ adaptation
@dataclass
class TaskShape:
    """What the task needs from a network: dimension, grid, channels, T_in and whether it is steady-state."""

    name: str
    ndim: int
    grid: tuple[int, ...]
    channels: int  # the dataset's own (max of inputs/targets for steady-state data)
    t_in: int
    steady: bool


def _resample_time(w: torch.Tensor, t_new: int) -> torch.Tensor:
    """Temporal-aggregation weights `(T, D, D)` -> `(t_new, D, D)` (linear in T, rescaled by T/t_new)."""
    t_old = w.shape[0]
    if t_new == 1:
        return w.sum(0, keepdim=True)
    flat = w.reshape(t_old, -1).t().unsqueeze(0)  # (1, D*D, T)
    out = F.interpolate(flat, size=t_new, mode="linear", align_corners=True)[0].t()
    return out.reshape(t_new, *w.shape[1:]) * (t_old / t_new)


def _overlap(dst: torch.Tensor, src: torch.Tensor) -> None:
    """Copy the overlapping corner of `src` into `dst` (in place)."""
    sl = tuple(slice(0, min(a, b)) for a, b in zip(dst.shape, src.shape))
    dst[sl] = src[sl]


def _widen_dpot(name: str, dst: torch.Tensor, src: torch.Tensor, src_cfg, dst_cfg) -> bool:
    """Channel widening of DPOT's patch embedding and output head; True if `name` was handled."""
    if name == "patch_embed.proj.0.weight":  # (E1, C + nd + 1, *P): data channels, then coordinates
        c_old, c_new, e = src_cfg.in_channels, dst_cfg.in_channels, min(dst.shape[0], src.shape[0])
        dst[:e].zero_()
        dst[:e, c_new:] = src[:e, c_old:]
        dst[:e, : min(c_old, c_new)] = src[:e, : min(c_old, c_new)]
        return True
    if name == "patch_embed.proj.2.weight":  # (D, E1, 1...): new hidden units start silent
        dst.zero_()
        _overlap(dst, src)
        return True
    if name in ("patch_embed.proj.0.bias", "patch_embed.mask_proj"):
        _overlap(dst, src)
        return True
    if name in ("out_layer.4.weight", "out_layer.4.bias"):  # rows ordered (T_out, C_out)
        t = dst_cfg.out_timesteps
        d = dst.view(t, dst_cfg.out_channels, *dst.shape[1:])
        s = src.view(src_cfg.out_timesteps, src_cfg.out_channels, *src.shape[1:])
        _overlap(d, s)
        return True
    return False


def transfer_weights(
    src: nn.Module, dst: nn.Module, channels: str = "auto", time_agg: str = "interpolate"
) -> list[str]:
    """Copy what fits from `src` into `dst` by the module docstring's rules; returns one line per decision."""
    s_state, d_state = src.state_dict(), dst.state_dict()
    s_cfg, d_cfg = src.config, dst.config
    fresh_parts = ("patch_embed.", "out_layer.", "cls_head.") if channels == "reinit" else ()
    log: list[str] = []
    copied: list[str] = []
    new: list[str] = []
    with torch.no_grad():
        for name, d in d_state.items():
            s = s_state.get(name)
            if s is None or (fresh_parts and _matches(name, list(fresh_parts))):
                new.append(name)
            elif s.shape == d.shape:
                d.copy_(s)
                copied.append(name)
            elif name == "pos_embed" and s.dim() == d.dim():
                mode = ("linear", "bilinear", "trilinear")[d.dim() - 3]
                d.copy_(F.interpolate(s, size=tuple(d.shape[2:]), mode=mode, align_corners=False))
                log.append(f"pos_embed: interpolated {list(s.shape[2:])} -> {list(d.shape[2:])}")
            elif name == "time_agg_layer.w" and s.shape[1:] == d.shape[1:]:
                if time_agg == "interpolate":
                    d.copy_(_resample_time(s, d.shape[0]))
                    log.append(f"time aggregation: resampled T_in {s.shape[0]} -> {d.shape[0]}")
                else:
                    new.append(name)
            elif d.numel() == s.numel() and d.shape[: s.dim()] == s.shape and all(k == 1 for k in d.shape[s.dim() :]):
                d.copy_(s.reshape(d.shape))
                copied.append(name)
            elif (
                channels == "widen"
                and getattr(dst, "model_type", "") == "dpot"
                and _widen_dpot(name, d, s, s_cfg, d_cfg)
            ):
                log.append(f"{name}: widened {list(s.shape)} -> {list(d.shape)}")
            else:
                new.append(name)
    dst.load_state_dict(d_state)
    n_copied = sum(d_state[n].numel() for n in copied)
    total = sum(v.numel() for v in d_state.values())
    groups = sorted({re.sub(r"\.\d+.*$|\.(weight|bias|w|gamma)$", "", n) for n in new})
    log.insert(0, f"transferred {len(copied)} tensors as is ({n_copied:,} of {total:,} values)")
    if new:
        log.append(f"new (random init): {', '.join(groups)}")
    return log


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
    return TaskShape(meta.name, meta.ndim, grid, chans, t_in, meta.steady)


def adapt_model(src: nn.Module | None, task: TaskShape, cfg: FinetuneConfig) -> tuple[nn.Module, list[str]]:
    """Build the network for `task` from checkpoint model `src` (or fresh) per `cfg.model`; return it and
    the transfer log."""
    from dpot.models import DPOT
    from dpot.models.fno_baseline import FNOBaseline, FNOConfig

    mode = cfg.finetune.channels
    if cfg.model == "fno":
        c = src.config.in_channels if src is not None and task.channels <= src.config.in_channels else task.channels
        fcfg = FNOConfig(
            ndim=task.ndim,
            in_channels=c,
            out_channels=c,
            in_timesteps=task.t_in,
            out_timesteps=1,
            modes=cfg.fno.modes,
            width=cfg.fno.width,
            n_layers=cfg.fno.n_layers,
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
    except ValueError as exc:
        raise DpotError(
            f"cannot adapt the checkpoint to dataset {task.name!r}: {exc} (data.resolution=[...] resamples the data)"
        ) from None
    model = DPOT(dcfg)
    if cfg.model == "scratch":
        return model, ["DPOT of the checkpoint's architecture, random init (from scratch)"]
    if scfg.ndim == 2 and task.ndim == 3:  # the model helper's inflation, then the rules above for T_in
        from dpot.models.transfer import inflate_2d_to_3d

        src = inflate_2d_to_3d(src, img_size=list(task.grid), in_channels=chans, out_channels=chans)
    log = transfer_weights(src, model, mode, cfg.finetune.time_agg)
    if task.ndim != scfg.ndim:
        how = "inflate_2d_to_3d" if (scfg.ndim, task.ndim) == (2, 3) else "blocks only"
        log.insert(0, f"{scfg.ndim}D -> {task.ndim}D transfer ({how})")
    if chans != scfg.in_channels:
        log.insert(0, f"channels {scfg.in_channels} -> {chans} ({mode})")
    return model, log


# ------------------------------------------------------------------------------------------ parameter groups
def param_groups(model: nn.Module, cfg: AdaptConfig, lr: float) -> list[dict[str, Any]]:
    """Optimiser groups: frozen parameters left out; layer-wise decay and `lr_scale` factors applied."""
    frozen = _prefixes(model, cfg.freeze) if cfg.freeze else []
    scales = [(_prefixes(model, [k]), float(v)) for k, v in cfg.lr_scale.items()]
    depth = len(getattr(model, "blocks", [])) if getattr(model, "model_type", "") == "dpot" else 0
    groups: dict[float, list[str]] = {}
    for name, p in model.named_parameters():
        if _matches(name, frozen):
            p.requires_grad_(False)
            continue
        factor = 1.0
        if cfg.layer_decay != 1.0 and depth:
            m = re.match(r"blocks\.(\d+)\.", name)
            if m:
                factor = cfg.layer_decay ** (depth - int(m.group(1)))
            elif _matches(name, list(ALIASES["dpot"]["embedding"])):
                factor = cfg.layer_decay ** (depth + 1)
        for pre, s in scales:
            if _matches(name, pre):
                factor *= s
        groups.setdefault(factor, []).append(name)
    if not groups:
        raise DpotError("finetune.freeze leaves no parameter to train")
    return [{"params": names, "lr": lr * f} for f, names in sorted(groups.items())]


class HeadsFirst:
    """Keep everything except the embedding and output heads fixed for the first N optimiser steps.

    Gradients of the other parameters are dropped right after they are accumulated, so AdamW leaves them (and
    their moments) untouched until step N; from then on all trainable parameters update."""

    def __init__(self, model: nn.Module, trainer: Trainer, steps: int):
        heads = _prefixes(model, list(HEADS))
        self.trainer, self.steps = trainer, steps
        for name, p in model.named_parameters():
            if p.requires_grad and not _matches(name, heads):
                p.register_post_accumulate_grad_hook(self._hook)

    def _hook(self, p: torch.Tensor) -> None:
        if self.trainer.step < self.steps:
            p.grad = None


# -------------------------------------------------------------------------------------------------- running
def load_finetune_config(
    path: str | os.PathLike | None = None,
    overrides: list[str] | tuple = (),
    resume: str | os.PathLike | None = None,
    base: dict[str, Any] | None = None,
) -> FinetuneConfig:
    """A config from defaults (or `base`), an optional YAML file and dotted overrides; `resume` reads the
    run's saved `config.yaml` instead."""
    if resume is not None:
        saved = Path(resume) / "config.yaml"
        if not saved.is_file():
            raise DpotError(f"{resume}: not a fine-tuning run directory (no config.yaml)")
        return replace(load_config(FinetuneConfig, saved, overrides), out=str(resume))
    return load_config(FinetuneConfig, path, overrides, base=base)


def run_finetune(cfg: FinetuneConfig, resume: bool = False, stop_at: float | None = None) -> FitResult:
    """Adapt `cfg.init` to the dataset `cfg.data.path` and train into `cfg.out` (or continue that run).

    `stop_at` (a `time.perf_counter()` value): a hard time limit; the run then stops after the current step
    with a checkpoint, exactly as on SIGTERM (`FitResult.interrupted == "time budget"`)."""
    from dpot.data.format import dataset_dirs, open_split
    from dpot.data.mixture import Mixture
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
        model, log = adapt_model(src, task, cfg)
    if cfg.finetune.method == "lora" and not resume:  # only the adapter trains and is saved
        from dpot.models.lora import attach

        model = attach(model, src if cfg.model == "pretrained" else None, cfg.init, cfg.finetune.lora)
        log.append(f"LoRA rank {cfg.finetune.lora.rank} on {len(model.lora_record['targets'])} weights")
    mcfg = model.config
    normalize = cfg.data.normalize
    if normalize is None:
        normalize = bool(src_meta.get("normalization"))
    res = (
        None
        if cfg.data.resolution is None
        else (cfg.data.resolution[0] if len(cfg.data.resolution) == 1 else tuple(cfg.data.resolution))
    )
    kw = dict(n_channels=mcfg.in_channels, resolution=res, resample=cfg.data.resample, normalize=normalize)
    window = WindowDataset(
        ddir,
        "train",
        t_in=task.t_in,
        t_ar=cfg.train.t_ar * mcfg.out_timesteps,
        stride=cfg.data.stride,
        n_trajectories=cfg.train.n_trajectories,
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
        "normalization": normalization_stats(mixture, normalize),
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
        trainer._say(f"fine-tuning {cfg.model} on {ddir.name}: " + "; ".join(log))
    n_train = sum(p.numel() for g in groups for p in (dict(model.named_parameters())[n] for n in g["params"]))
    trainer._say(
        f"{n_train:,} of {sum(p.numel() for p in model.parameters()):,} parameters train; "
        f"{window.n_trajectories} trajectories, {len(window)} windows"
    )
    return trainer.fit(resume=resume, stop_at=stop_at)


def finetune(config: FinetuneConfig, resume: bool = False) -> Path:
    """Fine-tune as `config` says; returns the run directory (checkpoint in `RUN/checkpoint`)."""
    return run_finetune(config, resume).run_dir
