"""PDEBench HDF5 in its three layouts (https://doi.org/10.18419/darus-2986):
(i) one file of batch-first arrays: `tensor` (N, T, X...) or per-variable `density`/`pressure`/`Vx`... with
    `x-coordinate`/`t-coordinate` (Darcy: `nu` input + `tensor` (N, 1, X, Y) solution);
(ii) per-seed groups `0000/data` (T, X[, Y], V) with `grid/x`, `grid/y`, `grid/t`;
(iii) incompressible NS shards `velocity` (N, T, X, Y, 2), `particles` (N, T, X, Y, 1), `t` (N, T).
SRC may be one file or a folder of files of one layout and shape (e.g. the 274 NS shards), in name order."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dpot.data.format import DatasetMeta
from dpot.data.importers.common import (
    ConvertOptions,
    Part,
    Plan,
    carve,
    domain_from_coords,
    dt_from_times,
    h5_get,
    h5_open,
    params_from_name,
    warn,
)
from dpot.errors import DpotError

VARIABLES = ("Vx", "Vy", "Vz", "density", "pressure")  # default channel order: velocity, density, pressure
COORDS = ("x-coordinate", "y-coordinate", "z-coordinate")
FILE_PARAMS = {"Nu": "nu", "beta": "beta", "Rho": "rho", "M": "mach", "Eta": "eta", "Zeta": "zeta"}


def _files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    files = sorted(p for p in src.iterdir() if p.suffix in (".h5", ".hdf5") and p.is_file())
    if not files:
        raise DpotError(f"{src}: no .h5/.hdf5 files in this folder")
    return files


def _layout(f, path: Path) -> str:
    keys = set(f.keys())
    if {"velocity", "particles"} <= keys:
        return "ns-incom"
    if "tensor" in keys or keys & set(VARIABLES):
        return "arrays"
    if any(hasattr(f[k], "keys") and "data" in f[k] for k in keys):
        return "seeds"
    raise DpotError(
        f"{path}: not a PDEBench file (expected `tensor`, variables {', '.join(VARIABLES)}, "
        "seed groups 0000/data, or velocity+particles); found keys: "
        f"{', '.join(sorted(keys)) or 'none'}"
    )


def build(src: Path, opts: ConvertOptions) -> Plan:
    files = _files(src)
    handles = [h5_open(p) for p in files]
    layouts = {_layout(f, p) for f, p in zip(handles, files)}
    if len(layouts) > 1:
        raise DpotError(f"{src}: files mix PDEBench layouts {sorted(layouts)}; convert them separately")
    layout = layouts.pop()
    builder = {"arrays": _arrays, "seeds": _seeds, "ns-incom": _ns_incom}[layout]
    plans = [builder(f, p, opts) for f, p in zip(handles, files)]
    first = plans[0]
    for p, path in zip(plans[1:], files[1:]):
        if (p.frame_shape, p.inputs_shape, p.targets_shape, p.meta.channels) != (
            first.frame_shape,
            first.inputs_shape,
            first.targets_shape,
            first.meta.channels,
        ):
            raise DpotError(f"{path}: shapes/channels differ from {files[0]}; convert files of one shape together")
    parts = [part for p in plans for part in p.splits["all"]]
    if len(files) > 1:
        first.meta.name = _name(src)
        first.meta.params["files"] = len(files)
        first.meta.source = str(src)
    first.splits = carve(parts, opts.split)
    return first


def _name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", path.stem)


def _pde_1d(stem: str) -> tuple[str, str]:
    low = stem.lower()
    for key, pde in (("burgers", "burgers"), ("advection", "advection"), ("reacdiff", "reaction_diffusion")):
        if key in low:
            return pde, "periodic"
    return "other", "periodic"


def _arrays(f, path: Path, opts: ConvertOptions) -> Plan:
    stem = _name(path)
    coords = [np.asarray(f[c]) for c in COORDS if c in f]
    params = {"file": path.name, **params_from_name(stem, FILE_PARAMS)}
    if "tensor" in f and "nu" in f:  # Darcy: coefficient nu (N, X, Y) -> solution tensor (N, 1, X, Y)
        nu, sol = f["nu"], f["tensor"]
        if sol.ndim != nu.ndim + 1 or sol.shape[1] != 1 or sol.shape[2:] != nu.shape[1:]:
            raise DpotError(
                f"{path}: Darcy expects nu (N, X, Y) and tensor (N, 1, X, Y), found {nu.shape} and {sol.shape}"
            )
        ndim = nu.ndim - 1
        _check_coords(coords, COORDS, nu.shape[1:], path)
        meta = DatasetMeta(
            name=stem,
            pde="darcy",
            channels=["u"],
            input_channels=["nu"],
            steady=True,
            space=["x", "y", "z"][:ndim],
            domain=_domains(coords, ndim),
            boundary=["dirichlet"] * ndim,
            params=params,
            source=str(path),
        )

        def read_darcy(a: int, b: int) -> dict[str, np.ndarray]:
            return {"inputs": np.asarray(nu[a:b])[..., None], "targets": np.asarray(sol[a:b, 0])[..., None]}

        return Plan(
            meta,
            {"all": [Part(nu.shape[0], read_darcy, str(path))]},
            inputs_shape=(*nu.shape[1:], 1),
            targets_shape=(*nu.shape[1:], 1),
        )
    if "tensor" in f:
        names, pde, boundary = ["u"], *_pde_1d(stem)
        dsets = [f["tensor"]]
        renamable = True
    else:
        present = [v for v in VARIABLES if v in f]
        ndim = f[present[0]].ndim - 2
        expected = ["Vx", "Vy", "Vz"][: max(ndim, 1)] + ["density", "pressure"]
        lacking = [v for v in expected if v not in f]
        if lacking and not opts.channels:
            raise DpotError(
                f"{path}: variable {', '.join(lacking)} missing from this {ndim}D file (found: "
                f"{', '.join(present)}); pass --channels to convert only some variables"
            )
        names = opts.channels or present
        missing = [v for v in names if v not in f]
        if missing:
            raise DpotError(
                f"{path}: --channels asks for {', '.join(missing)}, which the file lacks "
                f"(variables: {', '.join(present)})"
            )
        dsets = [f[v] for v in names]
        pde = "compressible_ns"
        boundary = "open" if "trans" in stem.lower() else "periodic"
        renamable = False
    shape = dsets[0].shape
    for name, d in zip(names, dsets):
        if d.shape != shape:
            raise DpotError(f"{path}: {name} has shape {d.shape}, expected {shape} like {names[0]}")
    if len(shape) < 3:
        raise DpotError(f"{path}: {names[0]} has shape {shape}; expected (N, T, X[, Y[, Z]])")
    ndim = len(shape) - 2
    _check_coords(coords, COORDS, shape[2:], path)
    dt = _dt(f["t-coordinate"] if "t-coordinate" in f else None, shape[1], f"{path}: t-coordinate", opts)
    meta = DatasetMeta(
        name=stem,
        pde=pde,
        channels=list(names),
        space=["x", "y", "z"][:ndim],
        domain=_domains(coords, ndim),
        boundary=[boundary] * ndim,
        dt=dt,
        params=params,
        source=str(path),
    )

    def read(a: int, b: int) -> dict[str, np.ndarray]:
        return {"fields": np.stack([np.asarray(d[a:b], dtype=np.float32) for d in dsets], axis=-1)}

    return Plan(
        meta,
        {"all": [Part(shape[0], read, str(path))]},
        frame_shape=(*shape[1:], len(dsets)),
        channels_renamable=renamable,
    )


def _check_coords(coords: list[np.ndarray], names, space_shape: tuple[int, ...], path: Path) -> None:
    """Each coordinate array must have one entry per point of the data axis it labels."""
    for c, name, n in zip(coords, names, space_shape):
        if c.shape[-1] != n:
            raise DpotError(
                f"{path}: {name} has {c.shape[-1]} points but the data axis it labels has {n}; the file is inconsistent"
            )


def _dt(t, n_frames: int, where: str, opts: ConvertOptions) -> float:
    """Time step from a time coordinate of T (or T+1 cell edges) entries; without one, dt = 1.0 with a warning
    (unless --dt is given)."""
    if t is None:
        if opts.dt is None:
            warn(f"{where.split(': ')[0]}: no time coordinate; dt = 1.0 (pass --dt to set the physical step)")
        return 1.0
    if t.shape[-1] not in (n_frames, n_frames + 1):
        raise DpotError(
            f"{where} has {t.shape[-1]} entries but the data has {n_frames} frames; the file is inconsistent"
        )
    return dt_from_times(t, where)


def _domains(coords: list[np.ndarray], ndim: int) -> list[list[float]]:
    if len(coords) >= ndim:
        return [domain_from_coords(c) for c in coords[:ndim]]
    return [[0.0, 1.0]] * ndim


# per-seed files: name fragment -> (pde, channels, boundary, physical parameters from the PDEBench configs)
SEED_FILES = {
    "diff-react": ("diffusion_reaction", ["u", "v"], "neumann", {"Du": 1e-3, "Dv": 5e-3, "k": 5e-3}),
    "rdb": ("shallow_water", ["h"], "neumann", {"problem": "radial dam break", "g": 1.0}),
    "diff-sorp": ("diffusion_sorption", ["u"], "dirichlet", {"problem": "diffusion-sorption"}),
}


def _seeds(f, path: Path, opts: ConvertOptions) -> Plan:
    stem = _name(path)
    seeds = sorted(f.keys())
    lacking = [k for k in seeds if not hasattr(f[k], "keys") or "data" not in f[k]]
    if lacking:
        raise DpotError(
            f"{path}: seed group {lacking[0]} has no `data` array"
            f"{f' ({len(lacking)} groups lack it)' if len(lacking) > 1 else ''}; the file is "
            "incomplete"
        )
    first = f[seeds[0]]
    data = first["data"]
    if data.ndim < 3:
        raise DpotError(f"{path}: {seeds[0]}/data has shape {data.shape}; expected (T, X[, Y], V)")
    ndim = data.ndim - 2
    pde, channels, boundary, phys = "other", [f"c{i}" for i in range(data.shape[-1])], "periodic", {}
    for frag, spec in SEED_FILES.items():
        if frag in stem:
            pde, channels, boundary, phys = spec
    if len(channels) != data.shape[-1]:
        raise DpotError(
            f"{path}: {seeds[0]}/data has {data.shape[-1]} channels, expected {len(channels)} "
            f"({', '.join(channels)}) for this file"
        )
    grid = first["grid"] if "grid" in first else {}
    coords = [np.asarray(grid[a]) for a in "xyz"[:ndim] if a in grid]
    _check_coords(coords, [f"{seeds[0]}/grid/{a}" for a in "xyz"], data.shape[1:-1], path)
    dt = _dt(grid["t"] if "t" in grid else None, data.shape[0], f"{path}: {seeds[0]}/grid/t", opts)
    meta = DatasetMeta(
        name=stem,
        pde=pde,
        channels=list(channels),
        space=["x", "y", "z"][:ndim],
        domain=_domains(coords, ndim),
        boundary=[boundary] * ndim,
        dt=dt,
        params={"file": path.name, **phys},
        source=str(path),
    )

    def read(a: int, b: int) -> dict[str, np.ndarray]:
        return {"fields": np.stack([np.asarray(h5_get(f[s], "data", path), dtype=np.float32) for s in seeds[a:b]])}

    return Plan(meta, {"all": [Part(len(seeds), read, str(path))]}, frame_shape=tuple(data.shape))


def _ns_incom(f, path: Path, opts: ConvertOptions) -> Plan:
    vel, part = f["velocity"], f["particles"]
    if vel.ndim != 5 or vel.shape[-1] != 2 or part.shape != (*vel.shape[:-1], 1):
        raise DpotError(
            f"{path}: expected velocity (N, T, X, Y, 2) and particles (N, T, X, Y, 1), found "
            f"{vel.shape} and {part.shape}"
        )
    dt = _dt(f["t"] if "t" in f else None, vel.shape[1], f"{path}: t", opts)
    meta = DatasetMeta(
        name=_name(path),
        pde="ns2d_incompressible",
        channels=["vx", "vy", "particles"],
        space=["x", "y"],
        domain=[[0.0, 1.0], [0.0, 1.0]],
        boundary=["wall", "wall"],
        dt=dt,
        params={"file": path.name, "forcing": "per-trajectory `force` field, not stored"},
        source=str(path),
    )

    def read(a: int, b: int) -> dict[str, np.ndarray]:
        return {
            "fields": np.concatenate(
                [np.asarray(vel[a:b], dtype=np.float32), np.asarray(part[a:b], dtype=np.float32)], axis=-1
            )
        }

    return Plan(meta, {"all": [Part(vel.shape[0], read, str(path))]}, frame_shape=(*vel.shape[1:-1], 3))
