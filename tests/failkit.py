"""Tiny real inputs for the failure tests: datasets (clean and with NaN), a checkpoint, a pre-training run."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from dpot.data.format import DatasetMeta, write_split


def dataset(
    root: Path,
    name: str = "waves",
    n: int = 3,
    frames: int = 6,
    res: int = 8,
    nan_at: int | None = None,
    splits=("train", "test"),
) -> Path:
    """A 2D one-channel dataset `root/name`; `nan_at`: that trajectory of every split gets a NaN (written
    behind the writer's back, as a foreign tool would)."""
    meta = DatasetMeta(
        name=name,
        pde="other",
        channels=["u"],
        space=["x", "y"],
        domain=[[0, 1], [0, 1]],
        boundary=["periodic", "periodic"],
        dt=0.1,
        source="tests",
    )
    rng = np.random.default_rng(0)
    for split in splits:
        path = write_split(
            root / name / f"{split}.h5", meta, fields=rng.standard_normal((n, frames, res, res, 1)).astype(np.float32)
        )
        if nan_at is not None:
            with h5py.File(path, "r+") as f:
                f["fields"][nan_at, frames - 1, 1, 1, 0] = np.nan
    return root / name


def checkpoint(path: Path, res: int = 8) -> Path:
    """A tiny DPOT checkpoint for 2D one-channel data with T_in=3."""
    from dpot.models import DPOT, DPOTConfig

    torch.manual_seed(0)
    model = DPOT(
        DPOTConfig(
            img_size=res,
            patch_size=4,
            in_channels=1,
            out_channels=1,
            in_timesteps=3,
            embed_dim=8,
            depth=1,
            n_blocks=2,
            out_layer_dim=4,
            n_cls=1,
        )
    )
    model.save_pretrained(path)
    return path


def listing(folder: Path) -> set[str]:
    """Every path under `folder` (relative), to check that a failed command left nothing behind."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}
