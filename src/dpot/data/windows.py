"""Training windows and evaluation trajectories over one canonical split file.

`WindowDataset` enumerates every window (trajectory, start) so that an index fully determines an item: random
windows come from the sampler (`BalancedSampler`), which makes loading deterministic given the sampler's seed
and exactly resumable. Only the frames of a window are read from disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dpot.data.format import open_split
from dpot.data.normalize import Normalizer, dataset_normalizer
from dpot.data.resample import METHODS, resample, target_shape
from dpot.errors import DpotError


class _SplitView(Dataset):
    """Shared logic: open a split, choose the first k trajectories, resample, normalise and pad channels."""

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        split: str,
        n_channels: int | None,
        resolution: int | Sequence[int] | None,
        resample: str,
        dataset_id: int,
        n_trajectories: int | None,
        normalize: bool | str | Normalizer | None,
    ):
        self.dataset_dir = Path(dataset_dir)
        self.split = open_split(self.dataset_dir, split)
        self.meta = self.split.meta
        self.name = self.meta.name
        if resample not in METHODS:
            raise DpotError(f"unknown resample method {resample!r}; use one of {', '.join(METHODS)}")
        self.resample = resample
        self.dataset_id = int(dataset_id)
        n = len(self.split)
        if n_trajectories is None:
            self.n_trajectories = n
        elif not 1 <= int(n_trajectories) <= n:
            raise DpotError(
                f"{self.split.path}: n_trajectories={n_trajectories} but the split holds {n} trajectories; use 1..{n}"
            )
        else:
            self.n_trajectories = int(n_trajectories)
        self.native_shape = tuple(self.split.space_shape)
        self.space_shape = target_shape(resolution, self.native_shape)
        self.in_channels = self.split.n_channels  # fields, or steady-state inputs
        self.out_channels = self.split.targets_shape[-1] if self.meta.steady else self.in_channels
        own = max(self.in_channels, self.out_channels)
        self.n_channels = own if n_channels is None else int(n_channels)
        if self.n_channels < own:
            raise DpotError(
                f"dataset {self.name!r} has {own} channels but n_channels={n_channels}; use n_channels >= {own}"
            )
        self.normalizer = (
            normalize if isinstance(normalize, Normalizer) else dataset_normalizer(self.dataset_dir, normalize)
        )  # None: raw values

    def _prepare(self, frames: np.ndarray, key: str, split_at: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`(T, *space, c)` frames -> resampled, normalised, zero-padded `(*space, T, n_channels)` tensors for
        frames `[:split_at]` and `[split_at:]`.

        The layout change and padding are one numpy copy per output: torch's multi-threaded strided copy is
        up to 20x slower on a busy machine.
        """
        if tuple(frames.shape[1:-1]) != self.space_shape:
            frames = resample(torch.from_numpy(frames), self.space_shape, self.resample).numpy()
        if self.normalizer is not None:
            frames = self.normalizer.arrays[key].encode(frames)
        return self._layout(frames[:split_at]), self._layout(frames[split_at:])

    def _layout(self, frames: np.ndarray) -> torch.Tensor:
        out = np.zeros((*frames.shape[1:-1], frames.shape[0], self.n_channels), dtype=np.float32)
        out[..., : frames.shape[-1]] = np.moveaxis(frames, 0, -2)
        return torch.from_numpy(out)

    def _mask(self, c: int) -> torch.Tensor:
        mask = torch.zeros(self.n_channels, dtype=torch.bool)
        mask[:c] = True
        return mask

    def _steady(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = self.split.pair(i)
        return self._prepare(inputs[None], "inputs", 1)[0], self._prepare(targets[None], "targets", 1)[0]

    def close(self) -> None:
        self.split.close()


class WindowDataset(_SplitView):
    """Every window of `t_in` input and `t_ar` target frames (time stride `stride`) of the first
    `n_trajectories` trajectories.

    Item `i` is trajectory `i // n_starts`, start frame `i % n_starts`: a dict with `x` `(*space, t_in, C)`,
    `y` `(*space, t_ar, C)` float32, `mask` `(C,)` bool (real input channels), `target_mask` `(C,)` bool
    (real target channels), `dataset` int64 and `window` int64 `(2,)` (trajectory, start frame: where a bad
    sample came from). Channels beyond the dataset's own are zero. Steady-state
    datasets give one pair per sample, `x` `(*space, 1, C)` and `y` `(*space, 1, C)`. `normalize=True`
    standardises each channel with the train split's statistics (`stats.json`; `dpot.data.normalize`), `"auto"`
    only when the dataset's channels are not O(1); a `Normalizer` applies the given statistics.
    """

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        split: str = "train",
        t_in: int = 10,
        t_ar: int = 1,
        stride: int = 1,
        resolution: int | Sequence[int] | None = None,
        n_channels: int | None = None,
        resample: str = "bilinear",
        dataset_id: int = 0,
        n_trajectories: int | None = None,
        normalize: bool | str | Normalizer = False,
    ):
        super().__init__(dataset_dir, split, n_channels, resolution, resample, dataset_id, n_trajectories, normalize)
        self.t_in, self.t_ar, self.stride = int(t_in), int(t_ar), int(stride)
        if self.t_in < 1 or self.t_ar < 1 or self.stride < 1:
            raise DpotError(f"t_in={t_in}, t_ar={t_ar} and stride={stride} must all be >= 1")
        if self.meta.steady:
            self.span, self.n_starts = 1, 1
        else:
            self.span = (self.t_in + self.t_ar - 1) * self.stride + 1
            self.n_starts = self.split.n_frames - self.span + 1
            if self.n_starts < 1:
                raise DpotError(
                    f"dataset {self.name!r}: trajectories have {self.split.n_frames} frames, "
                    f"fewer than one window of t_in={self.t_in} + t_ar={self.t_ar} frames at "
                    f"stride {self.stride} ({self.span} frames); lower t_in, t_ar or stride"
                )

    def __len__(self) -> int:
        return self.n_trajectories * self.n_starts

    def locate(self, index: int) -> tuple[int, int]:
        """(trajectory, start frame) of item `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows of dataset {self.name!r}")
        return divmod(int(index), self.n_starts)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        traj, start = self.locate(index)
        if self.meta.steady:
            x, y = self._steady(traj)
            mask, target_mask = self._mask(self.in_channels), self._mask(self.out_channels)
        else:
            frames = self.split.frames(traj, start, start + self.span, self.stride)
            x, y = self._prepare(frames, "fields", self.t_in)
            mask = target_mask = self._mask(self.in_channels)
        return {
            "x": x,
            "y": y,
            "mask": mask,
            "target_mask": target_mask,
            "dataset": torch.tensor(self.dataset_id, dtype=torch.int64),
            "window": torch.tensor([traj, start], dtype=torch.int64),
        }


class TrajectoryDataset(_SplitView):
    """Whole trajectories for evaluation: the first `t_in` frames (time stride `stride`) are the history, the
    following ones (at most `horizon`) the targets; native resolution unless `resolution` is given.

    Item: `history` `(*space, t_in, C)`, `target` `(*space, T', C)`, `mask`/`target_mask` `(C,)` bool,
    `dataset` int64.
    Steady-state datasets give `history` = inputs and `target` = targets, each with a singleton time axis.
    """

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        split: str = "test",
        t_in: int = 10,
        n_channels: int | None = None,
        resolution: int | Sequence[int] | None = None,
        n_trajectories: int | None = None,
        dataset_id: int = 0,
        horizon: int | None = None,
        stride: int = 1,
        resample: str = "bilinear",
        normalize: bool | str | Normalizer = False,
    ):
        super().__init__(dataset_dir, split, n_channels, resolution, resample, dataset_id, n_trajectories, normalize)
        self.t_in, self.stride = int(t_in), int(stride)
        if self.t_in < 1 or self.stride < 1:
            raise DpotError(f"t_in={t_in} and stride={stride} must be >= 1")
        if self.meta.steady:
            self.horizon = 1
            return
        available = (self.split.n_frames - 1) // self.stride + 1 - self.t_in
        if available < 1:
            raise DpotError(
                f"dataset {self.name!r}: trajectories have {self.split.n_frames} frames, not "
                f"enough for t_in={self.t_in} history frames at stride {self.stride} plus one "
                "target; lower t_in"
            )
        if horizon is not None and not 1 <= int(horizon) <= available:
            raise DpotError(
                f"dataset {self.name!r}: horizon={horizon} but only {available} target frames "
                f"follow the {self.t_in} history frames; use 1..{available}"
            )
        self.horizon = available if horizon is None else int(horizon)

    def __len__(self) -> int:
        return self.n_trajectories

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"trajectory {index} out of range for {len(self)} in dataset {self.name!r}")
        if self.meta.steady:
            history, target = self._steady(int(index))
            mask, target_mask = self._mask(self.in_channels), self._mask(self.out_channels)
        else:
            stop = ((self.t_in + self.horizon - 1) * self.stride) + 1
            frames = self.split.frames(int(index), 0, stop, self.stride)
            history, target = self._prepare(frames, "fields", self.t_in)
            mask = target_mask = self._mask(self.in_channels)
        return {
            "history": history,
            "target": target,
            "mask": mask,
            "target_mask": target_mask,
            "dataset": torch.tensor(self.dataset_id, dtype=torch.int64),
        }


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items into a batch with numpy (single-threaded): a drop-in `collate_fn` for the main process, where
    torch's default collate uses intra-op threads that cost ~8x more CPU on a busy machine."""
    return {key: torch.from_numpy(np.stack([item[key].numpy() for item in items])) for key in items[0]}
