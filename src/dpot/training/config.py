"""The pre-training config: one typed dataclass per section, loaded from YAML with dotted overrides.

`dpot.config.load_config(PretrainConfig, "configs/pretrain/tiny.yaml", ["train.max_steps=50"])` builds one;
the resolved config is saved as `RUN/config.yaml` and inside every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dpot.errors import DpotError


@dataclass
class ModelConfig:
    """Which network: a preset of `DPOT.from_preset` plus DPOTConfig fields to override (`options`).

    Channels, T_in, image size, dimension and class count are filled in from the data."""

    preset: str = "demo"
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {channel_mask: true, modes: 16}


@dataclass
class DataConfig:
    """The dataset mixture: folders under `root`, sampling weights, window shape and resampling."""

    root: str = ""  # folder of canonical datasets (`dpot generate ... --out ROOT`)
    datasets: list[str] = field(default_factory=list)  # names under root; empty = every time-dependent one
    exclude: list[str] = field(default_factory=list)  # names to leave out (e.g. a held-out family)
    weights: dict[str, float] = field(default_factory=dict)  # per dataset name; absent = 1.0
    balanced: bool = True  # p(sample of dataset k) ∝ w_k/|D_k| (the paper); false = uniform over samples
    t_in: int = 10
    stride: int = 1  # time stride between frames of a window
    # [H, W]: resample all to one grid; null: the datasets' own (must then agree); native: each keeps its own
    # grid, batches are drawn one grid at a time (one spatial dimension per mixture)
    resolution: list[int] | Literal["native"] | None = None
    resample: Literal["bilinear", "fft"] = "bilinear"
    n_channels: int | None = None  # pad to this many channels; null = the widest dataset
    n_trajectories: int | None = None  # use only the first N training trajectories of each dataset
    normalize: bool = False  # standardise channels with train-split stats (reference: raw)
    num_workers: int = 0  # DataLoader worker processes


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (stepped once per optimiser step)."""

    name: Literal["adamw", "adam"] = "adamw"  # adam = the reference's Adam with coupled L2 decay
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.9])
    eps: float = 1e-8
    weight_decay: float = 1e-6
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    schedule_steps: int | None = None  # schedule length; null = train.max_steps of the first run (then fixed)
    warmup: float = 0.2  # warm-up length: a fraction of schedule_steps if < 1, else a number of steps
    div_factor: float = 1e4  # onecycle: start lr = lr / div_factor
    final_div_factor: float = 1e4  # onecycle: final lr = start lr / final_div_factor
    min_lr_ratio: float = 0.0  # cosine: final lr = lr * min_lr_ratio
    cycle_beta1: bool = False  # onecycle: cycle beta1 0.95→0.85→0.95 as torch's OneCycleLR
    clip_grad: float | None = 1.0  # max gradient norm; null = no clipping

    def __post_init__(self) -> None:
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise DpotError(f"optim.betas={self.betas}: give two numbers in [0, 1)")
        if self.lr <= 0 or self.warmup < 0:
            raise DpotError(f"optim.lr={self.lr} must be > 0 and optim.warmup={self.warmup} >= 0")


@dataclass
class TrainConfig:
    """The loop: steps, batch, noise, multi-step training, precision, logging, evaluation and checkpoints."""

    max_steps: int = 1000  # optimiser steps to train to (resume with a larger value to continue)
    batch_size: int = 8  # samples per rank per micro-batch
    grad_accum: int = 1  # micro-batches per optimiser step (global batch = batch_size·grad_accum·ranks)
    t_ar: int = 1  # auto-regressive steps per sample: predict t_ar frames one after another
    pushforward: bool = False  # t_ar > 1: gradient only through the last step (earlier ones without grad)
    noise: float = 5e-4  # input noise level ε (reference) or κ (rms); 0 = off
    noise_mode: Literal["reference", "rms"] = "reference"  # x + ε·‖x‖·N(0,1), or x + κ·RMS(x)·N(0,1)
    cls_weight: float = 0.0  # weight of the dataset-classification loss (the reference trains it with 0)
    seed: int = 0
    device: str = "auto"  # auto = cuda if available, else cpu
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto = bf16 autocast on GPUs, fp32 on CPUs
    compile: bool = False  # torch.compile the model (falls back to eager if compilation fails)
    strategy: Literal["ddp", "fsdp"] = "ddp"  # under torchrun; fsdp shards parameters (large presets)
    log_every: int = 10
    eval_every: int = 0  # steps between evaluations on held-out trajectories; 0 = only at the end
    eval_split: Literal["val", "test"] = "test"
    eval_trajectories: int = 4  # per dataset
    eval_steps: int = 5  # rollout length of the periodic evaluation
    checkpoint_every: int = 500
    max_bad_steps: int = 5  # consecutive NaN/Inf steps tolerated (skipped) before the run stops
    progress: bool = True  # progress bar on the terminal

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "t_ar", "log_every", "checkpoint_every",
                     "eval_trajectories", "eval_steps", "max_bad_steps"):
            if getattr(self, name) < 1:
                raise DpotError(f"train.{name}={getattr(self, name)} must be >= 1")
        if self.noise < 0 or self.cls_weight < 0 or self.eval_every < 0:
            raise DpotError("train.noise, train.cls_weight and train.eval_every must be >= 0")


@dataclass
class PretrainConfig:
    """Everything `dpot pretrain` needs; saved in full as `RUN/config.yaml`."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = ""  # run directory
