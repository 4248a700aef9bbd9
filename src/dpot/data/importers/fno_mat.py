"""FNO `.mat` files (Li et al.): Navier–Stokes vorticity (`a`, `u` (N, X, Y, T), `t`), Darcy (`coeff`, `sol`)
and Burgers (`a`, `u` (N, X)). MATLAB v5 files are read with scipy; v7.3 files are HDF5, whose axes h5py
returns reversed, so every array is fully transposed back (FNO MatReader convention; DPOT's own (3,1,2,0)
permutation swaps x and y relative to it)."""

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
    dt_from_times,
    h5_open,
    params_from_name,
)
from dpot.errors import DpotError


class MatFile:
    """Variables of a v5 or v7.3 MAT-file, always in MATLAB/scipy axis order, read in blocks along axis 0."""

    def __init__(self, path: Path):
        import h5py

        self.path = path
        self.v73 = h5py.is_hdf5(path)
        self.version = "7.3" if self.v73 else "5"
        self._cache: dict[str, np.ndarray] = {}
        if self.v73:
            self._h5 = h5_open(path)
            self.shapes = {
                k: tuple(reversed(v.shape))
                for k, v in self._h5.items()
                if not k.startswith("#") and isinstance(v, h5py.Dataset)
            }
        else:
            import scipy.io

            try:
                self.shapes = {name: tuple(shape) for name, shape, _ in scipy.io.whosmat(str(path))}
            except Exception as exc:  # scipy raises many types on damaged or foreign files
                raise DpotError(f"{path}: not a readable MATLAB .mat file ({exc})") from None

    def read(self, key: str, a: int | None = None, b: int | None = None) -> np.ndarray:
        """Variable `key` (rows a..b of axis 0 when given) as float32 in scipy axis order."""
        if self.v73:
            ds = self._h5[key]
            sel = (Ellipsis, slice(a, b)) if ds.ndim else ()
            return np.asarray(ds[sel], dtype=np.float32).transpose()
        if key not in self._cache:
            import scipy.io

            try:
                self._cache[key] = np.asarray(
                    scipy.io.loadmat(str(self.path), variable_names=[key])[key], dtype=np.float32
                )
            except Exception as exc:
                raise DpotError(
                    f"{self.path}: cannot read variable {key!r} ({exc}); the file may be truncated or corrupt"
                ) from None
        return self._cache[key][a:b]


def build(src: Path, opts: ConvertOptions) -> Plan:
    if src.is_dir():
        raise DpotError(f"{src} is a directory; fno-mat converts one .mat file")
    mat = MatFile(src)
    keys, shapes = set(mat.shapes), mat.shapes
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", src.stem)
    label = str(src)
    if {"coeff", "sol"} <= keys:
        return _steady(
            mat, "coeff", "sol", 2, stem, label, opts, pde="darcy", boundary="dirichlet", in_name="a", out_name="u"
        )
    if "u" in keys and len(shapes["u"]) == 4:
        return _navier_stokes(mat, stem, label, opts)
    if {"a", "u"} <= keys and len(shapes["u"]) == 2:
        return _steady(
            mat, "a", "u", 1, stem, label, opts, pde="burgers", boundary="periodic", in_name="u0", out_name="u"
        )
    found = ", ".join(f"{k} {shapes[k]}" for k in sorted(keys)) or "none"
    raise DpotError(
        f"{src}: no FNO variables found (expected u (N, X, Y, T) for Navier-Stokes, coeff+sol "
        f"(N, X, Y) for Darcy, a+u (N, X) for Burgers); found: {found}"
    )


def _navier_stokes(mat: MatFile, stem: str, label: str, opts: ConvertOptions) -> Plan:
    n, nx, ny, nt = mat.shapes["u"]
    if opts.with_initial:
        if mat.shapes.get("a") != (n, nx, ny):
            raise DpotError(f"{label}: --with-initial needs a (N, X, Y) = {(n, nx, ny)}, found {mat.shapes.get('a')}")
    dt = dt_from_times(mat.read("t"), f"{label}: t") if "t" in mat.shapes else 1.0

    def read(a: int, b: int) -> dict[str, np.ndarray]:
        u = mat.read("u", a, b).transpose(0, 3, 1, 2)  # (b, T, X, Y)
        if opts.with_initial:
            u = np.concatenate([mat.read("a", a, b)[:, None], u], axis=1)
        return {"fields": u[..., None]}

    params = {
        "file": Path(label).name,
        "mat_version": mat.version,
        **params_from_name(stem, {"V": "viscosity"}),
        "forcing": "0.1*(sin(2*pi*(x+y)) + cos(2*pi*(x+y)))",
        "initial_frame_included": opts.with_initial,
    }
    meta = DatasetMeta(
        name=stem,
        pde="ns2d_vorticity",
        channels=["vorticity"],
        space=["x", "y"],
        domain=[[0.0, 1.0], [0.0, 1.0]],
        boundary=["periodic", "periodic"],
        dt=dt,
        params=params,
        source=label,
    )
    frames = nt + (1 if opts.with_initial else 0)
    return Plan(meta, carve([Part(n, read, label)], opts.split), frame_shape=(frames, nx, ny, 1))


def _steady(
    mat: MatFile,
    in_key: str,
    out_key: str,
    ndim: int,
    stem: str,
    label: str,
    opts: ConvertOptions,
    *,
    pde: str,
    boundary: str,
    in_name: str,
    out_name: str,
) -> Plan:
    shp_in, shp_out = mat.shapes[in_key], mat.shapes[out_key]
    if len(shp_in) != ndim + 1 or shp_in != shp_out:
        axes = ", ".join("XYZ"[:ndim])
        raise DpotError(
            f"{label}: expected {in_key} and {out_key} of equal shape (N, {axes}), found {shp_in} and {shp_out}"
        )

    def read(a: int, b: int) -> dict[str, np.ndarray]:
        return {"inputs": mat.read(in_key, a, b)[..., None], "targets": mat.read(out_key, a, b)[..., None]}

    space = ["x", "y", "z"][:ndim]
    meta = DatasetMeta(
        name=stem,
        pde=pde,
        channels=[out_name],
        space=space,
        domain=[[0.0, 1.0]] * ndim,
        boundary=[boundary] * ndim,
        dt=1.0,
        steady=True,
        input_channels=[in_name],
        params={"file": Path(label).name, "mat_version": mat.version},
        source=label,
    )
    return Plan(
        meta,
        carve([Part(shp_in[0], read, label)], opts.split),
        inputs_shape=(*shp_in[1:], 1),
        targets_shape=(*shp_out[1:], 1),
    )
