"""The FNO baseline: a thin adapter around neuraloperator's `neuralop.models.FNO` with DPOT's interface.

Time is folded into channels, `(B, *space, T_in, C_in) -> (B, T_in*C_in, *space) -> FNO ->
(B, *space, T_out, C_out)`, so the same data pipeline, trainer, rollout and evaluator serve both models.
Checkpoints are the DPOT format (`config.json` with `model_type: "fno"` + `model.safetensors`), written and
read by `PretrainedModel` and loaded by `dpot.models.load_model`. neuraloperator is an optional extra
(`dpot[baselines]`), imported only when an FNO is built.
"""

from __future__ import annotations

import torch

from dpot.errors import DpotError
from dpot.models.checkpoint import PretrainedModel
from dpot.models.config import FNOConfig


class FNOBaseline(PretrainedModel):
    """neuraloperator FNO behind DPOT's call: `model(x, channel_mask=None)` on `(B, *space, T_in, C)`."""

    model_type = "fno"
    config_class = FNOConfig

    def __init__(self, config: FNOConfig):
        super().__init__()
        try:
            from neuralop.models import FNO
        except ImportError:
            raise DpotError(
                "the FNO baseline needs neuraloperator, an optional extra: pip install 'dpot[baselines]'"
            ) from None

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
