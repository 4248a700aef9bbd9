"""`dpot convert fno-mat`: FNO Navier-Stokes/Darcy/Burgers `.mat` in MATLAB v5 (scipy) and v7.3 (HDF5 with
reversed axes, as MATLAB writes them)."""

from __future__ import annotations

import h5py
import numpy as np
import scipy.io
from test_convert_common import assert_fails, read_dataset, run_convert

RNG = np.random.default_rng(0)


def save_v73(path, arrays: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file: HDF5 behind a 512-byte MAT header, every array stored column-major, i.e. with its
    axes reversed when seen from h5py (MATLAB's `u` (N, 64, 64, T) reads as (T, 64, 64, N))."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, value in arrays.items():
            ds = f.create_dataset(key, data=np.ascontiguousarray(value.T))
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Nov 26 2026 HDF5 schema 1.00 .")


def ns_arrays(n=10, res=8, t=6):
    rng = np.random.default_rng(0)
    u = rng.standard_normal((n, res, res + 1, t)).astype(np.float32)  # x and y sizes differ: catches swaps
    a = rng.standard_normal((n, res, res + 1)).astype(np.float32)
    return {"a": a, "u": u, "t": np.arange(1, t + 1, dtype=np.float64)[None] * 0.5}


def test_ns_v5(tmp_path):
    arrs = ns_arrays()
    scipy.io.savemat(tmp_path / "ns_V1e-3_N10_T6.mat", arrs)
    assert run_convert("fno-mat", tmp_path / "ns_V1e-3_N10_T6.mat", "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "ns_V1e-3_N10_T6")
    assert d["train"]["fields"].shape == (8, 6, 8, 9, 1)
    assert [len(d[s]["fields"]) for s in ("val", "test")] == [1, 1]
    # canonical fields[n, t, x, y, 0] == u[n, x, y, t]
    assert d["train"]["fields"][3, 4, 5, 7, 0] == arrs["u"][3, 5, 7, 4]
    np.testing.assert_array_equal(d["test"]["fields"][0, ..., 0], arrs["u"][9].transpose(2, 0, 1))
    meta = d["meta"]
    assert meta.pde == "ns2d_vorticity" and meta.channels == ["vorticity"] and meta.space == ["x", "y"]
    assert meta.dt == 0.5 and meta.boundary == ["periodic", "periodic"] and meta.domain == [[0, 1], [0, 1]]
    assert meta.params["viscosity"] == 1e-3


def test_ns_v73_axis_reversal_matches_v5(tmp_path):
    arrs = ns_arrays()
    scipy.io.savemat(tmp_path / "v5.mat", arrs)
    save_v73(tmp_path / "v73.mat", arrs)
    with h5py.File(tmp_path / "v73.mat", "r") as f:
        assert f["u"].shape == (6, 9, 8, 10)  # the trap: h5py sees (T, Y, X, N)
    for name in ("v5", "v73"):
        code = run_convert("fno-mat", tmp_path / f"{name}.mat", "--out", tmp_path / "out", "--with-initial")
        assert code == 0
    d5, d73 = read_dataset(tmp_path / "out" / "v5"), read_dataset(tmp_path / "out" / "v73")
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(d5[s]["fields"], d73[s]["fields"])
    # --with-initial: frame 0 is `a`, frame k is u[..., k-1]
    np.testing.assert_array_equal(d73["train"]["fields"][2, 0, ..., 0], arrs["a"][2])
    assert d73["train"]["fields"][2, 3, 1, 4, 0] == arrs["u"][2, 1, 4, 2]
    assert d73["meta"].params["mat_version"] == "7.3" and d73["meta"].dt == 0.5


def test_darcy_v5_and_v73(tmp_path):
    rng = np.random.default_rng(1)
    coeff = rng.uniform(3, 12, (10, 11, 11)).astype(np.float32)
    sol = rng.standard_normal((10, 11, 11)).astype(np.float32)
    scipy.io.savemat(tmp_path / "piececonst_r11_N10.mat", {"coeff": coeff, "sol": sol})
    save_v73(tmp_path / "darcy73.mat", {"coeff": coeff, "sol": sol})
    for stem in ("piececonst_r11_N10", "darcy73"):
        assert run_convert("fno-mat", tmp_path / f"{stem}.mat", "--out", tmp_path / "out") == 0
        d = read_dataset(tmp_path / "out" / stem)
        assert d["meta"].steady and d["meta"].pde == "darcy" and d["meta"].input_channels == ["a"]
        assert d["train"]["inputs"].shape == (8, 11, 11, 1) and d["train"]["targets"].shape == (8, 11, 11, 1)
        assert d["val"]["inputs"][0, 2, 7, 0] == coeff[8, 2, 7]
        assert d["test"]["targets"][0, 9, 1, 0] == sol[9, 9, 1]


def test_unknown_mat_content(tmp_path, capsys):
    scipy.io.savemat(tmp_path / "x.mat", {"foo": np.ones((3, 3))})
    assert_fails(capsys, "fno-mat", tmp_path / "x.mat", "--out", tmp_path / "out", match="no FNO variables")


def test_ns_wrong_axis_count(tmp_path, capsys):
    scipy.io.savemat(tmp_path / "x.mat", {"coeff": np.ones((3, 4, 4)), "sol": np.ones((3, 4))})
    assert_fails(capsys, "fno-mat", tmp_path / "x.mat", "--out", tmp_path / "out", match="equal shape")


def test_burgers_steady(tmp_path):
    a = RNG.standard_normal((10, 32)).astype(np.float32)
    u = RNG.standard_normal((10, 32)).astype(np.float32)
    scipy.io.savemat(tmp_path / "burgers_data_R10.mat", {"a": a, "u": u})
    assert run_convert("fno-mat", tmp_path / "burgers_data_R10.mat", "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "burgers_data_R10")
    m = d["meta"]
    assert m.steady and m.pde == "burgers" and m.space == ["x"] and m.input_channels == ["u0"]
    np.testing.assert_array_equal(d["test"]["inputs"][0, :, 0], a[9])
    np.testing.assert_array_equal(d["test"]["targets"][0, :, 0], u[9])
