"""Failure behaviour: NaN/Inf in data is reported (dataset, split, trajectory), metrics stay valid JSON."""

from __future__ import annotations

import json

from failkit import checkpoint, dataset

from dpot.cli import main


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

    for argv in (["pretrain", "--config", "configs/pretrain/tiny.yaml", "--out", str(tmp_path / "run"),
                  f"data.root={tmp_path / 'data'}"],
                 ["finetune", "--from", str(ckpt), "--data", str(data), "--out", str(tmp_path / "ft")]):
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
    said = describe_bad_samples(batch, torch.tensor([True, True]), [ds], TrainConfig(), OptimConfig(lr=float("inf")))
    assert said[0].startswith(f"waves ({ds.split.path} trajectory 0, window from frame 0): the batch is finite")
    assert "optim.lr=inf" in said[0]
    assert said[1] == f"waves ({ds.split.path} trajectory 1, window from frame 2): the data holds NaN/Inf"
