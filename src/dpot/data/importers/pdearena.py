"""PDEArena NavierStokes-2D smoke (standard and buoyancy-conditioned; PhiFlow): each `.h5` shard holds one
group named after its split (`train`, `valid`, `test`) with `u` (smoke), `vx`, `vy` (N, T, X, Y), `t` (N, T),
`x` (N, X), `y` (N, Y), `dx`, `dy`, `dt`, `buo_y` (N). SRC is a shard or a folder of shards; the source's own
splits are kept when all three are present, otherwise trajectories are carved by --split in file order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dpot.data.format import SPLITS, DatasetMeta
from dpot.data.importers.common import (
    ConvertOptions,
    Part,
    Plan,
    carve,
    domain_from_coords,
    dt_from_times,
    h5_get,
    h5_open,
)
from dpot.errors import DpotError

SOURCE_SPLITS = {"train": "train", "valid": "val", "test": "test"}
VARIABLES = ("u", "vx", "vy")  # DPOT's order: smoke density, then velocity
CHANNELS = ["smoke", "vx", "vy"]


def build(src: Path, opts: ConvertOptions) -> Plan:
    files = [src] if src.is_file() else sorted(p for p in src.iterdir() if p.suffix in (".h5", ".hdf5"))
    if not files:
        raise DpotError(f"{src}: no .h5 shards in this folder")
    parts: dict[str, list[Part]] = {s: [] for s in SPLITS}
    ref, found = None, []
    for path in files:
        f = h5_open(path)
        groups = [g for g in f.keys() if g in SOURCE_SPLITS]
        if not groups:
            raise DpotError(
                f"{path}: no split group (train, valid or test) at the file root; found "
                f"{', '.join(f.keys()) or 'nothing'}"
            )
        for g in groups:
            grp = f[g]
            dsets = [h5_get(grp, v, path) for v in VARIABLES]
            shape = dsets[0].shape
            if len(shape) != 4 or any(d.shape != shape for d in dsets):
                raise DpotError(
                    f"{path}: {g}/u, vx, vy must share one shape (N, T, X, Y); found {[d.shape for d in dsets]}"
                )
            if ref is None:
                ref = (path, grp, shape)
            elif shape[1:] != ref[2][1:]:
                raise DpotError(f"{path}: {g} frames {shape[1:]} differ from {ref[0]} {ref[2][1:]}")
            found.append((SOURCE_SPLITS[g], shape[0], dsets, grp.get("buo_y"), f"{path}:{g}"))
    with_buo = all(buo is not None for *_, buo, _ in found)  # buoyancy becomes the `params` column if known
    for split, n, dsets, buo, label in found:
        parts[split].append(Part(n, _reader(dsets, buo if with_buo else None), label))
    path, grp, shape = ref
    dt = dt_from_times(grp["t"], f"{path}: t") if "t" in grp else 1.0
    domain = [domain_from_coords(np.asarray(grp[a][0])) if a in grp else [0.0, 32.0] for a in ("x", "y")]
    name = src.stem if src.is_file() else src.name
    meta = DatasetMeta(
        name=name,
        pde="ns2d_buoyancy",
        channels=list(CHANNELS),
        space=["x", "y"],
        domain=domain,
        boundary=["wall", "wall"],
        dt=dt,
        params={"solver": "PhiFlow smoke (PDEArena)", "shards": len(files)},
        param_names=["buoyancy_y"] if with_buo else [],
        source=str(src),
    )
    if all(parts[s] for s in SPLITS):
        splits = parts
        meta.params["splits"] = "source (train/valid/test groups)"
    else:
        splits = carve([p for s in SPLITS for p in parts[s]], opts.split)
    return Plan(meta, splits, frame_shape=(*shape[1:], 3), n_params=int(with_buo))


def _reader(dsets, buo):
    def read(a: int, b: int) -> dict[str, np.ndarray]:
        out = {"fields": np.stack([np.asarray(d[a:b], dtype=np.float32) for d in dsets], axis=-1)}
        if buo is not None:
            out["params"] = np.asarray(buo[a:b], dtype=np.float64).reshape(-1, 1)
        return out

    return read
