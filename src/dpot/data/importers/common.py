"""Shared machinery of the importers: a conversion plan (metadata + per-split trajectory readers), split
carving, option parsing, and the streaming, all-or-nothing writer of one canonical dataset folder."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dpot.data.format import SPLITS, DatasetMeta, SplitWriter
from dpot.errors import DpotError
from dpot.io import atomic_path

BLOCK_BYTES = 1 << 26  # trajectories are read and written in blocks of at most ~64 MiB
WHOLE = "whole"  # `split` value for one file of a split-files conversion: every trajectory goes to train


@dataclass
class ConvertOptions:
    """Command-line options shared by the importers (None = let the importer decide from the source)."""

    name: str | None = None
    pde: str | None = None
    dt: float | None = None
    domain: str | None = None
    boundary: str | None = None
    channels: list[str] | None = None
    split: str = "0.8,0.1,0.1"
    overwrite: bool = False
    # arrays importer
    layout: str | None = None
    fields: list[str] | None = None
    inputs: list[str] | None = None
    targets: list[str] | None = None
    input_channels: list[str] | None = None
    # fno-mat importer
    with_initial: bool = False
    # cfdbench importer
    frames: int = 20


# read(start, stop) -> {"fields": (b, T, *space, C)} or {"inputs", "targets"}; optionally "params" (b, K)
Reader = Callable[[int, int], dict[str, np.ndarray]]


@dataclass
class Part:
    """`n` consecutive trajectories of one source, read in blocks by `read(start, stop)`; `label` names the
    source, `offset` is the index of the first one there (for error messages)."""

    n: int
    read: Reader
    label: str
    offset: int = 0

    def slice(self, start: int, stop: int) -> Part:
        def read(a: int, b: int) -> dict[str, np.ndarray]:
            return self.read(start + a, start + b)

        return Part(stop - start, read, self.label, self.offset + start)


@dataclass
class Plan:
    """Everything needed to write one canonical dataset: metadata, sample shapes and the readers per split."""

    meta: DatasetMeta
    splits: dict[str, list[Part]]
    frame_shape: tuple[int, ...] | None = None  # (T, *space, C) for time-dependent data
    inputs_shape: tuple[int, ...] | None = None  # (*space, C_in) for steady-state data
    targets_shape: tuple[int, ...] | None = None
    n_params: int = 0
    channels_renamable: bool = True  # False when the importer already used --channels to select variables

    def sample_bytes(self) -> int:
        shapes = [self.frame_shape] if self.frame_shape else [self.inputs_shape, self.targets_shape]
        return 4 * sum(math.prod(s) for s in shapes if s)


def h5_open(path: str | Path):
    """Open an HDF5 file for reading; a truncated or corrupt file becomes one clear error."""
    import h5py

    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise DpotError(f"{path}: no such file") from None
    except OSError as exc:
        raise DpotError(f"{path}: cannot read HDF5 file ({_short(exc)}); it may be truncated or corrupt") from None


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def h5_get(group, key: str, path: str | Path):
    """`group[key]`, or an error naming the missing key and the keys that exist."""
    if key not in group:
        have = ", ".join(sorted(group.keys())) or "none"
        where = group.name if group.name != "/" else "the file root"
        raise DpotError(f"{path}: key {key!r} missing in {where} (found: {have})")
    return group[key]


def attr_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def attr_strs(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [attr_str(value)]
    return [attr_str(v) for v in np.asarray(value).ravel()]


def domain_from_coords(coords: np.ndarray) -> list[float]:
    """Extent of a uniform axis from its (cell-centred) coordinates: n cells of width d around the points."""
    x = np.asarray(coords, dtype=np.float64).ravel()
    if x.size < 2:
        return [0.0, 1.0]
    d = (x[-1] - x[0]) / (x.size - 1)
    return [float(x[0] - d / 2), float(x[-1] + d / 2)]


def dt_from_times(t: np.ndarray, where: str) -> float:
    """Time step from a coordinate array (first row of a per-sample array); must be uniform and > 0."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim > 1:
        t = t.reshape(-1, t.shape[-1])[0]
    if t.size < 2:
        return 1.0
    d = np.diff(t)
    if not np.all(d > 0) or not np.allclose(d, d[0], rtol=1e-3, atol=1e-12):
        raise DpotError(f"{where}: time coordinates are not uniformly increasing; pass --dt")
    return float(d[0])


def params_from_name(stem: str, names: dict[str, str]) -> dict[str, float]:
    """Numbers encoded in a file name, e.g. `..._Nu0.001_...` with names={"Nu": "nu"} -> {"nu": 0.001}."""
    out = {}
    for tag, key in names.items():
        m = re.search(rf"(?:^|[_\-]){tag}([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", stem)
        if m:
            out[key] = float(m.group(1))
    return out


