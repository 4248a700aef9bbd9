"""DPOT models: config, 1D/2D/3D network, presets, checkpoints, rollout, reference import, transfer."""

from dpot.models.checkpoint import (
    MODEL_TYPES,
    PretrainedModel,
    checkpoint_summary,
    load_model,
    load_model_config,
    model_class,
)
from dpot.models.config import DPOTConfig
from dpot.models.dpot import DPOT, count_parameters
from dpot.models.presets import PRESETS, preset_config
from dpot.models.rollout import rollout

__all__ = [
    "DPOT",
    "DPOTConfig",
    "MODEL_TYPES",
    "PRESETS",
    "PretrainedModel",
    "checkpoint_summary",
    "count_parameters",
    "load_model",
    "load_model_config",
    "model_class",
    "preset_config",
    "rollout",
]
