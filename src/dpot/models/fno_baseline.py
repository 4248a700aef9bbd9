"""The FNO baseline: a thin adapter around neuraloperator's `neuralop.models.FNO` with DPOT's interface.

Time is folded into channels, `(B, *space, T_in, C_in) -> (B, T_in*C_in, *space) -> FNO ->
(B, *space, T_out, C_out)`, so the same data pipeline, trainer, rollout and evaluator serve both models.
Checkpoints use the DPOT layout
(`config.json` with `model_type: "fno"` + `model.safetensors`) and load through `dpot.models.load_model`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpot.errors import DpotError
from dpot.io import atomic_path, write_json
from dpot.models.config import config_from_dict, require_positive


@dataclass
class FNOConfig:
    """Size of the FNO baseline; `modes` is per axis and is clipped to what the grid can hold at run time."""

    ndim: int = 2
    in_channels: int = 4
    out_channels: int = 4
    in_timesteps: int = 10
    out_timesteps: int = 1
    modes: int = 12
    width: int = 32
    n_layers: int = 4
    lifting_ratio: float = 2.0
    projection_ratio: float = 2.0

    def __post_init__(self) -> None:
        if self.ndim not in (1, 2, 3):
            raise ValueError(f"FNOConfig.ndim must be 1, 2 or 3, got {self.ndim}")
        require_positive(self, ("in_channels", "out_channels", "in_timesteps", "out_timesteps", "modes", "width",
                                "n_layers"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FNOConfig:
        return config_from_dict(cls, d, "FNO")


class FNOBaseline(nn.Module):
    """neuraloperator FNO behind DPOT's call: `model(x, channel_mask=None)` on `(B, *space, T_in, C)`."""

    model_type = "fno"

    def __init__(self, config: FNOConfig):
        super().__init__()
        from neuralop.models import FNO

        self.config = config
        c = config
        self.fno = FNO(
            n_modes=(c.modes,) * c.ndim,
            in_channels=c.in_timesteps * c.in_channels,
            out_channels=c.out_timesteps * c.out_channels,
            hidden_channels=c.width,
            n_layers=c.n_layers,
            lifting_channel_ratio=c.lifting_ratio,
            projection_channel_ratio=c.projection_ratio,
        )

    def forward(self, x: torch.Tensor, channel_mask: torch.Tensor | None = None, return_logits: bool = False):
        """Predict `(B, *space, T_out, C_out)`; padded channels (mask 0) are zeroed on input. No class head:
        `return_logits=True` gives `(pred, None)`."""
        c = self.config
        expect = f"(B, {', '.join(['X'] * c.ndim)}, T_in={c.in_timesteps}, C={c.in_channels})"
        if x.dim() != c.ndim + 3 or x.shape[-2] != c.in_timesteps or x.shape[-1] != c.in_channels:
            raise ValueError(f"FNO input must have shape {expect}, got {tuple(x.shape)}")
        if channel_mask is not None:
            x = x * channel_mask.to(x.dtype).view(x.shape[0], *([1] * (c.ndim + 1)), c.in_channels)
        b, space = x.shape[0], x.shape[1 : 1 + c.ndim]
        h = x.reshape(b, *space, -1).movedim(-1, 1)
        y = self.fno(h).movedim(1, -1).reshape(b, *space, c.out_timesteps, c.out_channels)
        return (y, None) if return_logits else y

    def state_dict(self, *args, **kwargs):
        """Tensors only: drops the `_metadata` dict neuraloperator adds (safetensors and strict loads need that)."""
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state

    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write `config.json` and `model.safetensors` (each atomically) into `directory`."""
        from safetensors.torch import save_file

        from dpot import __version__

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(tensors, str(tmp))
        write_json(
            directory / "config.json",
            {
                "model_type": self.model_type,
                "model": self.config.to_dict(),
                "dpot_version": __version__,
                **(extra or {}),
            },
        )
        return directory

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu"
    ) -> FNOBaseline:
        """Load a checkpoint written by `save_pretrained`."""
        from dpot.io import read_safetensors, read_text_file

        directory = Path(directory)
        cfg_path = directory / "config.json"
        if not cfg_path.is_file():
            raise DpotError(f"{directory}: not a checkpoint directory (config.json missing)")
        meta = json.loads(read_text_file(cfg_path))
        if meta.get("model_type") != cls.model_type:
            raise DpotError(f"{directory}: model_type is {meta.get('model_type')!r}, not 'fno'")
        model = cls(FNOConfig.from_dict(meta["model"]))
        weights = directory / "model.safetensors"
        if not weights.is_file():
            raise DpotError(f"{directory}: model.safetensors missing")
        model.load_state_dict(read_safetensors(weights, map_location))
        return model
