"""`dpot convert the-well`: files in the Well's HDF5 schema (t0/t1/t2 fields, dimensions, boundary_conditions,
simulation parameters), 2D and 3D, with split folders or a single file."""

from __future__ import annotations

import h5py
import numpy as np
from test_convert_common import assert_fails, read_dataset, run_convert

RNG = np.random.default_rng(0)


def write_well(path, n, t=4, res=(6, 5), params=None, bcs=(("x", "PERIODIC"), ("y", "WALL")), name="shear_flow"):
    """One Well file (the_well docs/data_format.md schema); returns the arrays written."""
    dims = ["x", "y", "z"][: len(res)]
    nd = len(res)
    params = params or {"Reynolds": 1e4, "Schmidt": 1.0}
    out = {
        "tracer": RNG.standard_normal((n, t, *res)).astype(np.float32),
        "velocity": RNG.standard_normal((n, t, *res, nd)).astype(np.float32),
        "stress": RNG.standard_normal((n, t, *res, nd, nd)).astype(np.float32),
        "obstacle": RNG.standard_normal(res).astype(np.float32),  # constant: neither sample nor time varying
    }
    with h5py.File(path, "w") as f:
        f.attrs["dataset_name"] = name
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = nd
        f.attrs["n_trajectories"] = n
        f.attrs["simulation_parameters"] = list(params)
        for k, v in params.items():
            f.attrs[k] = v
        g = f.create_group("dimensions")
        g.attrs["spatial_dims"] = dims
        g["time"] = (np.arange(t) * 0.25).astype(np.float32)
        g["time"].attrs["sample_varying"] = False
        for d, r in zip(dims, res):
            g[d] = ((np.arange(r) + 0.5) * 2.0 / r).astype(np.float32)
            g[d].attrs["sample_varying"] = False
            g[d].attrs["time_varying"] = False
        bc = f.create_group("boundary_conditions")
        for d, kind in bcs:
            b = bc.create_group(f"{d}_{kind.lower()}")
            b.attrs["associated_dims"] = [d]
            b.attrs["associated_fields"] = []
            b.attrs["bc_type"] = kind
            b.attrs["sample_varying"] = False
            b.attrs["time_varying"] = False
            b["mask"] = np.zeros(res[dims.index(d)], bool)
            b["values"] = np.zeros(0, np.float32)
        f.create_group("scalars").attrs["field_names"] = []
        for order, names in ((0, ["tracer", "obstacle"]), (1, ["velocity"]), (2, ["stress"])):
            grp = f.create_group(f"t{order}_fields")
            grp.attrs["field_names"] = names
            for k in names:
                ds = grp.create_dataset(k, data=out[k])
                const = k == "obstacle"
                ds.attrs["sample_varying"] = not const
                ds.attrs["time_varying"] = not const
                ds.attrs["dim_varying"] = [True] * nd
                if order == 2:
                    ds.attrs["symmetric"] = False
                    ds.attrs["antisymmetric"] = False
    return out


