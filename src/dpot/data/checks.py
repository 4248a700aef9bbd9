"""Input validation at the data boundary: once per batch, outside the model's forward (which must not sync)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from dpot.errors import DpotError


def _named_tensors(batch: Any, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """Floating-point tensors in a tensor / mapping / sequence (nested), with their paths ("x", "1.y")."""
    if isinstance(batch, torch.Tensor):
        return [(prefix or "tensor", batch)] if batch.is_floating_point() else []
    if isinstance(batch, Mapping):
        items = batch.items()
    elif isinstance(batch, Sequence) and not isinstance(batch, str):
        items = enumerate(batch)
    else:
        return []
    out = []
    for key, value in items:
        out += _named_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def check_finite(batch: Any, where: str) -> None:
    """Raise DpotError if any floating-point tensor in `batch` holds NaN or Inf.

    One host read for the whole batch (none at all for CPU tensors, e.g. before the copy to the GPU): call it
    once per batch at the data boundary, not inside a forward."""
    tensors = _named_tensors(batch)
    if not tensors:
        return
    flags = torch.stack([torch.isfinite(t).all().to(tensors[0][1].device) for _, t in tensors])
    if bool(flags.all()):
        return
    bad = [f"{name} {tuple(t.shape)}" for (name, t), ok in zip(tensors, flags.tolist()) if not ok]
    raise DpotError(f"{where}: NaN or Inf values in {', '.join(bad)} (a corrupt or diverged sample: fix or drop it)")
