"""Evaluation: the paper's L2RE, nRMSE, VRMSE and the masked relative-L2 training loss."""

from dpot.evaluation.evaluate import evaluate_checkpoints, evaluate_model, write_evaluation
from dpot.evaluation.metrics import (
    l2re,
    l2re_per_step,
    masked_channel_mean,
    nrmse,
    relative_l2_loss,
    relative_l2_per_channel,
    vrmse,
)

__all__ = [
    "evaluate_checkpoints",
    "evaluate_model",
    "write_evaluation",
    "l2re",
    "l2re_per_step",
    "masked_channel_mean",
    "nrmse",
    "relative_l2_loss",
    "relative_l2_per_channel",
    "vrmse",
]
