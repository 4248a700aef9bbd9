"""`dpot convert neuralop`: neuraloperator's `.pt` files (`{name}_{train,test}_{res}.pt`, a dict with `x` and `y`,
channel axis 1 squeezed when there is one channel): Darcy and Navier-Stokes pairs, Burgers trajectories."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
from test_convert_common import assert_fails, read_dataset, run_convert

from dpot.data.format import open_split


def save(path, x, y):
    torch.save({"x": x, "y": y}, path)
    return x.numpy(), y.numpy()


def test_darcy_folder_train_and_test_files(tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    g = torch.Generator().manual_seed(0)
    x, y = save(src / "darcy_train_16.pt", torch.rand(10, 16, 16, generator=g), torch.rand(10, 16, 16, generator=g))
    xt, yt = save(src / "darcy_test_16.pt", torch.rand(3, 16, 16, generator=g), torch.rand(3, 16, 16, generator=g))
    save(src / "darcy_test_32.pt", torch.rand(2, 32, 32), torch.rand(2, 32, 32))  # another resolution
    assert run_convert("neuralop", src, "--out", tmp_path / "out") == 0
    d = read_dataset(tmp_path / "out" / "darcy")
    m = d["meta"]
    assert m.steady and m.pde == "darcy" and m.input_channels == ["a"] and m.channels == ["u"]
    assert m.space == ["x", "y"] and m.boundary == ["dirichlet"] * 2
    assert [len(d[s]["inputs"]) for s in ("train", "val", "test")] == [9, 1, 3]  # val: 10% of the train file
    np.testing.assert_array_equal(d["train"]["inputs"][..., 0], x[:9])
    np.testing.assert_array_equal(d["val"]["targets"][0, ..., 0], y[9])
    np.testing.assert_array_equal(d["test"]["targets"][..., 0], yt)
    np.testing.assert_array_equal(d["test"]["inputs"][..., 0], xt)
    # the 32x32 test file: its own evaluation-only dataset
    assert (
        run_convert("neuralop", f"test={src / 'darcy_test_32.pt'}", "--out", tmp_path / "out", "--name", "darcy_32")
        == 0
    )
    assert open_split(tmp_path / "out" / "darcy_32", "test").space_shape == (32, 32)


def test_navier_stokes_with_channel_axis(tmp_path):
    # (N, C, X, Y) with the channel axis kept: two input channels, one target
    src = tmp_path / "nsforcing_train_8.pt"
    x, y = save(src, torch.randn(10, 2, 8, 8), torch.randn(10, 1, 8, 8))
    assert run_convert("neuralop", src, "--out", tmp_path / "out", "--name", "ns") == 0
    d = read_dataset(tmp_path / "out" / "ns")
    m = d["meta"]
    assert m.pde == "ns2d_vorticity" and m.input_channels == ["w_in0", "w_in1"] and m.channels == ["w"]
    assert d["train"]["inputs"].shape == (8, 8, 8, 2) and d["train"]["targets"].shape == (8, 8, 8, 1)
    np.testing.assert_array_equal(d["test"]["inputs"][0], x[9].transpose(1, 2, 0))
    np.testing.assert_array_equal(d["val"]["targets"][0, ..., 0], y[8, 0])


def test_burgers_time_layout(tmp_path, capsys):
    # Burgers 1D-time: x (N, X) the initial condition, y (N, T, X) the solution in time
    traj = torch.randn(10, 5, 16)
    src = tmp_path / "burgers_train_16.pt"
    save(src, traj[:, 0].clone(), traj)  # y starts with x: stored as is
    assert run_convert("neuralop", src, "--out", tmp_path / "out", "--name", "b", "--dt", "0.25") == 0
    assert "dt = 1.0" not in capsys.readouterr().err
    d = read_dataset(tmp_path / "out" / "b")
    m = d["meta"]
    assert not m.steady and m.pde == "burgers" and m.space == ["x"] and m.dt == 0.25
    assert d["train"]["fields"].shape == (8, 5, 16, 1)
    np.testing.assert_array_equal(d["test"]["fields"][0, ..., 0], traj[9].numpy())
    # y without the initial state: x is prepended as frame 0
    src2 = tmp_path / "burgers_later_16.pt"
    save(src2, traj[:, 0].clone(), traj[:, 1:].clone())
    assert run_convert("neuralop", src2, "--out", tmp_path / "out", "--name", "b2") == 0
    assert "no time step; dt = 1.0" in capsys.readouterr().err
    d2 = read_dataset(tmp_path / "out" / "b2")
    np.testing.assert_array_equal(d2["train"]["fields"], d["train"]["fields"])
    assert d2["meta"].params["x"] == "prepended as frame 0"


def test_refuses_pickled_objects_and_bad_shapes(tmp_path, capsys):
    bad = tmp_path / "darcy_train_8.pt"
    torch.save({"x": torch.ones(4, 8, 8), "y": torch.ones(4, 8, 8), "meta": Fraction(1, 3)}, bad)  # a pickled object
    assert_fails(capsys, "neuralop", bad, "--out", tmp_path / "o", match="holds more than tensors")
    odd = tmp_path / "odd.pt"
    save(odd, torch.ones(10, 8, 8), torch.ones(10, 4, 4))
    assert_fails(capsys, "neuralop", odd, "--out", tmp_path / "o", match="matches neither the grid of x")
    nokey = tmp_path / "nokey.pt"
    torch.save({"a": torch.ones(4, 8)}, nokey)
    assert_fails(capsys, "neuralop", nokey, "--out", tmp_path / "o", match="key 'x' missing")


def test_layout_overrides_the_rank_rule(tmp_path):
    # 1D with two channels kept, (N, C, X): rank 3 would read as (N, X, Y) without --layout
    src = tmp_path / "pair.pt"
    x, y = save(src, torch.randn(10, 2, 12), torch.randn(10, 2, 12))
    assert run_convert("neuralop", src, "--out", tmp_path / "out", "--layout", "n c x", "--pde", "advection") == 0
    d = read_dataset(tmp_path / "out" / "pair")
    assert d["meta"].space == ["x"] and d["meta"].input_channels == ["x0", "x1"] and d["meta"].pde == "advection"
    np.testing.assert_array_equal(d["train"]["inputs"][0], x[0].T)
    np.testing.assert_array_equal(d["test"]["targets"][0], y[9].T)