def _split_values(text: str) -> tuple[list[float], bool]:
    """`--split` as three numbers and whether they are fractions (summing to 1) rather than counts."""
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 3 or any(v < 0 for v in vals):
        raise DpotError(f"bad --split {text!r}: give three fractions (0.8,0.1,0.1) or three counts (1000,100,100)")
    if abs(sum(vals) - 1.0) < 1e-6:
        return vals, True
    if all(v == int(v) for v in vals):
        return vals, False
    raise DpotError(f"bad --split {text!r}: fractions must sum to 1, counts must be whole numbers")


def parse_split(text: str, n: int) -> list[int]:
    """`--split`: three fractions summing to 1 (e.g. 0.8,0.1,0.1) or three counts (e.g. 1000,100,100);
    trajectories are assigned in source order: train first, then val, then test."""
    vals, fractions = _split_values(text)
    if fractions:
        n_train, n_val = round(vals[0] * n), round(vals[1] * n)
        counts = [n_train, n_val, n - n_train - n_val]
    else:
        counts = [int(v) for v in vals]
        if sum(counts) > n:
            raise DpotError(f"--split {text} asks for {sum(counts)} trajectories but the source has {n}")
    for name, c in zip(SPLITS, counts):
        if c < 1:
            raise DpotError(
                f"--split {text} leaves split {name!r} empty ({n} trajectories in the source); "
                "every split needs at least one trajectory"
            )
    return counts


def carve(parts: Sequence[Part], split: str) -> dict[str, list[Part]]:
    """Assign the concatenated trajectories of `parts` to train/val/test by `--split`, in order (`WHOLE`: all
    to train)."""
    if split == WHOLE:
        return {"train": list(parts), "val": [], "test": []}
    return assign(parts, parse_split(split, sum(p.n for p in parts)))


def assign(parts: Sequence[Part], counts: Sequence[int]) -> dict[str, list[Part]]:
    """The first counts[0] trajectories of `parts` to train, the next counts[1] to val, then counts[2] to test."""
    out: dict[str, list[Part]] = {}
    bounds = np.cumsum([0, *counts])
    offsets = np.cumsum([0, *(p.n for p in parts)])
    for s, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:]):
        out[s] = []
        for p, po in zip(parts, offsets[:-1]):
            a, b = max(lo, po), min(hi, po + p.n)
            if a < b:
                out[s].append(p.slice(int(a - po), int(b - po)))
    return out


def carve_from_train(parts: Sequence[Part], split: str, missing: Sequence[str]) -> dict[str, list[Part]]:
    """Split files: each split in `missing` (val and/or test) takes its `--split` share of the train file's
    trajectories (fractions are of the train file), from its end; train keeps the rest."""
    n = sum(p.n for p in parts)
    vals, fractions = _split_values(split)
    counts = [0] + [
        (round(v * n) if fractions else int(v)) if s in missing else 0 for s, v in zip(SPLITS[1:], vals[1:])
    ]
    for s, c in zip(SPLITS[1:], counts[1:]):
        if s in missing and c < 1:
            raise DpotError(
                f"--split {split} carves no {s!r} trajectories from the {n} of the train file; give "
                f"{s}=FILE or a larger --split share"
            )
    counts[0] = n - sum(counts)
    if counts[0] < 1:
        raise DpotError(
            f"--split {split} carves {sum(counts[1:])} trajectories for {', '.join(missing)} but the "
            f"train file has only {n}"
        )
    return assign(parts, counts)


def warn(message: str) -> None:
    """A one-line warning on stderr (conversion goes on)."""
    print(f"warning: {message}", file=sys.stderr)


def parse_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise DpotError(f"empty list {text!r}: give comma-separated names")
    return names


def parse_domain(text: str, ndim: int) -> list[list[float]]:
    """`--domain`: `lo:hi` for every axis, or one `lo:hi` per axis separated by commas (e.g. `0:1,0:2`)."""
    items = text.split(",")
    try:
        pairs = [[float(v) for v in item.split(":")] for item in items]
    except ValueError:
        pairs = []
    if not pairs or any(len(p) != 2 or p[1] <= p[0] for p in pairs):
        raise DpotError(f"bad --domain {text!r}: give lo:hi (all axes) or lo:hi,lo:hi,... with hi > lo")
    if len(pairs) == 1:
        pairs = pairs * ndim
    if len(pairs) != ndim:
        raise DpotError(f"--domain {text!r} has {len(pairs)} axes but the data has {ndim}")
    return pairs


def parse_boundary(text: str, ndim: int) -> list[str]:
    """`--boundary`: one word for every axis, or one per axis separated by commas."""
    words = [w.strip() for w in text.split(",")]
    if len(words) == 1:
        words = words * ndim
    if len(words) != ndim:
        raise DpotError(f"--boundary {text!r} has {len(words)} entries but the data has {ndim} axes")
    return words


