"""The periodic evaluation of a training run: short rollouts on held-out trajectories, scored by L2RE."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dpot.evaluation.metrics import l2re


@torch.no_grad()
def heldout_l2re(
    model: nn.Module,
    eval_sets: Sequence[Dataset],
    batch_size: int,
    eval_steps: int,
    device: torch.device,
    autocast: Callable[[], Any],
    fsdp: bool,
) -> dict[str, float]:
    """Per-dataset L2RE of an `eval_steps`-step rollout from the first T_in frames of each trajectory (no
    noise), with the eager `model` in eval mode (its training mode comes back afterwards). Under FSDP every
    rank must call it (each forward needs all ranks), and the forward-only pass is resharded at the end."""
    from dpot.models import rollout

    results = {}
    was_training = model.training
    model.eval()
    for ds in eval_sets:
        total, n = 0.0, 0
        for batch in DataLoader(ds, batch_size=batch_size):
            hist = batch["history"].to(device)
            target = batch["target"].to(device)
            steps = min(eval_steps, target.shape[-2])
            with autocast():
                pred = rollout(model, hist, steps, channel_mask=batch["mask"].to(device))
            err = l2re(pred.float(), target[..., :steps, :].float(), batch.get("target_mask", batch["mask"]).to(device))
            total += float(err.sum())
            n += err.shape[0]
        results[str(getattr(ds, "name", len(results)))] = total / max(n, 1)
    model.train(was_training)
    if fsdp:  # forward without backward: reshard
        from torch.distributed.fsdp import FSDPModule

        for module in model.modules():
            if isinstance(module, FSDPModule):
                module.reshard()
    return results
