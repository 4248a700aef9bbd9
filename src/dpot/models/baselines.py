"""Trivial reference models that every learned model should beat; they have no weights and no checkpoint."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LastFrame(nn.Module):
    """The persistence baseline: every predicted frame repeats the last input frame.

    `config` needs only `out_timesteps` (a DPOT or FNO config serves), so it rolls out like the model it is
    compared with."""

    model_type = "persistence"

    def __init__(self, config: Any):
        super().__init__()
        self.config = config

    def forward(self, x: torch.Tensor, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        return x[..., -1:, :].expand(*x.shape[:-2], self.config.out_timesteps, x.shape[-1])
