"""What a skipped training step blames: the data (which dataset, file, trajectory, frames) when the batch
itself holds NaN/Inf, otherwise the model or optimiser state and the config values that drive it."""

from __future__ import annotations

import torch

from dpot.training.config import OptimConfig, TrainConfig


def blame_config(train: TrainConfig, optim: OptimConfig) -> str:
    """The config values to look at when finite data gives a non-finite loss or gradient."""
    return (
        f"the batch is finite, so the model or optimiser state diverged (optim.lr={optim.lr}, "
        f"optim.clip_grad={optim.clip_grad}, train.noise={train.noise})"
    )


def describe_bad_samples(
    batch: dict[str, torch.Tensor], bad: torch.Tensor, datasets, train: TrainConfig, optim: OptimConfig, limit: int = 3
) -> list[str]:
    """One phrase per sample flagged in `bad` (at most `limit`): where it came from and what is wrong."""
    out = []
    for i in torch.nonzero(bad).flatten().tolist()[:limit]:
        ds = datasets[int(batch["dataset"][i])]
        where = str(getattr(ds, "name", int(batch["dataset"][i])))
        if "window" in batch:
            traj, start = batch["window"][i].tolist()
            split = getattr(ds, "split", None)
            file = f"{split.path} " if split is not None else ""
            where += f" ({file}trajectory {traj}, window from frame {start})"
        finite = bool(torch.isfinite(batch["x"][i]).all() and torch.isfinite(batch["y"][i]).all())
        out.append(f"{where}: {blame_config(train, optim) if finite else 'the data holds NaN/Inf'}")
    return out
