"""The run configs of `dpot pretrain` (`PretrainConfig`) and `dpot finetune` (`FinetuneConfig`): one typed
dataclass per section, shared sections (`optim`, `train`) defined once.

`dpot.config.load_config(PretrainConfig, find_preset("pretrain", "tiny"), ["train.max_steps=50"])` builds one
(typed, strict, ranges checked); the resolved config is saved as `RUN/config.yaml` and inside every checkpoint.
The model configs (`DPOTConfig`, `FNOConfig`, `FNOSize`) live in `dpot.models.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from dpot.config import check_fields, num
from dpot.errors import DpotError
from dpot.models.config import FNOSize, LoraConfig


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
    t_in: int = num(10, ge=1)
    stride: int = num(1, ge=1)  # time stride between frames of a window
    # [H, W]: resample all to one grid; null: the datasets' own (must then agree); native: each keeps its own
    # grid, batches are drawn one grid at a time (one spatial dimension per mixture)
    resolution: list[int] | Literal["native"] | None = None
    resample: Literal["bilinear", "fft"] = "bilinear"
    n_channels: int | None = num(None, ge=1, null="the widest dataset")  # pad to this many channels
    n_trajectories: int | None = num(None, ge=1, null="all")  # only the first N training trajectories of each
    # per-dataset, per-channel standardisation with train-split stats: auto = only datasets whose channels
    # are not O(1) (RMS outside 1e-3..1e3; the generated corpus stays raw, as the reference), true, false
    normalize: bool | Literal["auto"] = "auto"
    num_workers: int | None = num(None, ge=0, null="2 when training on a GPU, 0 on a CPU")  # loader processes

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (stepped once per optimiser step)."""

    name: Literal["adamw", "adam"] = "adamw"  # adam = the reference's Adam with coupled L2 decay
    lr: float = num(1e-3, gt=0)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.9])
    eps: float = num(1e-8, gt=0)
    weight_decay: float = num(1e-6, ge=0)
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    schedule_steps: int | None = num(None, ge=1, null="train.max_steps of the first run, then fixed")
    warmup: float = num(0.2, ge=0)  # warm-up length: a fraction of schedule_steps if < 1, else a number of steps
    div_factor: float = num(1e4, gt=0)  # onecycle: start lr = lr / div_factor
    final_div_factor: float = num(1e4, gt=0)  # onecycle: final lr = start lr / final_div_factor
    min_lr_ratio: float = num(0.0, ge=0, le=1)  # cosine: final lr = lr * min_lr_ratio
    cycle_beta1: bool = False  # onecycle: cycle beta1 0.95→0.85→0.95 as torch's OneCycleLR
    clip_grad: float | None = num(1.0, gt=0, null="no clipping")  # max gradient norm

    def __post_init__(self) -> None:
        check_fields(self)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise DpotError(f"optim.betas={self.betas}: give two numbers in [0, 1)")


