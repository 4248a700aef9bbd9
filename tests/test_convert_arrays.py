"""`dpot convert arrays`: .npz/.npy/.pt/.h5 with named keys and a user-given axis order."""

from __future__ import annotations

from fractions import Fraction

import h5py
import numpy as np
import pytest
import torch
from test_convert_common import assert_fails, read_dataset, run_convert

RNG = np.random.default_rng(0)


def test_npz_layout_with_channels(tmp_path):
    u = RNG.standard_normal((10, 4, 6, 5, 2)).astype(np.float32)  # n t x y c
    np.savez(tmp_path / "mine.npz", u=u, other=np.zeros(3))
    assert (
        run_convert(
            "arrays",
            tmp_path / "mine.npz",
            "--out",
            tmp_path / "out",
            "--fields",
            "u",
            "--layout",
            "n t x y c",
            "--pde",
            "wave",
            "--dt",
            "0.1",
            "--domain",
            "0:2,0:1",
            "--boundary",
            "periodic,dirichlet",
            "--channels",
            "p,q",
            "--name",
            "w",
        )
        == 0
    )
    d = read_dataset(tmp_path / "out" / "w")
    m = d["meta"]
    assert (m.pde, m.dt, m.channels, m.space) == ("wave", 0.1, ["p", "q"], ["x", "y"])
    assert m.domain == [[0, 2], [0, 1]] and m.boundary == ["periodic", "dirichlet"]
    np.testing.assert_array_equal(d["train"]["fields"], u[:8])


def test_npy_time_last_without_channel_axis(tmp_path):
    w = RNG.standard_normal((10, 6, 5, 4)).astype(np.float32)  # n x y t, like the FNO vorticity arrays
    np.save(tmp_path / "w.npy", w)
    assert run_convert("arrays", tmp_path / "w.npy", "--out", tmp_path / "out", "--layout", "n x y t") == 0
    d = read_dataset(tmp_path / "out" / "w")
    assert d["meta"].channels == ["w"] and d["train"]["fields"].shape == (8, 4, 6, 5, 1)
    assert d["val"]["fields"][0, 3, 2, 1, 0] == w[8, 2, 1, 3]


def test_h5_nested_keys_stacked_and_transposed(tmp_path):
    a = RNG.standard_normal((4, 6, 10)).astype(np.float32)  # t x n
    b = RNG.standard_normal((4, 6, 10)).astype(np.float32)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["sim/a"], f["sim/b"] = a, b
    assert (
        run_convert(
            "arrays",
            tmp_path / "d.h5",
            "--out",
            tmp_path / "out",
            "--fields",
            "sim/a,sim/b",
            "--layout",
            "t x n",
            "--channels",
            "a,b",
        )
        == 0
    )
    d = read_dataset(tmp_path / "out" / "d")
    assert d["train"]["fields"].shape == (8, 4, 6, 2) and d["meta"].space == ["x"]
    np.testing.assert_array_equal(d["test"]["fields"][0, ..., 1], b[..., 9])


def test_pt_steady_pairs(tmp_path):
    x = torch.randn(10, 1, 7, 7)  # neuraloperator convention: channel axis 1
    y = torch.randn(10, 1, 7, 7)
    torch.save({"x": x, "y": y}, tmp_path / "darcy_train_7.pt")
    assert (
        run_convert(
            "arrays",
            tmp_path / "darcy_train_7.pt",
            "--out",
            tmp_path / "out",
            "--inputs",
            "x",
            "--targets",
            "y",
            "--layout",
            "n c x y",
            "--pde",
            "darcy",
            "--input-channels",
            "a",
            "--channels",
            "u",
            "--boundary",
            "dirichlet",
        )
        == 0
    )
    d = read_dataset(tmp_path / "out" / "darcy_train_7")
    m = d["meta"]
    assert m.steady and m.input_channels == ["a"] and m.channels == ["u"] and m.pde == "darcy"
    np.testing.assert_array_equal(d["val"]["inputs"][0, ..., 0], x[8, 0].numpy())
    np.testing.assert_array_equal(d["test"]["targets"][0, ..., 0], y[9, 0].numpy())


def test_pt_with_objects_is_refused(tmp_path, capsys):
    torch.save({"x": torch.zeros(3, 2, 4), "meta": Fraction(1, 3)}, tmp_path / "bad.pt")  # any pickled object
    assert_fails(
        capsys,
        "arrays",
        tmp_path / "bad.pt",
        "--out",
        tmp_path / "o",
        "--layout",
        "n t x",
        "--fields",
        "x",
        match="more than tensors",
    )


@pytest.mark.parametrize(
    "layout, match",
    [
        ("n t x x", "bad --layout"),
        ("n x y", "need a t axis"),
        ("n t x y", "has 5 axes"),
        ("n t c", "at least one space axis"),
        ("n t x-y c", "bad --layout"),
    ],
)
def test_bad_layout(tmp_path, capsys, layout, match):
    np.savez(tmp_path / "m.npz", u=np.zeros((10, 4, 6, 5, 2), np.float32))
    assert_fails(
        capsys, "arrays", tmp_path / "m.npz", "--out", tmp_path / "o", "--fields", "u", "--layout", layout, match=match
    )


def test_missing_key_and_options(tmp_path, capsys):
    np.savez(tmp_path / "m.npz", u=np.zeros((10, 4, 6), np.float32), v=np.zeros((10, 4, 6), np.float32))
    assert_fails(
        capsys,
        "arrays",
        tmp_path / "m.npz",
        "--out",
        tmp_path / "o",
        "--fields",
        "w",
        "--layout",
        "n t x",
        match="key 'w' missing (found: u, v)",
    )
    assert_fails(capsys, "arrays", tmp_path / "m.npz", "--out", tmp_path / "o", "--layout", "n t x", match="--fields")
    assert_fails(capsys, "arrays", tmp_path / "m.npz", "--out", tmp_path / "o", "--fields", "u", match="needs --layout")
    assert_fails(
        capsys,
        "arrays",
        tmp_path / "m.npz",
        "--out",
        tmp_path / "o",
        "--inputs",
        "u",
        "--layout",
        "n x y",
        match="both --inputs and --targets",
    )
    assert_fails(
        capsys,
        "arrays",
        tmp_path / "m.npz",
        "--out",
        tmp_path / "o",
        "--inputs",
        "u",
        "--targets",
        "v",
        "--layout",
        "n t x",
        match="no t axis",
    )


def test_pt_legacy_format_single_tensor(tmp_path):
    u = torch.randn(10, 3, 5)  # n t x, saved in the pre-zip format (cannot be memory-mapped)
    torch.save(u, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert run_convert("arrays", tmp_path / "old.pt", "--out", tmp_path / "out", "--layout", "n t x") == 0
    d = read_dataset(tmp_path / "out" / "old")
    assert d["meta"].channels == ["old"]
    np.testing.assert_array_equal(d["test"]["fields"][0, ..., 0], u[9].numpy())
