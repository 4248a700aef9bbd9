"""DPOT models: config, 1D/2D/3D network, presets, checkpoints, rollout, reference import, transfer."""

from dpot.models.checkpoint import MODEL_TYPES, checkpoint_summary, load_model
from dpot.models.config import DPOTConfig
from dpot.models.dpot import DPOT, count_parameters
from dpot.models.presets import PRESETS, preset_config
from dpot.models.rollout import rollout

__all__ = [
    "DPOT",
    "DPOTConfig",
    "MODEL_TYPES",
    "PRESETS",
    "checkpoint_summary",
    "count_parameters",
    "load_model",
    "preset_config",
    "rollout",
]
