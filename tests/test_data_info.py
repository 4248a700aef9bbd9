"""`dpot info`: dataset folders, roots of datasets, split files, steady-state data, bad paths."""

import argparse

import numpy as np
import pytest

from dpot.commands import info
from dpot.data import DatasetMeta, write_split
from dpot.errors import DpotError


def _run(*argv):
    parser = argparse.ArgumentParser()
    info.add_arguments(parser)
    return info.run(parser.parse_args([*map(str, argv), "--no-progress"]))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("info")
    meta = DatasetMeta(
        name="swe",
        pde="shallow_water",
        channels=["h"],
        space=["x", "y"],
        domain=[[-2.5, 2.5], [-2.5, 2.5]],
        boundary=["neumann", "neumann"],
        dt=0.01,
        params={"g": 1.0},
        source="test",
    )
    fields = np.linspace(-3, 7, 2 * 5 * 4 * 4, dtype=np.float32).reshape(2, 5, 4, 4, 1)
    write_split(root / "swe" / "train.h5", meta, fields=fields)
    write_split(root / "swe" / "test.h5", meta, fields=fields[:1])
    steady = DatasetMeta(
        name="darcy",
        pde="darcy",
        channels=["u"],
        space=["x", "y"],
        domain=[[0, 1], [0, 1]],
        boundary=["dirichlet", "dirichlet"],
        steady=True,
        input_channels=["a"],
    )
    write_split(
        root / "darcy" / "train.h5",
        steady,
        inputs=np.full((3, 4, 4, 1), 2.0, np.float32),
        targets=np.zeros((3, 4, 4, 1), np.float32),
    )
    return root


def test_dataset_folder(root, capsys):
    assert _run(root / "swe") == 0
    out = capsys.readouterr().out
    for text in (
        "swe",
        "shallow_water",
        "x neumann, y neumann",
        "channels:  h",
        "dt:        0.01",
        "[-2.5, 2.5] x [-2.5, 2.5]",
        "train  2 trajectories x 5 frames, fields (2, 5, 4, 4, 1)",
        "test   1 trajectories",
        '"g": 1.0',
    ):
        assert text in out, text
    train = next(line for line in out.splitlines() if line.strip().startswith("train") and "mean" in line)
    assert "-3 / 7" in train and "mean 2 " in train


def test_root_and_steady_and_split_file(root, capsys):
    _run(root)
    out = capsys.readouterr().out
    assert "darcy" in out and "swe" in out and "(steady-state)" in out
    assert "inputs (3, 4, 4, 1), targets (3, 4, 4, 1)" in out and "train inputs" in out
    _run(root / "swe" / "test.h5", "--no-ranges")
    out = capsys.readouterr().out
    assert "test   1 trajectories" in out and "train" not in out and "value ranges" not in out


def test_bad_paths(root, tmp_path):
    with pytest.raises(DpotError, match="no such file"):
        _run(tmp_path / "missing")
    with pytest.raises(DpotError, match="neither a dataset folder"):
        _run(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DpotError, match="not a dataset split"):
        _run(tmp_path / "notes.txt")
    (tmp_path / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(DpotError, match="truncated or corrupt"):
        _run(tmp_path / "broken.h5")


def test_checkpoint_folder(tmp_path, capsys):
    from dpot.models import DPOT

    DPOT.from_preset("demo").save_pretrained(tmp_path / "ckpt")
    assert _run(tmp_path / "ckpt") == 0
    out = capsys.readouterr().out
    assert "model_type dpot" in out and "parameters" in out
