"""Training: typed configs, the auto-regressive denoising `Trainer`, `pretrain(config)` and `finetune(config)`."""

from dpot.training.config import DataConfig, ModelConfig, OptimConfig, PretrainConfig, TrainConfig
from dpot.training.finetune import FinetuneConfig, finetune, load_finetune_config, run_finetune
from dpot.training.pretrain import load_pretrain_config, pretrain, run_pretrain
from dpot.training.trainer import FitResult, Trainer

__all__ = [
    "DataConfig",
    "FinetuneConfig",
    "FitResult",
    "ModelConfig",
    "OptimConfig",
    "PretrainConfig",
    "TrainConfig",
    "Trainer",
    "finetune",
    "load_finetune_config",
    "load_pretrain_config",
    "pretrain",
    "run_finetune",
    "run_pretrain",
]
