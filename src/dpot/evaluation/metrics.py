"""Error metrics and the training loss, on tensors laid out like the model's output: `(B, *space, T, C)`.

- L2RE (the paper's metric): ‖pred − y‖₂ / ‖y‖₂ over the whole block (all space points and all T steps) of
  each channel, averaged over the real channels of each trajectory (average over trajectories with `.mean()`).
- nRMSE (PDEBench): the same relative L2 but per time step (frame), averaged over steps and real channels.
- VRMSE (The Well): RMSE per frame and channel divided by the frame's standard deviation, averaged likewise.
`mask` is `(B, C)` (or `(C,)`), 1/True for real channels, 0/False for zero-padded ones; None = all real.
"""

from __future__ import annotations

import torch

EPS = 1e-8


def _space_dims(x: torch.Tensor) -> tuple[int, ...]:
    if x.dim() < 4:
        raise ValueError(f"expected (B, *space, T, C) with a space axis, got shape {tuple(x.shape)}")
    return tuple(range(1, x.dim() - 2))


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")


def masked_channel_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the last (channel) axis of `values` `(B, ..., C)`, counting only channels set in `mask`."""
    if mask is None:
        return values.mean(-1)
    m = mask.to(values.dtype)
    if m.dim() == 1:
        m = m.expand(values.shape[0], -1)
    m = m.reshape(m.shape[0], *([1] * (values.dim() - 2)), m.shape[-1])
    return (values * m).sum(-1) / m.sum(-1).clamp_min(1.0)


def relative_l2_per_channel(
    pred: torch.Tensor, target: torch.Tensor, per_step: bool = False, eps: float = EPS
) -> torch.Tensor:
    """‖pred − y‖₂ / (‖y‖₂ + eps) per sample and channel: `(B, C)` over the whole block, or `(B, T, C)`
    per step."""
    _check(pred, target)
    dims = _space_dims(pred) if per_step else (*_space_dims(pred), pred.dim() - 2)
    diff = torch.linalg.vector_norm((pred - target).float(), dim=dims)
    norm = torch.linalg.vector_norm(target.float(), dim=dims)
    return diff / (norm + eps)


def l2re(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The paper's L2RE per trajectory `(B,)`: whole-block relative L2 per channel, mean of real ones."""
    return masked_channel_mean(relative_l2_per_channel(pred, target), mask)


def l2re_per_step(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Relative L2 of each rollout step `(B, T)`, averaged over real channels (error-vs-step curves)."""
    return masked_channel_mean(relative_l2_per_channel(pred, target, per_step=True), mask)


def nrmse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, eps: float = EPS) -> torch.Tensor:
    """PDEBench nRMSE per trajectory `(B,)`: RMSE/RMS(y) of each frame and channel, averaged over steps and
    real channels."""
    per = relative_l2_per_channel(pred, target, per_step=True, eps=eps)  # RMSE/RMS = ‖e‖/‖y‖ per frame
    return masked_channel_mean(per, mask).mean(-1)


def vrmse(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-7
) -> torch.Tensor:
    """The Well's VRMSE per trajectory `(B,)`: sqrt(mean (pred−y)² / (var(y) + eps)) per frame and channel,
    averaged over steps and real channels."""
    _check(pred, target)
    dims = _space_dims(pred)
    p, y = pred.float(), target.float()
    mse = ((p - y) ** 2).mean(dim=dims)
    var = y.var(dim=dims, unbiased=False)
    return masked_channel_mean(torch.sqrt(mse / (var + eps)), mask).mean(-1)


def relative_l2_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """Training loss: relative L2 per sample and channel over space and predicted steps, padded channels
    masked out, averaged over real channels; `reduction` "mean" over the batch (scalar) or "none" (`(B,)`)."""
    per_sample = l2re(pred, target, mask)
    if reduction == "none":
        return per_sample
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
