"""Axis layouts for user arrays (`.npy`/`.npz`): parse a string like `"n t x y c"` and convert to and from the
canonical `(N, T, *space, C)` order, so `dpot rollout` can answer in the caller's own layout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dpot.errors import DpotError

SPACE_AXES = ("x", "y", "z")
LAYOUT_HELP = (
    "a space-separated axis order using t (time, required), x/y/z (space: x, x y or x y z, any order), and "
    'optionally n (trajectories) and c (channels); e.g. "n t x y c" or "t c x y"'
)


@dataclass(frozen=True)
class Layout:
    """An axis order: `axes` are letters from n, t, c, x, y, z; missing n or c mean a single one."""

    axes: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Layout:
        """Parse `"n t x y c"` (spaces optional: `"ntxyc"`); raise a one-line DpotError when malformed."""
        letters = tuple(text.split()) if " " in text.strip() else tuple(text.strip())
        bad = [a for a in letters if a not in ("n", "t", "c", *SPACE_AXES)]
        if bad or not letters:
            raise DpotError(f"bad --layout {text!r}: unknown axis {bad[0] if bad else '(empty)'!r}; use {LAYOUT_HELP}")
        dup = sorted({a for a in letters if letters.count(a) > 1})
        if dup:
            raise DpotError(f"bad --layout {text!r}: axis {dup[0]!r} appears twice; use {LAYOUT_HELP}")
        space = [a for a in letters if a in SPACE_AXES]
        if "t" not in letters or not space:
            raise DpotError(f"bad --layout {text!r}: needs a 't' axis and at least one space axis; use {LAYOUT_HELP}")
        if sorted(space) != list(SPACE_AXES[: len(space)]):
            raise DpotError(
                f"bad --layout {text!r}: space axes must be x, x y, or x y z (any order); use {LAYOUT_HELP}"
            )
        return cls(letters)

    @property
    def ndim(self) -> int:
        return sum(a in SPACE_AXES for a in self.axes)

    def canonical(self) -> tuple[str, ...]:
        return ("n", "t", *SPACE_AXES[: self.ndim], "c")

    def to_canonical(self, arr: np.ndarray) -> np.ndarray:
        """`arr` in this layout -> `(N, T, *space, C)` (adds unit n/c axes when the layout lacks them)."""
        if arr.ndim != len(self.axes):
            raise DpotError(
                f"array has {arr.ndim} axes {tuple(arr.shape)} but --layout {' '.join(self.axes)!r} "
                f"names {len(self.axes)}"
            )
        axes = list(self.axes)
        for missing in ("n", "c"):
            if missing not in axes:
                arr = arr[np.newaxis] if missing == "n" else arr[..., np.newaxis]
                axes = ["n", *axes] if missing == "n" else [*axes, "c"]
        return np.transpose(arr, [axes.index(a) for a in self.canonical()])

    def from_canonical(self, arr: np.ndarray) -> np.ndarray:
        """Inverse of `to_canonical`: `(N, T, *space, C)` -> this layout (dropping unit n/c axes it lacks)."""
        canon = list(self.canonical())
        full = [a for a in self.axes]
        for missing in ("n", "c"):
            if missing not in full:
                full = ["n", *full] if missing == "n" else [*full, "c"]
        out = np.transpose(arr, [canon.index(a) for a in full])
        if "n" not in self.axes:
            out = out[0]
        if "c" not in self.axes:
            out = out[..., 0]
        return out