@dataclass
class TrainConfig:
    """The loop: steps, batch, noise, multi-step training, precision, logging, evaluation and checkpoints."""

    max_steps: int = num(1000, ge=1)  # optimiser steps to train to (resume with a larger value to continue)
    batch_size: int = num(8, ge=1)  # samples per rank per micro-batch
    grad_accum: int = num(1, ge=1)  # micro-batches per optimiser step (global batch = batch·grad_accum·ranks)
    t_ar: int = num(1, ge=1)  # auto-regressive steps per sample: predict t_ar frames one after another
    pushforward: bool = False  # t_ar > 1: gradient only through the last step (earlier ones without grad)
    noise: float = num(5e-4, ge=0)  # input noise level ε (reference) or κ (rms); 0 = off
    noise_mode: Literal["reference", "rms"] = "reference"  # x + ε·‖x‖·N(0,1), or x + κ·RMS(x)·N(0,1)
    cls_weight: float = num(0.0, ge=0)  # weight of the dataset-classification loss (the reference: 0)
    seed: int = 0
    device: str = "auto"  # auto = cuda if available, else cpu
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto = bf16 autocast on GPUs, fp32 on CPUs
    compile: bool = False  # torch.compile the model (falls back to eager if compilation fails)
    tf32: bool = False  # fp32 matmuls/convolutions on TF32 tensor cores (GPUs; training and evaluation)
    strategy: Literal["ddp", "fsdp"] = "ddp"  # under torchrun; fsdp shards parameters (large presets)
    log_every: int = num(10, ge=1)
    eval_every: int = num(0, ge=0)  # steps between evaluations on held-out trajectories; 0 = only at the end
    eval_split: Literal["val", "test"] = "test"
    eval_trajectories: int = num(4, ge=1)  # per dataset
    eval_steps: int = num(5, ge=1)  # rollout length of the periodic evaluation
    checkpoint_every: int = num(500, ge=1)
    max_bad_steps: int = num(5, ge=1)  # consecutive NaN/Inf steps tolerated (skipped) before the run stops
    progress: bool = True  # progress bar on the terminal

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class PretrainConfig:
    """Everything `dpot pretrain` needs; saved in full as `RUN/config.yaml`."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = ""  # run directory


# ------------------------------------------------------------------------------------------------ fine-tuning
@dataclass
class FinetuneTrainConfig(TrainConfig):
    """The pre-training loop settings with fine-tuning defaults (no input noise, as the reference)."""

    noise: float = num(0.0, ge=0)  # e.g. train.noise=5e-4 turns it on
    checkpoint_every: int = num(200, ge=1)
    eval_trajectories: int = num(8, ge=1)


@dataclass
class FinetuneDataConfig:
    """The task: one dataset folder (`--data`), its window shape, few-shot subset and preprocessing."""

    path: str = ""  # DIR/<dataset> with train.h5 (and val.h5 / test.h5)
    t_in: int | None = num(None, ge=1, null="the checkpoint's T_in")  # steady-state datasets always use 1
    stride: int = num(1, ge=1)
    resolution: list[int] | None = None  # null = the dataset's native grid
    resample: Literal["bilinear", "fft"] = "bilinear"
    n_trajectories: int | None = num(None, ge=1, null="all")  # few-shot: only the first N training trajectories
    # auto: standardise when the data is not O(1) or the checkpoint was trained on standardised data; null = auto
    normalize: bool | Literal["auto"] | None = "auto"
    num_workers: int | None = num(None, ge=0, null="2 when training on a GPU, 0 on a CPU")  # loader processes

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class AdaptConfig:
    """How the checkpoint is adapted and which parts train (see `dpot.models.transfer`, `training.param_groups`)."""

    channels: Literal["auto", "widen", "reinit"] = "auto"
    time_agg: Literal["interpolate", "reinit"] = "interpolate"  # when T_in differs from the checkpoint's
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes or backbone/embedding/head
    heads_only_steps: int = num(0, ge=0)  # train only the embedding and output heads for N steps, then all
    # layer-wise LR: block i of L gets lr·decay^(L-i), the embeddings lr·decay^(L+1)
    layer_decay: float = num(1.0, gt=0, le=1)
    lr_scale: dict[str, float] = field(default_factory=dict)  # extra LR factor per name prefix or alias
    method: Literal["full", "lora"] = "full"  # lora: low-rank updates only, saved as an adapter (models/lora.py)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class FinetuneConfig:
    """Everything `dpot finetune` needs; saved as `RUN/config.yaml`."""

    # Runs saved before `n_trajectories` moved to `data` (as in pre-training) still load and resume.
    moved_keys: ClassVar[dict[str, str]] = {"train.n_trajectories": "data.n_trajectories"}

    init: str = ""  # checkpoint directory to start from (`--from`)
    model: Literal["pretrained", "scratch", "fno"] = "pretrained"  # scratch = same network, fresh weights
    preset: str = "demo"  # architecture for model=scratch without a checkpoint
    fno: FNOSize = field(default_factory=FNOSize)
    data: FinetuneDataConfig = field(default_factory=FinetuneDataConfig)
    finetune: AdaptConfig = field(default_factory=AdaptConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(warmup=0.1))
    train: FinetuneTrainConfig = field(default_factory=lambda: FinetuneTrainConfig(max_steps=500))
    out: str = ""  # run directory
