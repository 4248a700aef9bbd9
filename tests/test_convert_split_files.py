"""`dpot convert KIND train=A test=B [val=C]` for every importer (a split not given is carved from train by
--split), and `dpot convert KIND test=B` (an evaluation-only dataset)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from test_convert_cfdbench import write_case
from test_convert_common import _pdebench_file, assert_fails, run_convert
from test_convert_fno import ns_arrays
from test_convert_pdearena import write_shard
from test_convert_well import write_well

from dpot.data.format import SPLITS, open_split

KINDS = ["fno-mat", "pdebench", "pdearena", "the-well", "cfdbench", "arrays", "neuralop", "dpot-ref"]


def make_source(kind: str, folder: Path, split: str, n: int) -> tuple[Path, list[str]]:
    """One split's file (or folder) of `n` samples in the source's own layout, and the extra options it needs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    if kind == "fno-mat":
        path = folder / f"ns_V1e-3_N{n}_T6_{split}.mat"
        scipy.io.savemat(path, ns_arrays(n=n))
        return path, []
    if kind == "pdebench":
        return _pdebench_file(
            folder / f"1D_Burgers_Sols_Nu0.1_{split}.hdf5", rng.standard_normal((n, 4, 8)).astype(np.float32)
        ), []
    if kind == "pdearena":
        path = folder / f"NavierStokes2D_{split}_0.h5"
        write_shard(path, "valid" if split == "val" else split, n)
        return path, []
    if kind == "the-well":
        path = folder / f"shear_flow_{split}.hdf5"
        write_well(path, n)
        return path, []
    if kind == "cfdbench":
        root = folder / f"cavity_{split}"
        for i in range(n):
            write_case(root / "bc" / f"case{i:04d}", 4, {"vel_in": 1.0 + i, "height": 1.0, "width": 1.0})
        return root, ["--frames", "4"]
    if kind == "arrays":
        path = folder / f"u_{split}.npz"
        np.savez(path, u=rng.standard_normal((n, 5, 6, 6)).astype(np.float32))
        return path, ["--layout", "n t x y"]
    if kind == "neuralop":  # neuraloperator's Darcy files: x, y (N, X, Y), channel squeezed
        path = folder / f"darcy_{split}_8.pt"
        torch.save({"x": torch.rand(n, 8, 8), "y": torch.rand(n, 8, 8)}, path)
        return path, []
    path = folder / f"ns2d_1e-5_{split}.hdf5"  # DPOT's processed layout: data (N, X, Y, T)
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=rng.standard_normal((n, 8, 8, 6)).astype(np.float32))
    return path, []


def arrays(folder: Path, split: str) -> np.ndarray:
    sp = open_split(folder, split)
    with h5py.File(sp.path, "r") as f:
        return f["inputs" if sp.meta.steady else "fields"][()]


@pytest.mark.parametrize("kind", KINDS)
def test_train_and_test_files_val_carved(tmp_path, kind):
    train, opts = make_source(kind, tmp_path / "src", "train", 10)
    test, _ = make_source(kind, tmp_path / "src", "test", 3)
    out = tmp_path / "out"
    assert run_convert(kind, f"train={train}", f"test={test}", "--out", out, "--name", "ds", *opts) == 0
    # the test file alone: an evaluation-only dataset
    assert run_convert(kind, f"test={test}", "--out", out, "--name", "ds_test", *opts) == 0
    assert not (out / "ds_test" / "train.h5").exists() and not (out / "ds_test" / "val.h5").exists()
    # the train file alone, carved as a single-file source would be
    assert run_convert(kind, train, "--out", out, "--name", "whole", *opts) == 0
    whole = np.concatenate([arrays(out / "whole", s) for s in SPLITS])
    ds = {s: arrays(out / "ds", s) for s in SPLITS}
    units = len(whole) // 10  # cfdbench: windows per case
    assert len(ds["val"]) == units and len(ds["train"]) == 9 * units  # val: 10% of the train file, from its end
    np.testing.assert_array_equal(np.concatenate([ds["train"], ds["val"]]), whole)
    np.testing.assert_array_equal(ds["test"], arrays(out / "ds_test", "test"))
    assert len(ds["test"]) == 3 * units
    assert open_split(out / "ds", "train").meta.params["split_files"]["test"] == str(test)


def test_three_files_and_split_shares(tmp_path):
    src = tmp_path / "src"
    train, _ = make_source("pdebench", src, "train", 10)
    val, _ = make_source("pdebench", src, "val", 2)
    test, _ = make_source("pdebench", src, "test", 4)
    out = tmp_path / "out"
    assert run_convert("pdebench", f"val={val}", f"train={train}", f"test={test}", "--out", out, "--name", "a") == 0
    assert [len(open_split(out / "a", s)) for s in SPLITS] == [10, 2, 4]  # nothing carved
    # only train given: val and test carved by --split, as for one file
    assert run_convert("pdebench", f"train={train}", "--out", out, "--name", "b", "--split", "0.6,0.2,0.2") == 0
    assert [len(open_split(out / "b", s)) for s in SPLITS] == [6, 2, 2]
    # train and test given: val takes its --split share of the train file (fraction or count)
    assert (
        run_convert("pdebench", f"train={train}", f"test={test}", "--out", out, "--name", "c", "--split", "0.7,0.3,0")
        == 0
    )
    assert [len(open_split(out / "c", s)) for s in SPLITS] == [7, 3, 4]
    assert (
        run_convert("pdebench", f"train={train}", f"test={test}", "--out", out, "--name", "d", "--split", "0,4,0") == 0
    )
    assert [len(open_split(out / "d", s)) for s in SPLITS] == [6, 4, 4]


def test_split_file_errors(tmp_path, capsys):
    src = tmp_path / "src"
    train, _ = make_source("pdebench", src, "train", 10)
    other = _pdebench_file(src / "1D_Burgers_Sols_Nu0.1_test16.hdf5", np.ones((3, 4, 16), np.float32))
    out = tmp_path / "out"
    assert_fails(
        capsys, "pdebench", f"train={train}", f"test={other}", "--out", out, match="as its own evaluation-only dataset"
    )
    assert_fails(capsys, "pdebench", f"train={train}", "extra.h5", "--out", out, match="one file per split")
    assert_fails(capsys, "pdebench", f"train={train}", f"train={train}", "--out", out, match="train= given twice")
    test, _ = make_source("pdebench", src, "test", 3)
    assert_fails(
        capsys,
        "pdebench",
        f"train={train}",
        f"test={test}",
        "--split",
        "0.96,0.04,0",
        "--out",
        out,
        match="carves no 'val' trajectories",
    )
    assert not out.exists()
