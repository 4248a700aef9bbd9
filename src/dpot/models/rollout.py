"""Auto-regressive inference: slide a T_in-frame window, appending each prediction (optionally in bundles)."""

from __future__ import annotations

import torch
from torch import nn


def rollout(
    model: nn.Module,
    history: torch.Tensor,
    steps: int,
    channel_mask: torch.Tensor | None = None,
    bundle: int | None = None,
) -> torch.Tensor:
    """Predict `steps` new frames from `history` `(B, *space, T_in, C)` -> `(B, *space, steps, C)`.

    Each model call predicts `T_out` frames; the first `bundle` of them (default all: temporal
    bundling) are kept and the window shifts by that many frames. Runs in the caller's grad mode
    (wrap in `torch.no_grad()` for inference; keep grads for push-forward training).
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
    frames: list[torch.Tensor] = []
    produced = 0
    while produced < steps:
        pred = model(window, channel_mask=channel_mask)[..., :bundle, :]
        frames.append(pred)
        produced += bundle
        window = torch.cat([window[..., bundle:, :], pred.to(window.dtype)], dim=-2)
    return torch.cat(frames, dim=-2)[..., :steps, :]
