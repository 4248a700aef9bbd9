"""The periodic evaluation of a training run: short rollouts on held-out trajectories, scored by L2RE in
physical units (as `dpot evaluate` scores)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from dpot.evaluation.metrics import l2re

if TYPE_CHECKING:
    from dpot.data.windows import TrajectoryDataset


@torch.no_grad()
def heldout_l2re(
    model: nn.Module,
    eval_sets: Sequence[TrajectoryDataset],
    batch_size: int,
    eval_steps: int,
    device: torch.device,
    autocast: Callable[[], Any],
    fsdp: bool,
) -> dict[str, float]:
    """Per-dataset L2RE of an `eval_steps`-step rollout from the first T_in frames of each trajectory (no
    noise), with the eager `model` in eval mode (its training mode comes back afterwards). Scored in physical
    units, as `dpot evaluate` scores: each set's own normaliser (None: raw) is undone on prediction and target.
    Under FSDP every rank must call it (each forward needs all ranks), and the forward-only pass is resharded
    at the end."""
    from dpot.evaluation.evaluate import predict_physical

    results = {}
    was_training = model.training
    model.eval()
    for ds in eval_sets:
        total, n = 0.0, 0
        for batch in DataLoader(ds, batch_size=batch_size):
            with autocast():
                pred, target, tmask = predict_physical(
                    model, batch, device, steady=ds.meta.steady, steps=eval_steps, normalizer=ds.normalizer
                )
            err = l2re(pred, target, tmask)
            total += float(err.sum())
            n += err.shape[0]
        results[str(ds.name)] = total / max(n, 1)
    model.train(was_training)
    if fsdp:  # forward without backward: reshard
        from torch.distributed.fsdp import FSDPModule

        for module in model.modules():
            if isinstance(module, FSDPModule):
                module.reshard()
    return results
