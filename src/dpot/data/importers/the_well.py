"""The Well HDF5 schema (one file per parameter setting, `data/{train,valid,test}/*.hdf5`): scalar fields
in `t0_fields` (N, T, *space), vectors in `t1_fields` (..., D), tensors in `t2_fields` (..., D, D); fields
constant in time or across trajectories drop those axes and are broadcast; `dimensions/` gives the grid and
time, `boundary_conditions/` the per-axis BC type, root attributes the simulation parameters (`params`).
SRC: a dataset folder (with `data/` or `train/valid/test/` inside), a folder of files, or one file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dpot.data.format import SPLITS, DatasetMeta
from dpot.data.importers.common import (
    ConvertOptions,
    Part,
    Plan,
    attr_str,
    attr_strs,
    carve,
    domain_from_coords,
    dt_from_times,
    h5_get,
    h5_open,
    parse_boundary,
)
from dpot.errors import DpotError

SOURCE_SPLITS = {"train": "train", "valid": "val", "test": "test"}
BC_TYPES = {"periodic": "periodic", "wall": "wall", "open": "open"}
PDE_OF = {  # dataset_name prefix -> pde word
    "shear_flow": "ns2d_incompressible",
    "rayleigh_benard": "ns2d_buoyancy",
    "planetswe": "shallow_water",
    "gray_scott_reaction_diffusion": "reaction_diffusion",
    "mhd": "mhd",
    "euler_multi_quadrants": "euler",
    "acoustic_scattering": "wave",
}


def _split_files(src: Path) -> dict[str, list[Path]] | list[Path]:
    """Files per source split when the folder has split subfolders, else the plain list of files."""
    if src.is_file():
        return [src]
    base = src / "data" if (src / "data").is_dir() else src
    subs = {SOURCE_SPLITS[d.name]: d for d in base.iterdir() if d.is_dir() and d.name in SOURCE_SPLITS}
    if subs:
        missing = [s for s in SPLITS if s not in subs]
        if missing:
            raise DpotError(f"{base}: split folders {', '.join(missing)} missing (expected train, valid, test)")
        out = {s: sorted(subs[s].glob("*.hdf5")) + sorted(subs[s].glob("*.h5")) for s in SPLITS}
        empty = [s for s, fs in out.items() if not fs]
        if empty:
            raise DpotError(f"{base}: no .hdf5 files in split folder(s) {', '.join(empty)}")
        return out
    files = sorted(base.glob("*.hdf5")) + sorted(base.glob("*.h5"))
    if not files:
        raise DpotError(f"{src}: no Well .hdf5 files (nor data/train, data/valid, data/test folders)")
    return files


class WellFile:
    """One Well file: its channel names, frame shape, BCs, grid, parameters and a block reader."""

    def __init__(self, path: Path):
        self.path = path
        f = self.f = h5_open(path)
        h5_get(f, "dimensions", path)
        self.name = attr_str(f.attrs.get("dataset_name", path.parent.name))
        dims = f["dimensions"]
        self.space = attr_strs(dims.attrs.get("spatial_dims"))
        if not self.space or f.attrs.get("n_spatial_dims", len(self.space)) != len(self.space):
            raise DpotError(
                f"{path}: dimensions/@spatial_dims {self.space} does not match @n_spatial_dims "
                f"{f.attrs.get('n_spatial_dims')}"
            )
        self.coords = [np.asarray(h5_get(dims, d, path)) for d in self.space]
        self.shape_space = tuple(c.shape[-1] for c in self.coords)
        self.time = np.asarray(h5_get(dims, "time", path))
        self.n_steps = self.time.shape[-1]
        self.n = int(f.attrs.get("n_trajectories", 0))
        self.fields: list[tuple[object, str, int]] = []  # (dataset, name, tensor order)
        self.channels: list[str] = []
        for order in range(3):
            grp = f.get(f"t{order}_fields")
            if grp is None:
                continue
            for name in attr_strs(grp.attrs.get("field_names")):
                ds = h5_get(grp, name, path)
                self.fields.append((ds, name, order))
                comps = (
                    [""]
                    if order == 0
                    else (self.space if order == 1 else [a + b for a in self.space for b in self.space])
                )
                self.channels += [f"{name}_{c}" if c else name for c in comps]
                if ds.attrs.get("sample_varying", True) and self.n == 0:
                    self.n = ds.shape[0]
        if not self.fields:
            raise DpotError(f"{path}: no fields listed in t0_fields/t1_fields/t2_fields @field_names")
        self.param_names = attr_strs(f.attrs.get("simulation_parameters"))
        self.params = np.array([float(f.attrs[p]) for p in self.param_names], dtype=np.float64)

    def boundary(self) -> list[str] | None:
        """Per spatial axis, the BC type of the boundary_conditions entry covering it (None if unknown)."""
        found: dict[str, str] = {}
        for bc in self.f.get("boundary_conditions", {}).values():
            kind = BC_TYPES.get(attr_str(bc.attrs.get("bc_type", "")).lower())
            for d in attr_strs(bc.attrs.get("associated_dims")):
                if kind and d not in found:
                    found[d] = kind
        if all(d in found for d in self.space):
            return [found[d] for d in self.space]
        return None

    def read(self, a: int, b: int) -> dict[str, np.ndarray]:
        """Trajectories a..b as (b-a, T, *space, C); each field broadcast over the axes it is constant on."""
        out = []
        nd = len(self.space)
        for ds, name, order in self.fields:
            sample = bool(ds.attrs.get("sample_varying", True))
            timev = bool(ds.attrs.get("time_varying", True))
            dim_var = [bool(v) for v in np.asarray(ds.attrs.get("dim_varying", [True] * nd)).ravel()]
            arr = np.asarray(ds[a:b] if sample else ds[()], dtype=np.float32)
            want = (
                *([b - a] if sample else []),
                *([self.n_steps] if timev else []),
                *(s for s, v in zip(self.shape_space, dim_var) if v),
                *([nd] * order),
            )
            if arr.shape != want:
                raise DpotError(
                    f"{self.path}: field {name} has shape {arr.shape}, expected {want} from its "
                    "sample/time/dim_varying flags"
                )
            if not sample:
                arr = arr[None]
            if not timev:
                arr = arr[:, None]
            for i, v in enumerate(dim_var):  # restore dropped spatial axes as size 1
                if not v:
                    arr = np.expand_dims(arr, 2 + i)
            arr = arr.reshape(*arr.shape[: 2 + nd], -1)  # flatten the tensor components into channels
            out.append(np.broadcast_to(arr, (b - a, self.n_steps, *self.shape_space, arr.shape[-1])))
        result = {"fields": np.concatenate(out, axis=-1)}
        if len(self.params):
            result["params"] = np.broadcast_to(self.params, (b - a, len(self.params))).copy()
        return result


def build(src: Path, opts: ConvertOptions) -> Plan:
    layout = _split_files(src)
    per_split = layout if isinstance(layout, dict) else {"all": layout}
    wells = {s: [WellFile(p) for p in fs] for s, fs in per_split.items()}
    first = next(iter(wells.values()))[0]
    for w in (w for ws in wells.values() for w in ws):
        if (w.channels, w.n_steps, w.shape_space, w.param_names) != (
            first.channels,
            first.n_steps,
            first.shape_space,
            first.param_names,
        ):
            raise DpotError(
                f"{w.path}: fields/steps/grid/parameters differ from {first.path}; convert files "
                "of one dataset together"
            )
    if opts.boundary:
        boundary = parse_boundary(opts.boundary, len(first.space))
    else:
        boundary = first.boundary()
        if boundary is None:
            raise DpotError(
                f"{first.path}: boundary_conditions do not give a periodic/wall/open type for "
                "every "
                f"axis of {first.space}; pass --boundary"
            )
    parts = {s: [Part(w.n, w.read, str(w.path)) for w in ws] for s, ws in wells.items()}
    pde = next((word for prefix, word in PDE_OF.items() if first.name.lower().startswith(prefix)), "other")
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", first.name)
    meta = DatasetMeta(
        name=name,
        pde=pde,
        channels=list(first.channels),
        space=list(first.space),
        domain=[domain_from_coords(c.reshape(-1, c.shape[-1])[0]) for c in first.coords],
        boundary=boundary,
        dt=dt_from_times(first.time, f"{first.path}: dimensions/time"),
        params={
            "dataset_name": first.name,
            "grid_type": attr_str(first.f.attrs.get("grid_type", "cartesian")),
            "files": sum(len(ws) for ws in wells.values()),
        },
        param_names=list(first.param_names),
        source=str(src),
    )
    splits = parts if "all" not in parts else carve(parts["all"], opts.split)
    if "all" not in parts:
        meta.params["splits"] = "source (train/valid/test)"
    return Plan(
        meta,
        splits,
        frame_shape=(first.n_steps, *first.shape_space, len(first.channels)),
        n_params=len(first.param_names),
    )
