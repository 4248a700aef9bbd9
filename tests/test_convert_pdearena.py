"""`dpot convert pdearena`: NavierStokes-2D smoke shards, one split group per file (train/valid/test)."""

from __future__ import annotations

import h5py
import numpy as np
from test_convert_common import assert_fails, read_dataset, run_convert

RNG = np.random.default_rng(0)


def write_shard(path, split, n, t=5, res=8, buo=None):
    """A shard in PDEArena's writer schema (pdedatagen/navier_stokes.py): group `split` with u, vx, vy, ..."""
    arrays = {k: RNG.standard_normal((n, t, res, res)).astype(np.float32) for k in ("u", "vx", "vy")}
    with h5py.File(path, "w") as f:
        g = f.create_group(split)
        for k, v in arrays.items():
            g[k] = v
        g["t"] = np.tile(18.0 + 1.5 * np.arange(t), (n, 1))
        g["dt"] = np.full(n, 1.5)
        centres = (np.arange(res) + 0.5) * 32.0 / res
        g["x"] = g["y"] = np.tile(centres, (n, 1))
        g["dx"] = g["dy"] = np.full(n, 32.0 / res)
        g["buo_y"] = buo if buo is not None else np.full(n, 0.5)
    return arrays


def test_source_splits(tmp_path):
    src = tmp_path / "NavierStokes-2D-conditoned"
    src.mkdir()
    train = [
        write_shard(src / f"NavierStokes2D_train_{k}_0.50000_4.h5", "train", 4, buo=np.array([0.2, 0.3, 0.4, 0.5]) + k)
        for k in range(2)
    ]
    valid = write_shard(src / "NavierStokes2D_valid_7_0.50000_2.h5", "valid", 2)
    test = write_shard(src / "NavierStokes2D_test_9_0.50000_3.h5", "test", 3)
    assert run_convert("pdearena", src, "--out", tmp_path / "out", "--name", "ns_smoke") == 0
    d = read_dataset(tmp_path / "out" / "ns_smoke")
    assert [len(d[s]["fields"]) for s in ("train", "val", "test")] == [8, 2, 3]
    m = d["meta"]
    assert m.channels == ["smoke", "vx", "vy"] and m.pde == "ns2d_buoyancy"
    assert m.param_names == ["buoyancy_y"]
    np.testing.assert_allclose(m.domain, [[0, 32], [0, 32]])
    assert m.dt == 1.5 and m.boundary == ["wall", "wall"]
    # canonical (N, T, X, Y, C) with C = (u, vx, vy); shard 1 follows shard 0
    np.testing.assert_array_equal(d["train"]["fields"][5, ..., 0], train[1]["u"][1])
    np.testing.assert_array_equal(d["val"]["fields"][1, ..., 2], valid["vy"][1])
    np.testing.assert_array_equal(d["test"]["fields"][2, ..., 1], test["vx"][2])
    np.testing.assert_allclose(d["train"]["params"][:, 0], [0.2, 0.3, 0.4, 0.5, 1.2, 1.3, 1.4, 1.5])


def test_single_shard_is_carved(tmp_path):
    arrs = write_shard(tmp_path / "NavierStokes2D_train_1.h5", "train", 10)
    assert run_convert("pdearena", tmp_path / "NavierStokes2D_train_1.h5", "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "NavierStokes2D_train_1")
    assert [len(d[s]["fields"]) for s in ("train", "val", "test")] == [8, 1, 1]
    np.testing.assert_array_equal(d["test"]["fields"][0, ..., 0], arrs["u"][9])


def test_missing_variable(tmp_path, capsys):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["train/u"] = np.ones((2, 3, 4, 4), np.float32)
        f["train/vx"] = np.ones((2, 3, 4, 4), np.float32)
    assert_fails(capsys, "pdearena", tmp_path / "s.h5", "--out", tmp_path / "o", match="key 'vy' missing")


def test_no_split_group(tmp_path, capsys):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["u"] = np.ones((2, 3, 4, 4), np.float32)
    assert_fails(capsys, "pdearena", tmp_path / "s.h5", "--out", tmp_path / "o", match="no split group")