def apply_overrides(plan: Plan, opts: ConvertOptions) -> Plan:
    """Apply --name/--pde/--dt/--domain/--boundary/--channels on top of what the importer read."""
    meta, changes = plan.meta, {}
    if opts.name:
        changes["name"] = opts.name
    if opts.pde:
        changes["pde"] = opts.pde
    if opts.dt is not None:
        if not opts.dt > 0:
            raise DpotError(f"bad --dt {opts.dt}: must be > 0")
        changes["dt"] = float(opts.dt)
    if opts.domain:
        changes["domain"] = parse_domain(opts.domain, meta.ndim)
    if opts.boundary:
        changes["boundary"] = parse_boundary(opts.boundary, meta.ndim)
    if opts.channels and plan.channels_renamable:
        if len(opts.channels) != len(meta.channels):
            raise DpotError(
                f"--channels names {len(opts.channels)} channels but the data has "
                f"{len(meta.channels)} ({', '.join(meta.channels)})"
            )
        changes["channels"] = list(opts.channels)
    if opts.input_channels and meta.steady:
        if len(opts.input_channels) != len(meta.input_channels):
            raise DpotError(
                f"--input-channels names {len(opts.input_channels)} channels but the inputs have "
                f"{len(meta.input_channels)}"
            )
        changes["input_channels"] = list(opts.input_channels)
    if changes:
        plan = replace(plan, meta=replace(meta, **changes))  # replace() re-runs DatasetMeta's validation
    return plan


def write_plan(plan: Plan, out: str | Path, overwrite: bool = False, progress: bool = True) -> Path:
    """Stream every split of `plan` into `out/<name>/{train,val,test}.h5` (an evaluation-only plan has no train
    and writes only the splits it holds); the folder appears only when all splits are complete, so a failure
    (bad values, unreadable source) leaves no partial output."""
    from tqdm import tqdm

    meta = plan.meta
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", meta.name):
        raise DpotError(f"dataset name {meta.name!r} is not a plain folder name; pass --name")
    target = Path(out) / meta.name
    if target.exists() and not overwrite:
        raise DpotError(f"{target} already exists; pass --overwrite to replace it or --name to pick another name")
    names = [s for s in SPLITS if s in plan.splits]
    for s in names if "train" not in names else SPLITS:
        if not plan.splits.get(s) or sum(p.n for p in plan.splits[s]) < 1:
            raise DpotError(f"{meta.name}: split {s!r} would be empty; adjust --split")
    block = max(1, BLOCK_BYTES // max(plan.sample_bytes(), 1))
    total = sum(p.n for s in names for p in plan.splits[s])
    with (
        atomic_path(target) as tmp,
        tqdm(total=total, desc=f"convert {meta.name}", unit="traj", disable=not progress) as bar,
    ):
        tmp.mkdir()
        for s in names:
            parts = plan.splits[s]
            n = sum(p.n for p in parts)
            with SplitWriter(
                tmp / f"{s}.h5",
                meta,
                n,
                plan.frame_shape,
                inputs_shape=plan.inputs_shape,
                targets_shape=plan.targets_shape,
                n_params=plan.n_params,
            ) as w:
                i = 0
                for p in parts:
                    for a in range(0, p.n, block):
                        b = min(p.n, a + block)
                        data = _read_checked(plan, p, a, b)
                        w.write(slice(i, i + b - a), **data)
                        i += b - a
                        bar.update(b - a)
    return target


def _read_checked(plan: Plan, part: Part, a: int, b: int) -> dict[str, np.ndarray]:
    """Read trajectories a..b of `part`; check shapes and finiteness, naming the source trajectory."""
    first, last = part.offset + a, part.offset + b - 1
    try:
        data = part.read(a, b)
    except OSError as exc:
        raise DpotError(
            f"{part.label}: cannot read trajectories {first}..{last} ({_short(exc)}); "
            "the file may be truncated or corrupt"
        ) from None
    expect = {
        "fields": plan.frame_shape,
        "inputs": plan.inputs_shape,
        "targets": plan.targets_shape,
        "params": (plan.n_params,) if plan.n_params else None,
    }
    for key, arr in data.items():
        if expect.get(key) is None:
            continue
        want = (b - a, *expect[key])
        if tuple(arr.shape) != want:
            raise DpotError(
                f"{part.label}: {key} of trajectories {first}..{last} has shape "
                f"{tuple(arr.shape)}, expected {want} (all trajectories must share one shape)"
            )
        bad = ~np.isfinite(arr.reshape(b - a, -1)).all(axis=1)
        if bad.any():
            k = first + int(np.argmax(bad))
            raise DpotError(
                f"{part.label}: trajectory {k} contains NaN or Inf in {key}; clean the source or drop that trajectory"
            )
        data[key] = arr.astype(np.float64 if key == "params" else np.float32, copy=False)
    return data
