"""Auto-regressive inference: slide a T_in-frame window, appending each prediction (optionally in bundles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from dpot.data.normalize import Normalizer


def rollout(
    model: nn.Module,
    history: torch.Tensor,
    steps: int,
    channel_mask: torch.Tensor | None = None,
    bundle: int | None = None,
    normalizer: Normalizer | None = None,
) -> torch.Tensor:
    """Predict `steps` new frames from `history` `(B, *space, T_in, C)` -> `(B, *space, steps, C)`.

    Each model call predicts `T_out` frames; the first `bundle` of them (default all: temporal
    bundling) are kept and the window shifts by that many frames. Runs in the caller's grad mode
    (wrap in `torch.no_grad()` for inference; keep grads for push-forward training). `normalizer`: the
    checkpoint's statistics (`dpot.load_normalizer(ckpt)`) when it was trained on standardised data; `history`
    is then in physical units and so are the predicted frames.
    """
    cfg = model.config
    t_out = cfg.out_timesteps
    bundle = t_out if bundle is None else int(bundle)
    if not 1 <= bundle <= t_out:
        raise ValueError(f"bundle must be in 1..{t_out} (the model's out_timesteps), got {bundle}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if cfg.out_channels != cfg.in_channels:
        raise ValueError(
            f"rollout needs out_channels == in_channels, model has {cfg.out_channels} vs {cfg.in_channels}"
        )
    if history.dim() != cfg.ndim + 3 or history.shape[-2] < cfg.in_timesteps:
        raise ValueError(
            f"history must have shape (B, *space[{cfg.ndim}], T>={cfg.in_timesteps}, "
            f"C={cfg.in_channels}), got {tuple(history.shape)}"
        )
    window = history[..., -cfg.in_timesteps :, :]
    if normalizer is not None:
        window = normalizer.encode(window)
    frames: list[torch.Tensor] = []
    produced = 0
    while produced < steps:
        pred = model(window, channel_mask=channel_mask)[..., :bundle, :]
        frames.append(pred)
        produced += bundle
        window = torch.cat([window[..., bundle:, :], pred.to(window.dtype)], dim=-2)
    out = torch.cat(frames, dim=-2)[..., :steps, :]
    return out if normalizer is None else normalizer.decode(out)
