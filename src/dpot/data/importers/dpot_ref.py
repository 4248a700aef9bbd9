"""The processed data of the reference DPOT code: HDF5 files holding one array `data`, either one file per split
with (N, X, Y, T[, C]) (e.g. `ns2d_1e-5_train.hdf5`) or "scatter storage", a folder of per-trajectory files
`data_{i}.hdf5` each holding (X, Y, T[, C]); 3D data has Z before T (and always a channel axis). SRC: one such
file, one scatter folder, or a dataset folder with `train/` and `test/` inside (source splits; val is carved
from train by --split). The files carry no metadata: pde, channels and boundary come from the dataset name
DPOT uses (ns2d_fno_*, ns2d_pdb_*, ns3d_pdb_*, swe_pdb, dr_pdb, cfdbench, ns2d_pda, ns2d_cond_pda), dt is 1.0."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dpot.data.format import SPLITS, DatasetMeta
from dpot.data.importers.common import (
    WHOLE,
    ConvertOptions,
    Part,
    Plan,
    carve,
    carve_from_train,
    h5_get,
    h5_open,
    warn,
)
from dpot.errors import DpotError

SUFFIXES = (".hdf5", ".h5")
# name pattern -> (pde, channels in DPOT's order, boundary); the order follows DPOT's preprocessing
KNOWN = [
    (r"ns2d_(fno|\d)", "ns2d_vorticity", ["w"], "periodic"),
    (r"ns2d_pdb", "compressible_ns", ["Vx", "Vy", "density", "pressure"], "periodic"),
    (r"ns3d_pdb", "compressible_ns", ["Vx", "Vy", "Vz", "pressure", "density"], "periodic"),
    (r"swe_pdb", "shallow_water", ["h"], "neumann"),
    (r"dr_pdb", "diffusion_reaction", ["u", "v"], "neumann"),
    (r"cfdbench", "ns2d_incompressible", ["u", "v", "mask"], "wall"),
    (r"ns2d_(cond_)?pda", "ns2d_buoyancy", ["smoke", "vx", "vy"], "wall"),
]


class Source:
    """One split's trajectories: a single file's `data` (N, ...) or a scatter folder of `data_{i}` files."""

    def __init__(self, path: Path):
        self.path = path
        if path.is_dir():
            files = [p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file()]
            if not files:
                raise DpotError(f"{path}: no .hdf5 files (DPOT scatter storage holds data_0.hdf5, data_1.hdf5, ...)")
            self.files = sorted(
                files, key=lambda p: (int(m.group()) if (m := re.search(r"\d+", p.stem)) else -1, p.name)
            )
            self.n = len(self.files)
            self.sample = tuple(h5_get(h5_open(self.files[0]), "data", self.files[0]).shape)
        else:
            self.files = []
            self.data = h5_get(h5_open(path), "data", path)
            self.n, self.sample = self.data.shape[0], tuple(self.data.shape[1:])

    def read(self, a: int, b: int) -> np.ndarray:
        if not self.files:
            return np.asarray(self.data[a:b], dtype=np.float32)
        out = []
        for p in self.files[a:b]:
            with h5_open(p) as f:
                arr = np.asarray(h5_get(f, "data", p), dtype=np.float32)
            if arr.shape != self.sample:
                raise DpotError(f"{p}: data has shape {arr.shape}, expected {self.sample} like {self.files[0].name}")
            out.append(arr)
        return np.stack(out)


def build(src: Path, opts: ConvertOptions) -> Plan:
    if src.is_dir() and (src / "train").is_dir() and (src / "test").is_dir():
        sources = {"train": Source(src / "train"), "test": Source(src / "test")}
        name = src.name
    elif src.is_dir() or src.suffix in SUFFIXES:
        sources = {"all": Source(src)}
        name = src.parent.name if src.is_dir() and src.name in SPLITS else src.stem
    else:
        raise DpotError(f"{src}: not a DPOT data file (.hdf5) or folder")
    first = next(iter(sources.values()))
    for s in sources.values():
        if s.sample != first.sample:
            raise DpotError(f"{s.path}: samples {s.sample} differ from {first.path} {first.sample}")
    space, n_ch = _axes(first)
    t = first.sample[len(space)]
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
    pde, channels, boundary = "other", [], "periodic"
    for pattern, p, chans, bc in KNOWN:
        if re.match(pattern, name.lower()):
            pde, channels, boundary = p, list(chans), bc
            break
    if len(channels) != n_ch:
        channels = ["u"] if n_ch == 1 else [f"c{i}" for i in range(n_ch)]
    if opts.dt is None:
        warn(f"{src}: DPOT's processed files store no time step; dt = 1.0 (pass --dt to set the physical step)")
    ndim = len(space)
    meta = DatasetMeta(
        name=name,
        pde=pde,
        channels=channels,
        space=space,
        domain=[[0.0, 1.0]] * ndim,
        boundary=[boundary] * ndim,
        source=str(src),
        params={"storage": "scatter" if first.files else "single file"},
    )
    parts = {s: [Part(v.n, _reader(v, len(space)), str(v.path))] for s, v in sources.items()}
    if "all" in parts:
        splits = carve(parts["all"], opts.split)
    elif opts.split == WHOLE:
        splits = carve(parts["train"] + parts["test"], WHOLE)
    else:
        splits = {**carve_from_train(parts["train"], opts.split, ["val"]), "test": parts["test"]}
        meta.params["splits"] = "source (train/test folders); val carved from train"
    return Plan(meta, splits, frame_shape=(t, *first.sample[:ndim], n_ch))


def _axes(src: Source) -> tuple[list[str], int]:
    """Space axes and channel count of one sample: (X, Y, T), (X, Y, T, C) or (X, Y, Z, T, C)."""
    rank = len(src.sample)
    if rank == 3:
        return ["x", "y"], 1
    if rank == 4:
        return ["x", "y"], src.sample[-1]
    if rank == 5:
        return ["x", "y", "z"], src.sample[-1]
    raise DpotError(
        f"{src.path}: a sample of `data` has shape {src.sample}; expected DPOT's (X, Y, T), "
        "(X, Y, T, C) or (X, Y, Z, T, C)"
    )


def _reader(src: Source, ndim: int):
    def read(a: int, b: int) -> dict[str, np.ndarray]:
        arr = src.read(a, b)
        if arr.ndim == ndim + 2:  # no channel axis
            arr = arr[..., None]
        # (n, *space, T, C) -> (n, T, *space, C)
        return {"fields": np.moveaxis(arr, ndim + 1, 1)}

    return read
