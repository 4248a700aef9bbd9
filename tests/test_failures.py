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
