"""Checkpoint directories: `config.json` + `model.safetensors` (the model's `save_pretrained`)
and `training_state.pt` (optimizer, sampler, RNG, step: tensors and plain containers only, so it loads with
`torch.load(weights_only=True)`). Each directory is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpot.errors import DpotError
from dpot.io import atomic_path, is_disk_full, read_safetensors

STATE_FILE = "training_state.pt"


def save_checkpoint(
    path: str | os.PathLike, model: nn.Module, extra: dict[str, Any], state: dict[str, Any] | None
) -> Path:
    """Write `path/` atomically: the model (`save_pretrained(dir, extra=extra)`) and the training state."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            tmp.mkdir()
            model.save_pretrained(tmp, extra=extra)
            if state is not None:
                torch.save(state, tmp / STATE_FILE)
    except Exception as exc:
        if is_disk_full(exc):
            raise DpotError(
                f"disk full writing {path}: free space, then continue with --resume; the previous "
                "checkpoint (if any) is kept"
            ) from None
        raise
    return path


def find_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of a run: `RUN/checkpoint`, or the previous one if a kill landed in the
    instant between the two renames of an atomic directory swap (`RUN/.checkpoint.old`)."""
    run_dir = Path(run_dir)
    for cand in (run_dir / "checkpoint", run_dir / ".checkpoint.old"):
        if (cand / STATE_FILE).is_file() and (cand / "model.safetensors").is_file():
            return cand
    return None


def load_training_state(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    """Read `training_state.pt` safely (`weights_only=True`) onto the CPU."""
    path = Path(ckpt_dir) / STATE_FILE
    if not path.is_file():
        raise DpotError(f"{path}: no training state; this checkpoint cannot be resumed (weights only)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise DpotError(f"{path}: cannot read training state ({exc.__class__.__name__}: {exc})") from None


def architecture_changes(model: nn.Module, ckpt_dir: str | os.PathLike) -> list[str]:
    """The model config keys whose value in `model` differs from the checkpoint's `config.json`, as
    'key: saved -> now' (what a resume cannot change)."""
    from dpot.models.checkpoint import read_checkpoint_config

    saved = read_checkpoint_config(ckpt_dir)["model"]
    now = json.loads(json.dumps(model.config.to_dict())) if hasattr(model, "config") else {}  # lists, not tuples
    return [
        f"{k}: {saved.get(k)} -> {now.get(k)}"
        for k in sorted(set(saved) | set(now))
        if saved.get(k) != now.get(k) and k in saved and k in now
    ]


def load_weights(model: nn.Module, ckpt_dir: str | os.PathLike) -> None:
    """Load `model.safetensors` into `model` strictly (same architecture)."""
    path = Path(ckpt_dir) / "model.safetensors"
    if not path.is_file():
        raise DpotError(f"{path}: no model weights in this checkpoint")
    changed = architecture_changes(model, ckpt_dir)
    if changed:
        raise DpotError(
            f"{ckpt_dir}: the model differs from the checkpoint's ({'; '.join(changed)}); the "
            "architecture cannot change on resume: drop those overrides"
        )
    try:
        missing, unexpected = model.load_state_dict(read_safetensors(path), strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise DpotError(
            f"{path}: weights do not fit the model ({str(exc).splitlines()[-1].strip()}); resume "
            "with the run's own config"
        ) from None
    if missing or unexpected:
        raise DpotError(
            f"{path}: weights do not fit the model (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); resume with the run's own config"
        )
