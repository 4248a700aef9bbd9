"""Failure behaviour: NaN/Inf in data is reported (dataset, split, trajectory), metrics stay valid JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from failkit import checkpoint, dataset, listing

from dpot.cli import main

TINY = "tiny"  # the packaged preset


def test_nan_data_is_named_everywhere(tmp_path, capsys):
    data = dataset(tmp_path / "data", nan_at=1)
    ckpt = checkpoint(tmp_path / "ckpt")
    assert main(["info", str(data), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "dpot info: warning: dataset 'waves'" in err and "split train: NaN/Inf in trajectory 1 (1 of 3)" in err

    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "split test: NaN/Inf in trajectory 1 (1 of 3)" in err and "NaN/Inf (null in metrics.json)" in err
    text = (out / "metrics.json").read_text()
    assert "NaN" not in text and "null" in text
    json.loads(text)

    for argv in (
        ["pretrain", "--config", TINY, "--out", str(tmp_path / "run"), f"data.root={tmp_path / 'data'}"],
        ["finetune", "--from", str(ckpt), "--data", str(data), "--out", str(tmp_path / "ft")],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "error: dataset 'waves'" in err and "split train: NaN/Inf in trajectory 1" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "ft").exists()


def test_bad_sample_names_file_trajectory_or_config(tmp_path):
    import torch
    from torch.utils.data import default_collate

    from dpot.data.windows import WindowDataset
    from dpot.training.config import OptimConfig, TrainConfig
    from dpot.training.diagnose import describe_bad_samples

    ds = WindowDataset(dataset(tmp_path, nan_at=1), t_in=3, t_ar=1)
    batch = default_collate([ds[0], ds[ds.n_starts * 1 + 2]])  # trajectory 0 (clean), 1 (its last window: NaN)
    said = describe_bad_samples(batch, torch.tensor([True, True]), [ds], TrainConfig(), OptimConfig(lr=10.0))
    assert said[0].startswith(f"waves ({ds.split.path} trajectory 0, window from frame 0): the batch is finite")
    assert "optim.lr=10.0" in said[0]
    assert said[1] == f"waves ({ds.split.path} trajectory 1, window from frame 2): the data holds NaN/Inf"


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and mount(8)); skipped with the reason where it cannot be mounted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small file system to fill")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def _fill(disk: Path, leave: int) -> None:
    """Leave only `leave` bytes free on `disk`."""
    free = shutil.disk_usage(disk).free
    with open(disk / "ballast", "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


def _one_disk_full_line(err: str, command: str) -> str:
    assert "Traceback" not in err, err
    lines = [s for s in err.splitlines() if s.startswith(f"dpot {command}: error:")]
    assert len(lines) == 1 and "disk full" in lines[0], err
    return lines[0]


def test_disk_full_generate_is_one_line_not_a_crash(small_disk):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpot",
            "generate",
            "ns2d_vorticity",
            "--out",
            str(small_disk / "g"),
            "--n",
            "4",
            "--res",
            "64",
            "--frames",
            "20",
            "--workers",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr  # was a segmentation fault (139) inside HDF5
    _one_disk_full_line(proc.stderr, "generate")
    assert not [p for p in listing(small_disk) if p.endswith(".tmp")]  # splits that fit are kept (resumable)


def test_disk_full_keeps_checkpoint_and_leaves_no_partial_evaluation(small_disk, tmp_path, capsys):
    root = tmp_path / "data"
    dataset(root, frames=8)
    run = small_disk / "run"
    args = [
        "--config",
        TINY,
        "--out",
        str(run),
        f"data.root={root}",
        "train.max_steps=1",
        "train.batch_size=2",
        "train.eval_trajectories=1",
        "train.eval_steps=2",
    ]
    assert main(["pretrain", *args]) == 0
    before = (run / "checkpoint" / "model.safetensors").read_bytes()
    _fill(small_disk, 4096)
    capsys.readouterr()
    assert main(["pretrain", "--resume", str(run), "train.max_steps=2"]) == 2
    line = _one_disk_full_line(capsys.readouterr().err, "pretrain")
    assert "checkpoint" in line and "kept" in line
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == before
    assert not list(run.glob(".*.tmp"))

    entries = listing(small_disk)
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(run / "checkpoint"),
                "--data",
                str(root),
                "--out",
                str(small_disk / "eval"),
            ]
        )
        == 2
    )
    _one_disk_full_line(capsys.readouterr().err, "evaluate")
    assert listing(small_disk) == entries
