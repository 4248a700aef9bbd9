"""Per-channel statistics (mean, std, min, max), computed streaming and cached in `<dataset>/stats.json`.

Used for optional normalisation (off by default: the reference trains on raw values) and by `dpot info`.
The cache is keyed on the size and modification time of the split file, so a rewritten dataset is recomputed.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dpot.data.format import Split, open_split
from dpot.errors import DpotError
from dpot.io import write_json

STATS_FILE = "stats.json"
_BLOCK_BYTES = 64 << 20  # read at most ~64 MiB at a time


@dataclass
class ChannelStats:
    """Per-channel summary of one array (`fields`, `inputs` or `targets`) of a split."""

    channels: list[str]
    mean: list[float]
    std: list[float]
    min: list[float]
    max: list[float]
    count: int  # values per channel
    nonfinite: list[int]  # indices of the trajectories (samples) holding NaN or Inf

    @classmethod
    def from_dict(cls, d: dict) -> ChannelStats:
        nan = float("nan")  # stored as null in JSON
        values = {k: [nan if v is None else v for v in d[k]] for k in ("mean", "std", "min", "max")}
        return cls(channels=d["channels"], count=d["count"], nonfinite=d["nonfinite"], **values)


class _Accumulator:
    """Chan's parallel mean/variance merge in float64, plus running min/max, per channel."""

    def __init__(self, n_channels: int):
        self.n = 0
        self.mean = np.zeros(n_channels)
        self.m2 = np.zeros(n_channels)
        self.lo = np.full(n_channels, np.inf)
        self.hi = np.full(n_channels, -np.inf)
        self.bad: set[int] = set()

    def add(self, block: np.ndarray, first: int = 0, one_item: bool = False) -> None:
        """Merge `block`: items `first, first+1, ...` (or frames of the one item `first` if `one_item`)."""
        finite = np.isfinite(block).reshape(1 if one_item else block.shape[0], -1).all(axis=1)
        self.bad.update(first + int(i) for i in np.flatnonzero(~finite))
        flat = block.reshape(-1, block.shape[-1]).astype(np.float64)
        nb = flat.shape[0]
        if nb == 0:
            return
        mb = flat.mean(axis=0)
        m2b = ((flat - mb) ** 2).sum(axis=0)
        delta = mb - self.mean
        total = self.n + nb
        self.mean = self.mean + delta * nb / total
        self.m2 = self.m2 + m2b + delta**2 * self.n * nb / total
        self.n = total
        self.lo = np.minimum(self.lo, flat.min(axis=0))
        self.hi = np.maximum(self.hi, flat.max(axis=0))

    def result(self, channels: list[str]) -> ChannelStats:
        std = np.sqrt(self.m2 / max(self.n, 1))
        return ChannelStats(
            list(channels),
            self.mean.tolist(),
            std.tolist(),
            self.lo.tolist(),
            self.hi.tolist(),
            int(self.n),
            sorted(self.bad),
        )


