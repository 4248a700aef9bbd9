"""Plain arrays the other importers do not know: `.npz`, `.npy`, `.pt` (tensors only, loaded with
`weights_only=True`) or `.h5`/`.hdf5`, with named keys and a user-given axis order (`--layout "n t x y c"`).
Time-dependent data: `--fields KEY[,KEY...]`; steady-state pairs: `--inputs KEY --targets KEY`. Several keys
are stacked as channels. `.npy`, `.pt` and `.h5` are read lazily (memory-mapped / per-trajectory slices)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from dpot.data.format import DatasetMeta
from dpot.data.importers.common import ConvertOptions, Part, Plan, carve, h5_open
from dpot.errors import DpotError

SUFFIXES = (".npz", ".npy", ".pt", ".pth", ".h5", ".hdf5")


def parse_layout(text: str, steady: bool) -> tuple[list[str], list[str]]:
    """`"n t x y c"` (spaces or commas) -> (axis names, space axis names). n, t and c are optional except that
    time-dependent data needs t and steady-state data must not have it."""
    axes = [a for a in re.split(r"[\s,]+", text.strip()) if a]
    if not axes or len(set(axes)) != len(axes) or any(not re.fullmatch(r"[A-Za-z]\w*", a) for a in axes):
        raise DpotError(f'bad --layout {text!r}: give distinct axis names, e.g. "n t x y c"')
    space = [a for a in axes if a not in ("n", "t", "c")]
    if not space:
        raise DpotError(f"bad --layout {text!r}: name at least one space axis (x, y, z)")
    if steady and "t" in axes:
        raise DpotError(f"bad --layout {text!r}: steady-state pairs (--inputs/--targets) have no t axis")
    if not steady and "t" not in axes:
        raise DpotError(f"bad --layout {text!r}: time-dependent --fields need a t axis (or use --inputs/--targets)")
    return axes, space


class Container:
    """Named arrays of one file; `get(key)` gives an array-like with numpy indexing (lazy where possible)."""

    def __init__(self, path: Path):
        self.path, suffix = path, path.suffix.lower()
        if suffix not in SUFFIXES:
            raise DpotError(f"{path}: unknown array file type {suffix!r}; use {', '.join(SUFFIXES)}")
        try:
            if suffix == ".npz":
                self._data = np.load(path, allow_pickle=False)
                self.keys = list(self._data.files)
            elif suffix == ".npy":
                self._data = {path.stem: np.load(path, mmap_mode="r", allow_pickle=False)}
                self.keys = [path.stem]
            elif suffix in (".pt", ".pth"):
                self._data = self._load_torch(path)
                self.keys = list(self._data)
            else:
                self._data = h5_open(path)
                self.keys = []
                self._data.visititems(lambda name, obj: self.keys.append(name) if hasattr(obj, "shape") else None)
        except DpotError:
            raise
        except (OSError, ValueError, RuntimeError, zipfile.BadZipFile) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DpotError(f"{path}: cannot read ({first}); the file may be truncated or corrupt") from None

    @staticmethod
    def _load_torch(path: Path) -> dict:
        import pickle

        import torch

        try:
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:  # files in the legacy (non-zip) format cannot be memory-mapped
                if "mmap" not in str(exc):
                    raise
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise DpotError(
                f"{path}: holds more than tensors ({str(exc).splitlines()[0]}); only tensors and "
                "dicts of tensors can be converted"
            ) from None
        if isinstance(obj, torch.Tensor):
            obj = {path.stem: obj}
        if not isinstance(obj, dict):
            raise DpotError(f"{path}: expected a tensor or a dict of tensors, found {type(obj).__name__}")
        return {
            str(k): v.numpy() if isinstance(v, torch.Tensor) else v
            for k, v in obj.items()
            if isinstance(v, torch.Tensor)
        }

    def get(self, key: str):
        if key not in self.keys:
            raise DpotError(f"{self.path}: key {key!r} missing (found: {', '.join(self.keys) or 'none'})")
        return self._data[key]


class Stacked:
    """Several source arrays in one layout, read trajectory blocks at a time into canonical order and stacked
    as channels: `(n, [t,] *space, C)`."""

    def __init__(self, box: Container, keys: list[str], axes: list[str], canon: list[str]):
        self.arrays = [box.get(k) for k in keys]
        self.axes, self.canon = axes, canon
        shapes = []
        for k, arr in zip(keys, self.arrays):
            if arr.ndim != len(axes):
                raise DpotError(
                    f"{box.path}: {k!r} has {arr.ndim} axes {tuple(arr.shape)} but --layout "
                    "names "
                    f"{len(axes)} ({' '.join(axes)})"
                )
            sizes = dict(zip(axes, arr.shape))
            shapes.append(tuple(sizes.get(a, 1) for a in canon))
        for k, s in zip(keys, shapes):
            if s[:-1] != shapes[0][:-1]:
                raise DpotError(f"{box.path}: {k!r} and {keys[0]!r} differ in shape outside the channel axis")
        self.n = dict(zip(axes, self.arrays[0].shape)).get("n", 1)
        self.counts = [dict(zip(axes, a.shape)).get("c", 1) for a in self.arrays]
        self.sample_shape = (*shapes[0][1:-1], sum(self.counts))
        self.names = [k if c == 1 else f"{k}{i}" for k, c in zip(keys, self.counts) for i in range(c)]

    def read(self, a: int, b: int) -> np.ndarray:
        out = []
        for arr in self.arrays:
            if "n" in self.axes:
                idx = tuple(slice(a, b) if ax == "n" else slice(None) for ax in self.axes)
                block, axes = np.asarray(arr[idx], dtype=np.float32), list(self.axes)
            else:
                block, axes = np.asarray(arr[...], dtype=np.float32)[None], ["n", *self.axes]
            if "c" not in axes:
                block, axes = block[..., None], [*axes, "c"]
            out.append(block.transpose([axes.index(x) for x in self.canon]))
        return np.concatenate(out, axis=-1)


def build(src: Path, opts: ConvertOptions) -> Plan:
    if src.is_dir():
        raise DpotError(f"{src} is a directory; the arrays format converts one file")
    steady = bool(opts.inputs or opts.targets)
    if steady and not (opts.inputs and opts.targets):
        raise DpotError("steady-state data needs both --inputs and --targets")
    if steady and opts.fields:
        raise DpotError("give either --fields (time-dependent) or --inputs/--targets (steady-state), not both")
    if not opts.layout:
        raise DpotError('the arrays format needs --layout, e.g. --layout "n t x y c"')
    axes, space = parse_layout(opts.layout, steady)
    box = Container(src)
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", src.stem)
    ndim = len(space)
    common = dict(
        name=name, pde="other", space=space, domain=[[0.0, 1.0]] * ndim, boundary=["periodic"] * ndim, source=str(src)
    )
    if steady:
        canon = ["n", *space, "c"]
        ins = Stacked(box, opts.inputs, axes, canon)
        outs = Stacked(box, opts.targets, axes, canon)
        if ins.n != outs.n or ins.sample_shape[:-1] != outs.sample_shape[:-1]:
            raise DpotError(
                f"{src}: inputs {ins.sample_shape} and targets {outs.sample_shape} differ in "
                "samples "
                f"({ins.n} vs {outs.n}) or grid"
            )
        meta = DatasetMeta(
            channels=outs.names,
            input_channels=ins.names,
            steady=True,
            params={"inputs": opts.inputs, "targets": opts.targets, "layout": opts.layout},
            **common,
        )

        def read_pair(a: int, b: int) -> dict[str, np.ndarray]:
            return {"inputs": ins.read(a, b), "targets": outs.read(a, b)}

        return Plan(
            meta,
            carve([Part(ins.n, read_pair, str(src))], opts.split),
            inputs_shape=ins.sample_shape,
            targets_shape=outs.sample_shape,
        )
    keys = opts.fields or (box.keys if len(box.keys) == 1 else None)
    if not keys:
        raise DpotError(f"{src}: say which keys hold the data with --fields (found: {', '.join(box.keys)})")
    stack = Stacked(box, keys, axes, ["n", "t", *space, "c"])
    meta = DatasetMeta(channels=stack.names, params={"fields": keys, "layout": opts.layout}, **common)

    def read(a: int, b: int) -> dict[str, np.ndarray]:
        return {"fields": stack.read(a, b)}

    return Plan(meta, carve([Part(stack.n, read, str(src))], opts.split), frame_shape=stack.sample_shape)
