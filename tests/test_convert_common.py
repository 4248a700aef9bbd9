"""`dpot convert`: shared helpers for the importer tests, and the bad-input cases every importer shares."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from unittest import mock

import h5py
import numpy as np
import pytest

from dpot import cli
from dpot.data.format import SPLITS, open_split


def run_convert(*argv: str) -> int:
    """Run `dpot convert ARGS` through the real CLI entry point. Sub-commands whose modules are not importable
    (another part of the project not written yet) are left out of the parser, so these tests depend on convert
    alone."""
    available = {k: v for k, v in cli.COMMANDS.items() if importlib.util.find_spec(f"dpot.commands.{v[0]}")}
    with mock.patch.dict(cli.COMMANDS, available, clear=True):
        return cli.main(["convert", *map(str, argv), "--no-progress"])


def read_dataset(folder: Path) -> dict:
    """All splits of a canonical dataset folder: arrays per split plus the metadata."""
    out = {}
    for s in SPLITS:
        sp = open_split(folder, s)
        with h5py.File(sp.path, "r") as f:
            out[s] = {k: f[k][()] for k in f.keys()}
        out["meta"] = sp.meta
    return out


def assert_fails(capsys, *argv: str, match: str) -> str:
    """The command exits 2 with one line on stderr containing `match`."""
    code = run_convert(*argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("dpot convert: error:"), err
    assert match in err[0], err[0]
    return err[0]


def _pdebench_file(path: Path, values: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        f["tensor"] = values
        f["x-coordinate"] = (np.arange(values.shape[2]) + 0.5) / values.shape[2]
        f["t-coordinate"] = np.linspace(0.0, 0.05 * values.shape[1], values.shape[1] + 1)
    return path


def test_unknown_format(tmp_path, capsys):
    assert_fails(capsys, "netcdf", tmp_path, "--out", tmp_path / "out", match="unknown format 'netcdf'")


def test_missing_source(tmp_path, capsys):
    assert_fails(capsys, "pdebench", tmp_path / "nope.h5", "--out", tmp_path / "out", match="no such file")


def test_truncated_hdf5_leaves_nothing(tmp_path, capsys):
    src = _pdebench_file(tmp_path / "1D_Burgers_Sols_Nu0.1.hdf5", np.ones((10, 4, 64), np.float32))
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    assert_fails(capsys, "pdebench", src, "--out", tmp_path / "out", match="truncated or corrupt")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_corrupt_bytes(tmp_path, capsys):
    src = tmp_path / "junk.h5"
    src.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert_fails(capsys, "pdebench", src, "--out", tmp_path / "out", match="truncated or corrupt")


def test_nan_in_source_leaves_no_partial_output(tmp_path, capsys):
    values = np.ones((10, 4, 8), np.float32)
    values[9, 2, 3] = np.nan  # last trajectory: train and val are already written when it is reached
    src = _pdebench_file(tmp_path / "1D_Advection_Sols_beta0.1.hdf5", values)
    out = tmp_path / "out"
    line = assert_fails(capsys, "pdebench", src, "--out", out, match="NaN or Inf")
    assert "trajectory 9 contains NaN or Inf" in line
    assert not out.exists() or not any(out.iterdir()), list(out.rglob("*"))


def test_inf_in_source(tmp_path, capsys):
    values = np.ones((10, 4, 8), np.float32)
    values[0, 0, 0] = np.inf
    src = _pdebench_file(tmp_path / "1D_Advection_Sols_beta0.1.hdf5", values)
    assert_fails(capsys, "pdebench", src, "--out", tmp_path / "out", match="NaN or Inf")


def test_existing_output_needs_overwrite(tmp_path, capsys):
    src = _pdebench_file(tmp_path / "1D_Burgers_Sols_Nu0.1.hdf5", np.ones((10, 4, 8), np.float32))
    assert run_convert("pdebench", src, "--out", tmp_path / "out") == 0
    assert_fails(capsys, "pdebench", src, "--out", tmp_path / "out", match="--overwrite")
    assert run_convert("pdebench", src, "--out", tmp_path / "out", "--overwrite", "--dt", "0.5") == 0
    assert open_split(tmp_path / "out" / "1D_Burgers_Sols_Nu0.1", "val").meta.dt == 0.5


@pytest.mark.parametrize(
    "split, match",
    [
        ("0.5,0.5", "bad --split"),
        ("0.98,0.01,0.01", "empty"),
        ("8,8,8", "asks for 24"),
        ("0.7,0.2,x", "bad --split"),
    ],
)
def test_bad_split(tmp_path, capsys, split, match):
    src = _pdebench_file(tmp_path / "1D_Burgers_Sols_Nu0.1.hdf5", np.ones((10, 4, 8), np.float32))
    assert_fails(capsys, "pdebench", src, "--out", tmp_path / "out", "--split", split, match=match)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--pde", "plasma"], "unknown pde 'plasma'"),
        (["--boundary", "sticky"], "unknown boundary"),
        (["--domain", "0:1,0:1"], "has 2 axes"),
        (["--domain", "1:0"], "bad --domain"),
        (["--channels", "a,b"], "names 2 channels"),
        (["--name", "../x"], "not a plain folder name"),
    ],
)
def test_bad_overrides(tmp_path, capsys, args, match):
    src = _pdebench_file(tmp_path / "1D_Burgers_Sols_Nu0.1.hdf5", np.ones((10, 4, 8), np.float32))
    assert_fails(capsys, "pdebench", src, "--out", tmp_path / "out", *args, match=match)


def test_split_counts_and_overrides(tmp_path):
    values = np.arange(10 * 4 * 8, dtype=np.float32).reshape(10, 4, 8)
    src = _pdebench_file(tmp_path / "1D_Burgers_Sols_Nu0.1.hdf5", values)
    assert (
        run_convert(
            "pdebench",
            src,
            "--out",
            tmp_path,
            "--split",
            "6,2,1",
            "--name",
            "burgers",
            "--domain",
            "0:2",
            "--boundary",
            "neumann",
            "--channels",
            "velocity",
        )
        == 0
    )
    d = read_dataset(tmp_path / "burgers")
    assert [len(d[s]["fields"]) for s in SPLITS] == [6, 2, 1]  # trajectory 9 is left out
    np.testing.assert_array_equal(d["test"]["fields"][0, ..., 0], values[8])
    assert d["meta"].domain == [[0.0, 2.0]] and d["meta"].boundary == ["neumann"]
    assert d["meta"].channels == ["velocity"]


def _make_source(kind: str, folder: Path) -> tuple[list[str], Path]:
    """A valid small source of each file type, and the command-line arguments that convert it."""
    import scipy.io
    import torch

    x = np.random.default_rng(0).standard_normal((10, 3, 16, 16)).astype(np.float32)
    if kind == "mat-v5":
        p = folder / "ns.mat"
        scipy.io.savemat(p, {"u": x.transpose(0, 2, 3, 1)})
        return ["fno-mat", p], p
    if kind == "mat-v73":
        p = folder / "ns.mat"
        with h5py.File(p, "w", userblock_size=512) as f:
            f["u"] = x.transpose(0, 2, 3, 1).T
        return ["fno-mat", p], p
    if kind == "pdearena":
        p = folder / "shard.h5"
        with h5py.File(p, "w") as f:
            for k in ("u", "vx", "vy"):
                f[f"train/{k}"] = x
        return ["pdearena", p], p
    if kind == "npz":
        p = folder / "a.npz"
        np.savez(p, u=x)
        return ["arrays", p, "--layout", "n t x y"], p
    if kind == "pt":
        p = folder / "a.pt"
        torch.save({"u": torch.from_numpy(x)}, p)
        return ["arrays", p, "--layout", "n t x y"], p
    p = folder / "a.npy"
    np.save(p, x)
    return ["arrays", p, "--layout", "n t x y"], p


@pytest.mark.parametrize("kind", ["mat-v5", "mat-v73", "pdearena", "npz", "pt", "npy"])
def test_truncated_sources(tmp_path, capsys, kind):
    args, path = _make_source(kind, tmp_path)
    assert run_convert(*args, "--out", tmp_path / "ok") == 0  # the intact file converts
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    line = assert_fails(capsys, *args, "--out", tmp_path / "out", match=str(path))
    assert "truncated or corrupt" in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_help_lists_every_importer():
    from dpot.commands.convert import FORMATS
    from dpot.data.importers import IMPORTERS

    assert FORMATS == tuple(IMPORTERS)
