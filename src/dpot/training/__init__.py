"""Training: typed configs, the auto-regressive denoising `Trainer`, and `pretrain(config)`."""

from dpot.training.config import DataConfig, ModelConfig, OptimConfig, PretrainConfig, TrainConfig
from dpot.training.pretrain import load_pretrain_config, pretrain, run_pretrain
from dpot.training.trainer import FitResult, Trainer

__all__ = ["DataConfig", "FitResult", "ModelConfig", "OptimConfig", "PretrainConfig", "TrainConfig",
           "Trainer", "load_pretrain_config", "pretrain", "run_pretrain"]