def _blocks(split: Split, key: str):
    """Yield (first trajectory, whether the slab is frames of that one trajectory, slab) for slabs of `key` of
    at most ~64 MiB: several trajectories, or frames of one trajectory."""
    ds = split.file[key]
    per_item = 4 * math.prod(ds.shape[1:])
    if per_item <= _BLOCK_BYTES or key != "fields":
        step = max(1, _BLOCK_BYTES // max(per_item, 1))
        for a in range(0, ds.shape[0], step):
            yield a, False, np.asarray(ds[a : a + step], dtype=np.float32)
        return
    frame = 4 * math.prod(ds.shape[2:])
    step = max(1, _BLOCK_BYTES // frame)
    for i in range(ds.shape[0]):
        for a in range(0, ds.shape[1], step):
            yield i, True, np.asarray(ds[i, a : a + step], dtype=np.float32)


def compute_stats(split: Split, progress=None) -> dict[str, ChannelStats]:
    """Stream over a split; per-channel stats of each array it holds (`fields`, or `inputs` and `targets`).

    `progress`, if given, is called with the number of values processed after each block.
    """
    meta = split.meta
    if meta.steady:
        arrays = {"inputs": meta.input_channels or [f"in{c}" for c in range(split.shape[-1])], "targets": meta.channels}
    else:
        arrays = {"fields": meta.channels}
    out = {}
    for key, names in arrays.items():
        acc = None
        for first, one_item, block in _blocks(split, key):
            acc = acc or _Accumulator(block.shape[-1])
            acc.add(block, first, one_item)
            if progress is not None:
                progress(block.size)
        out[key] = acc.result(names)
    return out


def _signature(path: Path) -> dict:
    st = path.stat()
    return {"file": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_cache(dataset_dir: Path) -> dict:
    try:
        return json.loads((dataset_dir / STATS_FILE).read_text())
    except (OSError, ValueError):  # missing, unreadable or not JSON: recomputed
        return {}


def cached_stats(dataset_dir: str | os.PathLike, split: str = "train") -> dict[str, ChannelStats] | None:
    """The stats of `split` stored in `stats.json` if they are up to date with the split file, else None."""
    dataset_dir = Path(dataset_dir)
    entry = _read_cache(dataset_dir).get(split)
    path = dataset_dir / f"{split}.h5"
    if entry and path.is_file() and entry.get("source") == _signature(path):
        try:
            return {k: ChannelStats.from_dict(v) for k, v in entry["arrays"].items()}
        except (KeyError, TypeError):  # written by an older version: recompute
            return None
    return None


def load_stats(dataset_dir: str | os.PathLike, split: str = "train") -> dict[str, ChannelStats]:
    """Per-channel stats of `split`, read from `<dataset_dir>/stats.json` or computed once and stored there.

    If the folder is read-only the stats are computed in memory (with a warning) on every call.
    """
    dataset_dir = Path(dataset_dir)
    cached = cached_stats(dataset_dir, split)
    if cached is not None:
        return cached
    sp = open_split(dataset_dir, split)
    sig = _signature(sp.path)
    cache = dataset_dir / STATS_FILE
    stored = _read_cache(dataset_dir)
    stats = compute_stats(sp)
    sp.close()
    stored[split] = {"source": sig, "arrays": {k: asdict(v) for k, v in stats.items()}}
    try:
        write_json(cache, stored)
    except OSError as exc:
        warnings.warn(f"{cache}: cannot store normalisation statistics ({exc}); computed in memory", stacklevel=2)
    return stats


def nonfinite_trajectories(dataset_dir: str | os.PathLike, split: str = "train") -> list[int]:
    """Indices of the trajectories (samples) of `split` that hold NaN or Inf (one cached streaming pass)."""
    return sorted({i for st in load_stats(dataset_dir, split).values() for i in st.nonfinite})


def nonfinite_message(dataset_dir: str | os.PathLike, split: str, bad: list[int], n: int) -> str:
    """'dataset NAME (DIR), split S: NaN/Inf in trajectories 3, 7 (2 of N)'."""
    shown = ", ".join(map(str, bad[:8])) + (", ..." if len(bad) > 8 else "")
    return (
        f"dataset {Path(dataset_dir).name!r} ({dataset_dir}), split {split}: NaN/Inf in "
        f"trajector{'y' if len(bad) == 1 else 'ies'} {shown} ({len(bad)} of {n})"
    )


def _check(dataset_dir: str | os.PathLike, split: str) -> str | None:
    """`nonfinite_message` for `split` of `dataset_dir` if it holds NaN/Inf, else None."""
    bad = nonfinite_trajectories(dataset_dir, split)
    return nonfinite_message(dataset_dir, split, bad, len(open_split(dataset_dir, split))) if bad else None


def require_finite(dataset_dirs, splits=("train",)) -> None:
    """Refuse (one-line DpotError) to train on data holding NaN/Inf, naming dataset, split and trajectories.
    Splits a dataset does not have are skipped."""
    for d in dataset_dirs:
        for split in dict.fromkeys(splits):
            problem = (Path(d) / f"{split}.h5").is_file() and _check(d, split)
            if problem:
                raise DpotError(
                    f"{problem}; remove those trajectories (or exclude the dataset) before "
                    "training: every step that draws them would be NaN"
                )


def warn_nonfinite(dataset_dir: str | os.PathLike, split: str, prefix: str) -> bool:
    """Print a warning line (`PREFIX: warning: ...`) if `split` holds NaN/Inf; returns whether it does."""
    import sys

    problem = _check(dataset_dir, split)
    if problem:
        print(f"{prefix}: warning: {problem}", file=sys.stderr)
    return bool(problem)