def test_split_folders_2d(tmp_path):
    root = tmp_path / "datasets" / "shear_flow"
    files = {}
    for split, n in (("train", 3), ("valid", 2), ("test", 2)):
        (root / "data" / split).mkdir(parents=True)
        for k, re in enumerate((1e4, 1e5)):
            p = root / "data" / split / f"shear_flow_Reynolds_{re:.0e}.hdf5"
            files[(split, k)] = write_well(p, n, params={"Reynolds": re, "Schmidt": 1.0})
    assert run_convert("the-well", root, "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "shear_flow")
    m = d["meta"]
    assert m.channels == [
        "tracer",
        "obstacle",
        "velocity_x",
        "velocity_y",
        "stress_xx",
        "stress_xy",
        "stress_yx",
        "stress_yy",
    ]
    assert m.space == ["x", "y"] and m.boundary == ["periodic", "wall"] and m.pde == "ns2d_incompressible"
    assert m.dt == 0.25 and m.param_names == ["Reynolds", "Schmidt"]
    np.testing.assert_allclose(m.domain, [[0, 2], [0, 2]], atol=1e-6)
    assert [len(d[s]["fields"]) for s in ("train", "val", "test")] == [6, 4, 4]
    tr = d["train"]["fields"]
    assert tr.shape == (6, 4, 6, 5, 8)
    second = files[("train", 1)]  # trajectories 3..5 come from the second parameter file
    np.testing.assert_array_equal(tr[4, ..., 0], second["tracer"][1])
    np.testing.assert_array_equal(tr[4, 2, ..., 1], second["obstacle"])  # broadcast over samples and time
    np.testing.assert_array_equal(tr[4, ..., 3], second["velocity"][1, ..., 1])
    np.testing.assert_array_equal(tr[4, ..., 5], second["stress"][1, ..., 0, 1])
    np.testing.assert_allclose(d["train"]["params"][:, 0], [1e4] * 3 + [1e5] * 3)
    np.testing.assert_array_equal(d["test"]["fields"][1, ..., 2:4], files[("test", 0)]["velocity"][1])


def test_single_file_3d_carved(tmp_path):
    src = tmp_path / "supernova_3d.hdf5"
    arrs = write_well(
        src, 10, t=3, res=(4, 3, 2), name="supernova_explosion_64", bcs=(("x", "OPEN"), ("y", "OPEN"), ("z", "open"))
    )
    assert run_convert("the-well", src, "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "supernova_explosion_64")
    m = d["meta"]
    assert m.space == ["x", "y", "z"] and m.boundary == ["open"] * 3 and m.pde == "other"
    assert len(m.channels) == 2 + 3 + 9 and m.channels[4] == "velocity_z" and m.channels[-1] == "stress_zz"
    assert d["train"]["fields"].shape == (8, 3, 4, 3, 2, 14)
    np.testing.assert_array_equal(d["test"]["fields"][0, ..., 13], arrs["stress"][9, ..., 2, 2])


def test_missing_boundary_needs_flag(tmp_path, capsys):
    src = tmp_path / "w.hdf5"
    write_well(src, 10, bcs=(("x", "PERIODIC"),))
    assert_fails(capsys, "the-well", src, "--out", tmp_path / "o", match="pass --boundary")
    assert run_convert("the-well", src, "--out", tmp_path / "o", "--boundary", "periodic,neumann") == 0
    assert read_dataset(tmp_path / "o" / "shear_flow")["meta"].boundary == ["periodic", "neumann"]


def test_missing_group(tmp_path, capsys):
    src = tmp_path / "w.hdf5"
    with h5py.File(src, "w") as f:
        f.create_group("t0_fields")
    assert_fails(capsys, "the-well", src, "--out", tmp_path / "o", match="key 'dimensions' missing")


def test_no_fields(tmp_path, capsys):
    src = tmp_path / "w.hdf5"
    write_well(src, 10)
    with h5py.File(src, "a") as f:
        for g in ("t0_fields", "t1_fields", "t2_fields"):
            f[g].attrs["field_names"] = []
    assert_fails(capsys, "the-well", src, "--out", tmp_path / "o", match="no fields listed")


def test_field_shape_disagrees_with_flags(tmp_path, capsys):
    src = tmp_path / "w.hdf5"
    write_well(src, 10)
    with h5py.File(src, "a") as f:
        del f["t0_fields/tracer"]
        ds = f.create_dataset("t0_fields/tracer", data=np.zeros((10, 4, 6), np.float32))  # y axis missing
        ds.attrs["sample_varying"] = ds.attrs["time_varying"] = True
        ds.attrs["dim_varying"] = [True, True]
    assert_fails(
        capsys,
        "the-well",
        src,
        "--out",
        tmp_path / "o",
        match="field tracer has shape (8, 4, 6), expected (8, 4, 6, 5)",
    )
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_single_file_1d(tmp_path):
    src = tmp_path / "w1.hdf5"
    arrs = write_well(src, 10, res=(7,), bcs=(("x", "periodic"),), name="acoustic_scattering_1d")
    assert run_convert("the-well", src, "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "acoustic_scattering_1d")
    assert d["meta"].channels == ["tracer", "obstacle", "velocity_x", "stress_xx"] and d["meta"].pde == "wave"
    assert d["train"]["fields"].shape == (8, 4, 7, 4)
    np.testing.assert_array_equal(d["val"]["fields"][0, ..., 3], arrs["stress"][8, ..., 0, 0])
