"""Per-dataset, per-channel standardisation: `x -> (x - shift) / scale` with train-split statistics.

The rule (documented in docs/data-pipeline.md): `shift = mean`, `scale = std`, except that a channel whose std
is at most `REL_FLOOR` times its RMS `sqrt(mean² + std²)` counts as constant: it is not centred (a zero target
would make the relative L2 loss meaningless) and is divided by its RMS, so it becomes ±1; an all-zero channel
(RMS at most `ABS_FLOOR`) is left as it is. `data.normalize=auto`
(the default) standardises a dataset only when one of its channels is not O(1): RMS outside `AUTO_RANGE`.
A `Normalizer` is stored in every checkpoint that was trained on standardised data (`normalization` entry of
`config.json`, by dataset name) and is undone by `evaluate`, `rollout` and `dpot.rollout(..., normalizer=...)`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpot.errors import DpotError

REL_FLOOR = 1e-6  # std <= 1e-6 * RMS: constant up to float32 rounding (a channel is never amplified > 1e6x)
ABS_FLOOR = 1e-30  # RMS <= this: the channel is identically zero: divide by 1
AUTO_RANGE = (1e-3, 1e3)  # `auto` leaves a dataset raw when every channel's RMS lies in this range


def channel_affine(mean: float, std: float) -> tuple[float, float]:
    """(shift, scale) of one channel: (mean, std); (0, RMS) when it is constant (std <= REL_FLOOR * RMS);
    (0, 1) when it is all zero (RMS <= ABS_FLOOR)."""
    rms = math.hypot(float(mean), float(std))
    if rms <= ABS_FLOOR:
        return 0.0, 1.0
    return (float(mean), float(std)) if std > REL_FLOOR * rms else (0.0, rms)


def is_order_one(mean: list[float], std: list[float]) -> bool:
    """Whether every channel's RMS lies in AUTO_RANGE (then `auto` trains on raw values, as the reference);
    all-zero channels do not count (their standardisation is the identity)."""
    lo, hi = AUTO_RANGE
    return all(lo <= r <= hi for r in (math.hypot(m, s) for m, s in zip(mean, std)) if r > ABS_FLOOR)


@dataclass
class ChannelNorm:
    """Train-split mean/std and the affine map `(x - shift) / scale` per channel of one array (`fields`, or
    steady-state `inputs` / `targets`)."""

    channels: list[str]
    mean: list[float]
    std: list[float]
    shift: list[float]
    scale: list[float]

    @classmethod
    def from_stats(cls, channels: list[str], mean: list[float], std: list[float]) -> ChannelNorm:
        shift, scale = zip(*(channel_affine(m, s) for m, s in zip(mean, std)))
        return cls(list(channels), [float(m) for m in mean], [float(s) for s in std], list(shift), list(scale))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChannelNorm:
        # checkpoints written before `shift`/`scale` were stored centred by the mean, divided by std (1 if 0)
        shift = d.get("shift") or list(d["mean"])
        scale = d.get("scale") or [s if s > 0 else 1.0 for s in d["std"]]
        return cls(list(d["channels"]), list(d["mean"]), list(d["std"]), list(shift), list(scale))

    def to_dict(self) -> dict[str, Any]:
        return {"channels": self.channels, "mean": self.mean, "std": self.std, "shift": self.shift, "scale": self.scale}

    def _params(self, x: Any) -> tuple[Any, Any]:
        """Shift and scale for the last axis of `x`, padded (0 and 1) to its channel count."""
        n = x.shape[-1]
        if n < len(self.shift):
            raise DpotError(
                f"data has {n} channels but the normalisation statistics have {len(self.shift)} "
                f"({', '.join(self.channels)})"
            )
        pad = n - len(self.shift)
        mean = np.asarray(self.shift + [0.0] * pad, dtype=np.float32)
        scale = np.asarray(self.scale + [1.0] * pad, dtype=np.float32)
        if isinstance(x, torch.Tensor):
            return torch.from_numpy(mean).to(x.device), torch.from_numpy(scale).to(x.device)
        return mean, scale

    def encode(self, x: Any) -> Any:
        """Physical units -> standardised (torch tensor or numpy array; channels last, extra channels kept)."""
        mean, scale = self._params(x)
        return (x - mean) / scale

    def decode(self, x: Any) -> Any:
        """Standardised -> physical units."""
        mean, scale = self._params(x)
        return x * scale + mean


@dataclass
class Normalizer:
    """The standardisation of one dataset: `fields` (time-dependent) or `inputs` and `targets` (steady-state).

    `encode` maps a model input from physical units, `decode` maps a model output back."""

    arrays: dict[str, ChannelNorm]

    @classmethod
    def from_dataset(cls, dataset_dir: str | os.PathLike) -> Normalizer:
        """From the dataset's train split (`stats.json`, computed once)."""
        from dpot.data.stats import load_stats

        dataset_dir = Path(dataset_dir)
        if not (dataset_dir / "train.h5").is_file():
            raise DpotError(
                f"{dataset_dir}: no train split to compute normalisation statistics from; evaluate "
                "it with a checkpoint fine-tuned on a dataset of the same channels"
            )
        return cls(
            {k: ChannelNorm.from_stats(s.channels, s.mean, s.std) for k, s in load_stats(dataset_dir, "train").items()}
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalizer:
        if "mean" in d:  # the layout of checkpoints written before steady-state arrays were stored
            return cls({"fields": ChannelNorm.from_dict(d)})
        return cls({k: ChannelNorm.from_dict(v) for k, v in d.items()})

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() for k, v in self.arrays.items()}

    @property
    def input(self) -> ChannelNorm:
        return self.arrays.get("fields") or self.arrays["inputs"]

    @property
    def output(self) -> ChannelNorm:
        return self.arrays.get("fields") or self.arrays["targets"]

    @property
    def order_one(self) -> bool:
        """Whether every array's channels are O(1) already (`auto` then leaves the dataset raw)."""
        return all(is_order_one(a.mean, a.std) for a in self.arrays.values())

    def encode(self, x: Any) -> Any:
        return self.input.encode(x)

    def decode(self, y: Any) -> Any:
        return self.output.decode(y)


