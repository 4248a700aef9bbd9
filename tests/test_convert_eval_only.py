"""An evaluation-only dataset (`dpot convert KIND test=FILE`): `dpot evaluate` scores it; `dpot finetune` and
`dpot pretrain` refuse it with one line naming the missing split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_convert_common import run_convert

from dpot.cli import main


@pytest.fixture(scope="module")
def eval_only(tmp_path_factory):
    """A 1-channel 16x16 test split of 3 trajectories and a tiny untrained 2D checkpoint that fits it."""
    from dpot.models import DPOT

    tmp = tmp_path_factory.mktemp("evalonly")
    src = tmp / "u_test_16.npz"
    np.savez(src, u=np.random.default_rng(0).standard_normal((3, 6, 16, 16)).astype(np.float32))
    assert run_convert("arrays", f"test={src}", "--layout", "n t x y", "--out", tmp / "data", "--name", "hires") == 0
    DPOT.from_preset("demo", img_size=16, embed_dim=16, depth=1, out_layer_dim=8, in_timesteps=2).save_pretrained(
        tmp / "ckpt"
    )
    return tmp


def test_evaluate_accepts_a_test_only_dataset(eval_only, tmp_path):
    ds = eval_only / "data" / "hires"
    assert sorted(p.name for p in ds.glob("*.h5")) == ["test.h5"]
    assert (
        main(["evaluate", "--checkpoint", str(eval_only / "ckpt"), "--data", str(ds), "--out", str(tmp_path / "ev")])
        == 0
    )
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())["hires"]
    assert m["n_trajectories"] == 3 and m["split"] == "test" and len(m["l2re_per_step"]) == 4 and np.isfinite(m["l2re"])
    # found under a root of datasets too
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(eval_only / "ckpt"),
                "--data",
                str(eval_only / "data"),
                "--out",
                str(tmp_path / "ev2"),
            ]
        )
        == 0
    )


@pytest.mark.parametrize("command", ["finetune", "pretrain"])
def test_training_refuses_it_naming_the_split(eval_only, tmp_path, capsys, command):
    data = eval_only / "data"
    if command == "finetune":
        argv = [
            "finetune",
            "--from",
            str(eval_only / "ckpt"),
            "--data",
            str(data / "hires"),
            "--out",
            str(tmp_path / "ft"),
            "train.max_steps=1",
        ]
    else:
        argv = [
            "pretrain",
            "--config",
            "tiny",
            "--out",
            str(tmp_path / "pre"),
            f"data.root={data}",
            "train.max_steps=1",
        ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dpot {command}: error: "), err
    assert "dataset 'hires'" in err[0] and "has no 'train' split, only test" in err[0]
