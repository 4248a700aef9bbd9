"""`dpot convert dpot-ref`: the reference DPOT code's processed data, HDF5 `data` (N, X, Y, T[, C]) one file per
split, or scatter storage `train/data_{i}.hdf5` (X, Y[, Z], T, C) per trajectory."""

from __future__ import annotations

import h5py
import numpy as np
from test_convert_common import assert_fails, read_dataset, run_convert

RNG = np.random.default_rng(0)


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data)
    return data


def test_single_files_per_split_without_channel_axis(tmp_path, capsys):
    # DPOT's FNO Navier-Stokes files: (N, X, Y, T), no channel axis; x and y sizes differ to catch swaps
    train = write(tmp_path / "large" / "ns2d_1e-5_train.hdf5", RNG.standard_normal((10, 8, 7, 6)).astype(np.float32))
    test = write(tmp_path / "large" / "ns2d_1e-5_test.hdf5", RNG.standard_normal((2, 8, 7, 6)).astype(np.float32))
    assert (
        run_convert(
            "dpot-ref",
            f"train={tmp_path / 'large' / 'ns2d_1e-5_train.hdf5'}",
            f"test={tmp_path / 'large' / 'ns2d_1e-5_test.hdf5'}",
            "--out",
            tmp_path / "out",
        )
        == 0
    )
    assert "dt = 1.0" in capsys.readouterr().err
    d = read_dataset(tmp_path / "out" / "ns2d_1e-5")  # the split word is dropped from the name
    m = d["meta"]
    assert m.pde == "ns2d_vorticity" and m.channels == ["w"] and m.space == ["x", "y"] and m.dt == 1.0
    assert d["train"]["fields"].shape == (9, 6, 8, 7, 1)  # (N, T, X, Y, C)
    np.testing.assert_array_equal(d["train"]["fields"][3, 2, :, :, 0], train[3, :, :, 2])
    np.testing.assert_array_equal(d["val"]["fields"][0, ..., 0], train[9].transpose(2, 0, 1))
    np.testing.assert_array_equal(d["test"]["fields"][1, ..., 0], test[1].transpose(2, 0, 1))


def test_scatter_storage_dataset_folder(tmp_path):
    # DPOT's PDEBench CFD folders: train/ and test/ of data_{i}.hdf5, each (X, Y, T, C) with (Vx, Vy, rho, p)
    root = tmp_path / "pdebench" / "ns2d_pdb_M1_eta1e-1_zeta1e-1"
    train = [
        write(root / "train" / f"data_{i}.hdf5", RNG.standard_normal((6, 5, 4, 4)).astype(np.float32))
        for i in range(12)
    ]  # data_10 and data_11 sort after data_9
    test = [
        write(root / "test" / f"data_{i}.hdf5", RNG.standard_normal((6, 5, 4, 4)).astype(np.float32)) for i in range(2)
    ]
    assert run_convert("dpot-ref", root, "--out", tmp_path / "out", "--dt", "0.05") == 0
    d = read_dataset(tmp_path / "out" / root.name)
    m = d["meta"]
    assert m.pde == "compressible_ns" and m.channels == ["Vx", "Vy", "density", "pressure"] and m.dt == 0.05
    assert [len(d[s]["fields"]) for s in ("train", "val", "test")] == [11, 1, 2]
    np.testing.assert_array_equal(d["train"]["fields"][10], np.moveaxis(train[10], 2, 0))
    np.testing.assert_array_equal(d["val"]["fields"][0], np.moveaxis(train[11], 2, 0))
    np.testing.assert_array_equal(d["test"]["fields"][1], np.moveaxis(test[1], 2, 0))


def test_3d_scatter_folder_carved(tmp_path):
    folder = tmp_path / "ns3d_pdb_M1_rand" / "train"
    samples = [
        write(folder / f"data_{i}.hdf5", RNG.standard_normal((4, 4, 3, 5, 5)).astype(np.float32)) for i in range(10)
    ]
    assert run_convert("dpot-ref", folder, "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "ns3d_pdb_M1_rand")
    m = d["meta"]
    assert m.space == ["x", "y", "z"] and m.channels == ["Vx", "Vy", "Vz", "pressure", "density"]
    assert d["train"]["fields"].shape == (8, 5, 4, 4, 3, 5)
    np.testing.assert_array_equal(d["test"]["fields"][0], np.moveaxis(samples[9], 3, 0))


def test_bad_sources(tmp_path, capsys):
    write(tmp_path / "flat.hdf5", np.ones((4, 8), np.float32))
    assert_fails(capsys, "dpot-ref", tmp_path / "flat.hdf5", "--out", tmp_path / "o", match="expected DPOT's (X, Y, T)")
    with h5py.File(tmp_path / "nodata.hdf5", "w") as f:
        f["u"] = np.ones((4, 8, 8, 5), np.float32)
    assert_fails(capsys, "dpot-ref", tmp_path / "nodata.hdf5", "--out", tmp_path / "o", match="key 'data' missing")
    folder = tmp_path / "swe_pdb" / "train"
    write(folder / "data_0.hdf5", np.ones((4, 4, 5, 1), np.float32))
    write(folder / "data_1.hdf5", np.ones((4, 4, 6, 1), np.float32))
    write(folder / "data_2.hdf5", np.ones((4, 4, 5, 1), np.float32))
    assert_fails(
        capsys,
        "dpot-ref",
        folder,
        "--out",
        tmp_path / "o",
        "--split",
        "1,1,1",
        "--dt",
        "0.01",
        match="data_1.hdf5: data has shape (4, 4, 6, 1), expected (4, 4, 5, 1)",
    )
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