def dataset_normalizer(dataset_dir: str | os.PathLike, setting: bool | str | None) -> Normalizer | None:
    """The normaliser a run applies to a dataset: `True` always, `False` never, `auto` (or None) only when its
    channels are not O(1) (see `is_order_one`)."""
    if setting is False:
        return None
    norm = Normalizer.from_dataset(dataset_dir)
    if setting is True:
        return norm
    return None if norm.order_one else norm


def trained_standardised(meta: dict[str, Any]) -> bool:
    """Whether checkpoint `meta` (parsed config.json) saw only standardised data (every dataset has stats)."""
    stats = meta.get("normalization") or {}
    return bool(stats) and all(d["name"] in stats for d in meta.get("data") or [])


def checkpoint_normalizer(
    meta: dict[str, Any], dataset_dir: str | os.PathLike | None = None, dataset: str | None = None
) -> Normalizer | None:
    """The normaliser of checkpoint `meta` (its parsed config.json) for one dataset, or None (raw values).

    By name (`dataset`, else the name in the dataset's metadata): the statistics stored for it; a dataset the
    checkpoint trained on raw gets None. Any other dataset: a single-dataset (fine-tuned) checkpoint's own
    statistics; for a multi-dataset checkpoint, the dataset's train split under the checkpoint's rule.
    """
    stats = meta.get("normalization") or {}
    if not stats:
        return None
    channels = None
    if dataset_dir is not None:
        from dpot.data.format import open_split

        split = next(s for s in ("train", "val", "test") if (Path(dataset_dir) / f"{s}.h5").is_file())
        ds_meta = open_split(dataset_dir, split).meta
        dataset, channels = dataset or ds_meta.name, ds_meta.channels
    if dataset in stats:
        return Normalizer.from_dict(stats[dataset])
    trained = [d["name"] for d in meta.get("data") or []]
    if dataset in trained:
        return None
    if len(stats) == 1 and len(trained) <= 1:
        ((name, entry),) = stats.items()
        norm = Normalizer.from_dict(entry)
        if channels is not None and len(channels) != len(norm.output.channels):
            raise DpotError(
                f"dataset {dataset!r} has {len(channels)} channels but the checkpoint was trained on "
                f"standardised {name!r} with {len(norm.output.channels)} "
                f"({', '.join(norm.output.channels)}); its statistics do not apply"
            )
        return norm
    if dataset_dir is None:
        raise DpotError(
            f"the checkpoint holds normalisation statistics for {', '.join(sorted(stats))}; "
            "choose one with --dataset NAME"
        )
    setting = ((meta.get("train_config") or {}).get("data") or {}).get("normalize", "auto")
    return dataset_normalizer(dataset_dir, setting)


def load_normalizer(checkpoint: str | os.PathLike, dataset: str | None = None) -> Normalizer | None:
    """The statistics a checkpoint directory standardises its inputs with (None: it was trained on raw values).

    `dataset`: which one, by name, for a checkpoint trained on several standardised datasets."""
    from dpot.models.checkpoint import read_checkpoint_config

    return checkpoint_normalizer(read_checkpoint_config(checkpoint), dataset=dataset)
