"""The canonical dataset format: one folder per dataset, `{train,val,test}.h5` inside.

Time-dependent data: `fields` float32 `(N, T, *space, C)`. Steady-state data: `inputs` `(N, *space, C_in)` and
`targets` `(N, *space, C_out)`. Optional `params` `(N, K)` and a static `mask` `(*space)`. Metadata lives in HDF5
attributes (see `DatasetMeta`). Files are written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dpot.errors import DpotError
from dpot.io import atomic_path

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
BOUNDARIES = ("periodic", "neumann", "dirichlet", "wall", "open")
# The `pde` vocabulary: one word per family of equations (docs/data-format.md explains each).
PDES = (
    "ns2d_vorticity",
    "ns2d_buoyancy",
    "ns2d_incompressible",
    "compressible_ns",
    "shallow_water",
    "diffusion_reaction",
    "cavity",
    "darcy",
    "ns3d",
    "burgers",
    "advection",
    "reaction_diffusion",
    "wave",
    "euler",
    "mhd",
    "diffusion_sorption",
    "other",
)
_CHUNK_TARGET_BYTES = 1 << 16  # a chunk holds whole frames of one trajectory, at least 64 KiB when frames are small


@dataclass
class DatasetMeta:
    """What a dataset is: stored as HDF5 attributes on every split file."""

    name: str
    pde: str
    channels: list[str]
    space: list[str]
    domain: list[list[float]]  # per axis [lo, hi]
    boundary: list[str]  # per axis, one of BOUNDARIES
    dt: float = 1.0  # physical time between stored frames (1.0 for steady-state data)
    params: dict[str, Any] = field(default_factory=dict)  # generator or source parameters (stored as params_json)
    param_names: list[str] = field(default_factory=list)  # column names of the `params` array, if any
    source: str = ""
    steady: bool = False
    input_channels: list[str] = field(default_factory=list)  # steady-state only: names of `inputs` channels
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.pde not in PDES:
            raise DpotError(f"unknown pde {self.pde!r}; use one of: {', '.join(PDES)}")
        if len(self.domain) != len(self.space) or len(self.boundary) != len(self.space):
            raise DpotError(
                f"dataset {self.name!r}: space {self.space}, domain {self.domain} and boundary "
                f"{self.boundary} must have one entry per axis"
            )
        bad = [b for b in self.boundary if b not in BOUNDARIES]
        if bad:
            raise DpotError(f"dataset {self.name!r}: unknown boundary {bad}; use {', '.join(BOUNDARIES)}")

    @property
    def ndim(self) -> int:
        return len(self.space)

    def to_attrs(self) -> dict[str, Any]:
        d = asdict(self)
        d["params_json"] = json.dumps(d.pop("params"))
        d["domain"] = np.asarray(self.domain, dtype=np.float64)
        d["steady"] = int(self.steady)
        return {k: v for k, v in d.items() if not (isinstance(v, list) and not v)}

    @classmethod
    def from_attrs(cls, attrs: Any, path: str = "") -> DatasetMeta:
        try:

            def strs(key: str) -> list[str]:
                return [s.decode() if isinstance(s, bytes) else str(s) for s in attrs.get(key, [])]

            return cls(
                name=str(attrs["name"]),
                pde=str(attrs["pde"]),
                channels=strs("channels"),
                space=strs("space"),
                domain=np.asarray(attrs["domain"], dtype=float).reshape(-1, 2).tolist(),
                boundary=strs("boundary"),
                dt=float(attrs.get("dt", 1.0)),
                params=json.loads(attrs.get("params_json", "{}")),
                param_names=strs("param_names"),
                source=str(attrs.get("source", "")),
                steady=bool(attrs.get("steady", 0)),
                input_channels=strs("input_channels"),
                format_version=int(attrs.get("format_version", FORMAT_VERSION)),
            )
        except KeyError as exc:
            raise DpotError(f"{path}: not a canonical dpot dataset file (attribute {exc} missing)") from None


def frame_chunks(shape: tuple[int, ...], itemsize: int = 4) -> tuple[int, ...]:
    """Chunk shape for `(N, T, *space, C)`: whole frames of one trajectory, a few frames when frames are small."""
    frame_bytes = itemsize * math.prod(shape[2:])
    k = max(1, min(shape[1], _CHUNK_TARGET_BYTES // max(frame_bytes, 1)))
    return (1, k, *shape[2:])


class SplitWriter:
    """Write one split file trajectory by trajectory (bounded memory); the file appears only on `close()`.

    Use as a context manager; an exception inside the block leaves nothing behind.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        meta: DatasetMeta,
        n: int,
        frame_shape: tuple[int, ...] | None = None,
        *,
        inputs_shape: tuple[int, ...] | None = None,
        targets_shape: tuple[int, ...] | None = None,
        n_params: int = 0,
        mask: np.ndarray | None = None,
    ):
        self.path, self.meta, self.n = Path(path), meta, n
        self._ctx = atomic_path(self.path)
        self._file = h5py.File(self._ctx.__enter__(), "w")
        try:
            self._create(meta, n, frame_shape, inputs_shape, targets_shape, n_params, mask)
            self._reserve()
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def _create(self, meta, n, frame_shape, inputs_shape, targets_shape, n_params, mask) -> None:
        for key, value in meta.to_attrs().items():
            self._file.attrs[key] = value
        if meta.steady:
            if inputs_shape is None or targets_shape is None:
                raise DpotError("steady-state datasets need inputs_shape and targets_shape")
            for key, shp in (("inputs", inputs_shape), ("targets", targets_shape)):
                full = (n, *shp)
                self._file.create_dataset(key, shape=full, dtype="f4", chunks=(1, *shp))
        else:
            if frame_shape is None:
                raise DpotError("time-dependent datasets need frame_shape = (T, *space, C)")
            if len(frame_shape) != meta.ndim + 2 or frame_shape[-1] != len(meta.channels):
                raise DpotError(
                    f"dataset {meta.name!r}: frame shape {frame_shape} does not match space "
                    f"{meta.space} and {len(meta.channels)} channels"
                )
            full = (n, *frame_shape)
            self._file.create_dataset("fields", shape=full, dtype="f4", chunks=frame_chunks(full))
        if n_params:
            self._file.create_dataset("params", shape=(n, n_params), dtype="f8")
        if mask is not None:
            self._file.create_dataset("mask", data=np.asarray(mask, dtype=np.float32))

    def write(
        self,
        i: int | slice,
        *,
        fields: np.ndarray | None = None,
        inputs: np.ndarray | None = None,
        targets: np.ndarray | None = None,
        params: np.ndarray | None = None,
    ) -> None:
        """Store trajectory `i` (or a slice of them). Non-finite values are refused with the trajectory named."""
        for key, arr in (("fields", fields), ("inputs", inputs), ("targets", targets), ("params", params)):
            if arr is None:
                continue
            arr = np.asarray(arr)
            if not np.all(np.isfinite(arr)):
                raise DpotError(f"dataset {self.meta.name!r}: {key} of trajectory {i} contains NaN or Inf")
            self._file[key][i] = arr

    def _reserve(self) -> None:
        """Claim the file's disk space up front, so that a full disk fails here, cleanly, and not inside HDF5,
        which cannot close a file it failed to write (the interpreter then crashes at exit)."""
        total = 1 << 16  # superblock and headers; chunk indexes are counted per chunk below
        for ds in self._file.values():
            total += ds.dtype.itemsize * math.prod(ds.shape)
            if ds.chunks:
                total += 96 * math.prod(-(-s // c) for s, c in zip(ds.shape, ds.chunks))
        try:
            os.posix_fallocate(self._file.id.get_vfd_handle(), 0, total)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:  # e.g. no fallocate on this file system: write as before
                return
            raise DpotError(
                f"disk full writing {self.path} ({total / 2**20:.1f} MiB needed): free space and rerun"
            ) from None

    def close(self) -> None:
        try:
            self._file.close()
        except BaseException as exc:
            self._discard(exc)
            raise
        self._ctx.__exit__(None, None, None)

    def _discard(self, exc: BaseException) -> None:
        """Let atomic_path remove the temporary file (the caller re-raises `exc`)."""
        with contextlib.suppress(BaseException):
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            with contextlib.suppress(OSError):
                self._file.close()
            self._discard(exc)


def write_split(
    path: str | os.PathLike,
    meta: DatasetMeta,
    *,
    fields: np.ndarray | None = None,
    inputs: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    params: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> Path:
    """Write a whole split from in-memory arrays (small data; use `SplitWriter` to stream large data)."""
    if meta.steady:
        if inputs is None or targets is None:
            raise DpotError(f"dataset {meta.name!r} is steady-state: give inputs and targets")
        n = len(inputs)
        kw = dict(inputs_shape=inputs.shape[1:], targets_shape=targets.shape[1:])
    else:
        if fields is None:
            raise DpotError(f"dataset {meta.name!r} is time-dependent: give fields (N, T, *space, C)")
        n = len(fields)
        kw = dict(frame_shape=fields.shape[1:])
    n_params = 0 if params is None else np.asarray(params).reshape(n, -1).shape[1]
    with SplitWriter(path, meta, n, n_params=n_params, mask=mask, **kw) as w:
        w.write(
            slice(None),
            fields=fields,
            inputs=inputs,
            targets=targets,
            params=None if params is None else np.asarray(params).reshape(n, -1),
        )
    return Path(path)


class Split:
    """Read access to one split file. Opens the HDF5 file lazily, so it is safe to pass to DataLoader workers
    (each process opens its own handle)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise DpotError(f"{self.path}: no such dataset file")
        try:
            with h5py.File(self.path, "r") as f:
                self.meta = DatasetMeta.from_attrs(f.attrs, str(self.path))
                key = "inputs" if self.meta.steady else "fields"
                if key not in f:
                    raise DpotError(f"{self.path}: dataset {key!r} missing (file is not a complete canonical split)")
                self.shape = tuple(f[key].shape)
                self.targets_shape = tuple(f["targets"].shape) if self.meta.steady else None
                self.has_params = "params" in f
                self.has_mask = "mask" in f
        except OSError as exc:
            raise DpotError(f"{self.path}: cannot read HDF5 file ({exc}); it may be truncated or corrupt") from None
        self._file: h5py.File | None = None
        self._pid: int | None = None
        expect = self.meta.ndim + (2 if self.meta.steady else 3)
        if len(self.shape) != expect:
            raise DpotError(
                f"{self.path}: expected {expect} axes (N, {'' if self.meta.steady else 'T, '}"
                f"{', '.join(self.meta.space)}, C), found shape {self.shape}"
            )

    @property
    def file(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def n_frames(self) -> int:
        return 1 if self.meta.steady else self.shape[1]

    @property
    def space_shape(self) -> tuple[int, ...]:
        return self.shape[1:-1] if self.meta.steady else self.shape[2:-1]

    @property
    def n_channels(self) -> int:
        return self.shape[-1]

    def frames(self, i: int, start: int = 0, stop: int | None = None, step: int = 1) -> np.ndarray:
        """Frames `start:stop:step` of trajectory `i` as float32 `(T', *space, C)`: reads only those frames."""
        return np.asarray(self.file["fields"][i, start:stop:step], dtype=np.float32)

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Steady-state sample `i`: `(inputs, targets)`."""
        return (
            np.asarray(self.file["inputs"][i], dtype=np.float32),
            np.asarray(self.file["targets"][i], dtype=np.float32),
        )

    def params(self) -> np.ndarray | None:
        return np.asarray(self.file["params"]) if self.has_params else None

    def mask(self) -> np.ndarray | None:
        return np.asarray(self.file["mask"]) if self.has_mask else None

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None
        return state


def _has_split(folder: Path) -> bool:
    return any((folder / f"{s}.h5").is_file() for s in SPLITS)


def dataset_dirs(root: str | os.PathLike) -> list[Path]:
    """The dataset folders under `root` (a folder with a split file, train.h5 or, for an evaluation-only
    dataset, test.h5), or `root` itself if it is one; sorted by name."""
    root = Path(root)
    if not root.exists():
        raise DpotError(f"{root}: no such directory")
    if not root.is_dir():
        raise DpotError(f"{root}: not a folder; give a dataset folder (<name>/train.h5) or a folder of them")
    if _has_split(root):
        return [root]
    found = sorted(p for p in root.iterdir() if p.is_dir() and _has_split(p))
    if not found:
        raise DpotError(
            f"{root}: no canonical datasets found (expected <name>/train.h5 folders; "
            "create some with `dpot generate` or `dpot convert`)"
        )
    return found


def open_split(dataset_dir: str | os.PathLike, split: str = "train") -> Split:
    """Open `dataset_dir/<split>.h5`; a dataset without that split (e.g. an evaluation-only one opened for
    training) is one error naming the missing split."""
    if split not in SPLITS:
        raise DpotError(f"unknown split {split!r}; use one of {SPLITS}")
    folder = Path(dataset_dir)
    path = folder / f"{split}.h5"
    have = [s for s in SPLITS if (folder / f"{s}.h5").is_file()]
    if not path.is_file() and have:
        hint = (
            "; an evaluation-only dataset: use it with `dpot evaluate`, or convert a training file with train=FILE"
            if split == "train"
            else ""
        )
        raise DpotError(
            f"{path}: no such dataset file (dataset {folder.name!r} has no {split!r} split, only "
            f"{', '.join(have)}{hint})"
        )
    return Split(path)
