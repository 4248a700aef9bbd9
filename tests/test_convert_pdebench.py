"""`dpot convert pdebench`: the three PDEBench layouts, 1D/2D/3D, with the traps (101 SWE frames, the 3D
channel order, t-coordinate one longer than T)."""

from __future__ import annotations

import h5py
import numpy as np
from test_convert_common import assert_fails, read_dataset, run_convert

RNG = np.random.default_rng(0)


def test_1d_burgers_tensor(tmp_path):
    n, t, x = 10, 7, 16
    tensor = RNG.standard_normal((n, t, x)).astype(np.float32)
    src = tmp_path / "1D_Burgers_Sols_Nu0.01.hdf5"
    with h5py.File(src, "w") as f:
        f["tensor"] = tensor
        f["x-coordinate"] = (np.arange(x) + 0.5) / x
        f["t-coordinate"] = np.linspace(0, 0.7, t + 1)  # one longer than T (cell edges)
    assert run_convert("pdebench", src, "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "1D_Burgers_Sols_Nu0.01")
    assert d["train"]["fields"].shape == (8, t, x, 1)
    np.testing.assert_array_equal(d["val"]["fields"][0, ..., 0], tensor[8])
    m = d["meta"]
    assert m.pde == "burgers" and m.space == ["x"] and m.boundary == ["periodic"] and m.channels == ["u"]
    np.testing.assert_allclose(m.domain, [[0, 1]], atol=1e-12)
    np.testing.assert_allclose(m.dt, 0.1)
    assert m.params["nu"] == 0.01


def _cfd(path, ndim, n=10, t=3, res=(6, 5, 4), variables=("density", "pressure", "Vx", "Vy", "Vz")):
    shape = (n, t, *res[:ndim])
    data = {v: RNG.standard_normal(shape).astype(np.float32) for v in variables[: 2 + ndim]}
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            f[k] = v
        for i, c in enumerate("xyz"[:ndim]):
            f[f"{c}-coordinate"] = (np.arange(res[i]) + 0.5) / res[i]
        f["t-coordinate"] = np.linspace(0, 1.0, t + 1)
    return data


def test_2d_cfd_channel_order(tmp_path):
    src = tmp_path / "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5"
    data = _cfd(src, 2)
    assert run_convert("pdebench", src, "--out", tmp_path / "out", "--name", "cfd2d") == 0
    d = read_dataset(tmp_path / "out" / "cfd2d")
    m = d["meta"]
    assert m.channels == ["Vx", "Vy", "density", "pressure"]  # DPOT's 2D order
    assert d["train"]["fields"].shape == (8, 3, 6, 5, 4)
    assert d["train"]["fields"][4, 1, 2, 3, 2] == data["density"][4, 1, 2, 3]
    assert d["test"]["fields"][0, 2, 5, 4, 0] == data["Vx"][9, 2, 5, 4]
    assert m.pde == "compressible_ns" and m.boundary == ["periodic"] * 2
    assert m.params["eta"] == 0.01 and m.params["mach"] == 0.1


def test_3d_cfd_channel_order(tmp_path):
    src = tmp_path / "3D_CFD_Rand_M1.0_Eta1e-08_Zeta1e-08_periodic_Train.hdf5"
    data = _cfd(src, 3)
    # default: velocity, density, pressure (same rule as 2D); DPOT's 3D order is selectable with --channels
    assert run_convert("pdebench", src, "--out", tmp_path / "a", "--name", "cfd3d") == 0
    assert (
        run_convert(
            "pdebench", src, "--out", tmp_path / "b", "--name", "cfd3d", "--channels", "Vx,Vy,Vz,pressure,density"
        )
        == 0
    )
    da, db = read_dataset(tmp_path / "a" / "cfd3d"), read_dataset(tmp_path / "b" / "cfd3d")
    assert da["meta"].channels == ["Vx", "Vy", "Vz", "density", "pressure"]
    assert db["meta"].channels == ["Vx", "Vy", "Vz", "pressure", "density"]
    assert da["train"]["fields"].shape == (8, 3, 6, 5, 4, 5) and da["meta"].space == ["x", "y", "z"]
    for d in (da, db):
        for c, name in enumerate(d["meta"].channels):
            np.testing.assert_array_equal(d["train"]["fields"][..., c], data[name][:8])


def test_3d_unknown_channel(tmp_path, capsys):
    src = tmp_path / "3D_CFD_Turb_M1.0_Eta1e-08_Zeta1e-08_periodic_Train.hdf5"
    _cfd(src, 3)
    assert_fails(capsys, "pdebench", src, "--out", tmp_path / "o", "--channels", "Vx,temperature", match="temperature")


def test_mismatched_variable_shapes(tmp_path, capsys):
    src = tmp_path / "1D_CFD_Rand_Eta0.01_Zeta0.01_periodic_Train.hdf5"
    with h5py.File(src, "w") as f:
        f["density"] = np.ones((10, 3, 8), np.float32)
        f["pressure"] = np.ones((10, 3, 8), np.float32)
        f["Vx"] = np.ones((10, 3, 9), np.float32)
    assert_fails(
        capsys, "pdebench", src, "--out", tmp_path / "o", match="density has shape (10, 3, 8), expected (10, 3, 9)"
    )


def test_darcy(tmp_path):
    nu = RNG.uniform(0, 1, (10, 8, 8)).astype(np.float32)
    sol = RNG.standard_normal((10, 1, 8, 8)).astype(np.float32)
    src = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    with h5py.File(src, "w") as f:
        f["nu"], f["tensor"] = nu, sol
        f["x-coordinate"] = f["y-coordinate"] = (np.arange(8) + 0.5) / 8
    assert run_convert("pdebench", src, "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "2D_DarcyFlow_beta1.0_Train")
    assert d["meta"].steady and d["meta"].pde == "darcy" and d["meta"].input_channels == ["nu"]
    np.testing.assert_array_equal(d["val"]["inputs"][0, ..., 0], nu[8])
    np.testing.assert_array_equal(d["val"]["targets"][0, ..., 0], sol[8, 0])


def _seed_file(path, n, data_shape, t_end, lo, hi):
    out = []
    with h5py.File(path, "w") as f:
        for i in range(n):
            g = f.create_group(f"{i:04d}")
            arr = RNG.standard_normal(data_shape).astype(np.float32)
            out.append(arr)
            g["data"] = arr
            res = data_shape[1]
            centres = lo + (np.arange(res) + 0.5) * (hi - lo) / res
            g["grid/x"] = centres
            if len(data_shape) == 4:
                g["grid/y"] = centres
            g["grid/t"] = np.linspace(0, t_end, data_shape[0])
    return out


def test_swe_rdb_101_frames(tmp_path):
    src = tmp_path / "2D_rdb_NA_NA.h5"
    seeds = _seed_file(src, 10, (101, 8, 8, 1), 1.0, -2.5, 2.5)
    assert run_convert("pdebench", src, "--out", tmp_path / "out", "--name", "swe") == 0
    d = read_dataset(tmp_path / "out" / "swe")
    assert d["train"]["fields"].shape == (8, 101, 8, 8, 1)  # all 101 frames: initial state + 100 steps
    m = d["meta"]
    assert m.pde == "shallow_water" and m.channels == ["h"]
    np.testing.assert_allclose(m.dt, 0.01)
    np.testing.assert_allclose(m.domain, [[-2.5, 2.5], [-2.5, 2.5]])
    np.testing.assert_array_equal(d["test"]["fields"][0], seeds[9])
    assert d["train"]["fields"][3, 100, 7, 2, 0] == seeds[3][100, 7, 2, 0]


def test_diff_react_seeds(tmp_path):
    src = tmp_path / "2D_diff-react_NA_NA.h5"
    seeds = _seed_file(src, 10, (11, 6, 6, 2), 5.0, -1.0, 1.0)
    assert run_convert("pdebench", src, "--out", tmp_path / "out", "--name", "dr") == 0
    d = read_dataset(tmp_path / "out" / "dr")
    m = d["meta"]
    assert m.channels == ["u", "v"] and m.pde == "diffusion_reaction" and m.boundary == ["neumann"] * 2
    np.testing.assert_allclose(m.dt, 0.5)
    np.testing.assert_allclose(m.domain, [[-1, 1], [-1, 1]])
    assert d["val"]["fields"][0, 4, 1, 2, 1] == seeds[8][4, 1, 2, 1]


def test_diff_sorp_1d_seeds(tmp_path):
    src = tmp_path / "1D_diff-sorp_NA_NA.h5"
    seeds = _seed_file(src, 10, (5, 16, 1), 500.0, 0.0, 1.0)
    assert run_convert("pdebench", src, "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "1D_diff-sorp_NA_NA")
    assert d["meta"].pde == "diffusion_sorption" and d["meta"].space == ["x"]
    np.testing.assert_array_equal(d["train"]["fields"][0], seeds[0])


def test_ns_incompressible_shards(tmp_path):
    folder = tmp_path / "ns_incom"
    folder.mkdir()
    vels, parts = [], []
    for k in range(2):  # two shards of 5 trajectories, read in name order
        v = RNG.standard_normal((5, 4, 8, 8, 2)).astype(np.float32)
        p = RNG.standard_normal((5, 4, 8, 8, 1)).astype(np.float32)
        with h5py.File(folder / f"ns_incom_inhom_2d_512-{k}.h5", "w") as f:
            f["velocity"], f["particles"] = v, p
            f["force"] = np.ones((5, 8, 8, 2), np.float32)
            f["t"] = np.tile(np.arange(4) * 0.05, (5, 1))
        vels.append(v)
        parts.append(p)
    assert run_convert("pdebench", folder, "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "ns_incom")
    m = d["meta"]
    assert m.channels == ["vx", "vy", "particles"] and m.pde == "ns2d_incompressible"
    np.testing.assert_allclose(m.dt, 0.05)
    assert d["train"]["fields"].shape == (8, 4, 8, 8, 3)
    np.testing.assert_array_equal(d["train"]["fields"][6, ..., :2], vels[1][1])  # trajectory 6 = shard 1, #1
    np.testing.assert_array_equal(d["test"]["fields"][0, ..., 2], parts[1][4, ..., 0])


def test_not_pdebench(tmp_path, capsys):
    src = tmp_path / "x.h5"
    with h5py.File(src, "w") as f:
        f["foo"] = np.ones(3)
    assert_fails(capsys, "pdebench", src, "--out", tmp_path / "o", match="not a PDEBench file")


def test_wrong_axis_count(tmp_path, capsys):
    src = tmp_path / "ns.h5"
    with h5py.File(src, "w") as f:
        f["velocity"] = np.ones((5, 4, 8, 2), np.float32)
        f["particles"] = np.ones((5, 4, 8, 1), np.float32)
    assert_fails(capsys, "pdebench", src, "--out", tmp_path / "o", match="expected velocity (N, T, X, Y, 2)")


def test_1d_cfd_transmissive_and_name_numbers(tmp_path):
    src = tmp_path / "1D_CFD_Shock_Eta1.e-8_Zeta1.e-8_trans_Train.hdf5"
    data = _cfd(src, 1)
    assert run_convert("pdebench", src, "--out", tmp_path / "out", "--name", "shock") == 0
    d = read_dataset(tmp_path / "out" / "shock")
    m = d["meta"]
    assert m.channels == ["Vx", "density", "pressure"] and m.boundary == ["open"]
    assert m.params["eta"] == 1e-8 and m.params["zeta"] == 1e-8
    np.testing.assert_array_equal(d["train"]["fields"][..., 2], data["pressure"][:8])


def test_seed_group_without_data_is_an_error(tmp_path, capsys):
    src = tmp_path / "2D_diff-react_NA_NA.h5"
    _seed_file(src, 4, (3, 6, 6, 2), 1.0, -1.0, 1.0)
    with h5py.File(src, "a") as f:
        del f["0002/data"]  # an interrupted download: the group is there, its data is not
    assert_fails(
        capsys,
        "pdebench",
        src,
        "--out",
        tmp_path / "out",
        "--split",
        "2,1,1",
        match="seed group 0002 has no `data` array",
    )
    first = tmp_path / "sub" / "2D_diff-react_NA_NA.h5"
    first.parent.mkdir()
    _seed_file(first, 4, (3, 6, 6, 2), 1.0, -1.0, 1.0)
    with h5py.File(first, "a") as f:
        del f["0000/data"], f["0003/data"]
    assert_fails(
        capsys,
        "pdebench",
        first,
        "--out",
        tmp_path / "out",
        "--split",
        "2,1,1",
        match="seed group 0000 has no `data` array (2 groups lack it)",
    )
    assert not (tmp_path / "out").exists()


def test_variables_file_missing_a_variable_is_an_error(tmp_path, capsys):
    src = tmp_path / "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5"
    _cfd(src, 2)
    with h5py.File(src, "a") as f:
        del f["Vy"]
    assert_fails(capsys, "pdebench", src, "--out", tmp_path / "out", match="variable Vy missing from this 2D file")
    # choosing variables explicitly still works
    assert run_convert("pdebench", src, "--out", tmp_path / "out", "--channels", "Vx,density,pressure") == 0


def test_coordinates_must_match_the_data_axes(tmp_path, capsys):
    src = tmp_path / "1D_Advection_Sols_beta0.1.hdf5"
    with h5py.File(src, "w") as f:
        f["tensor"] = np.ones((10, 4, 16), np.float32)
        f["x-coordinate"] = np.linspace(0, 1, 15)
        f["t-coordinate"] = np.linspace(0, 1, 5)
    assert_fails(
        capsys,
        "pdebench",
        src,
        "--out",
        tmp_path / "o",
        match="x-coordinate has 15 points but the data axis it labels has 16",
    )
    seeds = tmp_path / "2D_rdb_NA_NA.h5"
    _seed_file(seeds, 4, (5, 8, 8, 1), 1.0, -2.5, 2.5)
    with h5py.File(seeds, "a") as f:
        del f["0000/grid/t"]
        f["0000/grid/t"] = np.linspace(0, 1, 9)
    assert_fails(
        capsys,
        "pdebench",
        seeds,
        "--out",
        tmp_path / "o",
        "--split",
        "2,1,1",
        match="0000/grid/t has 9 entries but the data has 5 frames",
    )


def test_missing_time_coordinate_warns_dt_one(tmp_path, capsys):
    src = tmp_path / "1D_Burgers_Sols_Nu0.1.hdf5"
    with h5py.File(src, "w") as f:
        f["tensor"] = np.ones((10, 4, 16), np.float32)
    assert run_convert("pdebench", src, "--out", tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "no time coordinate; dt = 1.0" in err
    assert read_dataset(tmp_path / "out" / "1D_Burgers_Sols_Nu0.1")["meta"].dt == 1.0
    assert run_convert("pdebench", src, "--out", tmp_path / "out", "--overwrite", "--dt", "0.01") == 0
    assert "dt = 1.0" not in capsys.readouterr().err
