"""The CLI under bad input: for every command a table of missing, truncated, foreign, NaN, wrong-shape,
wrong-type, out-of-range and existing-output arguments. Each must end with exit code 2, exactly one
`dpot <cmd>: error:` line naming the culprit, no traceback, and nothing new in the output location."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from failkit import checkpoint, dataset, listing

from dpot.cli import main

TINY = "tiny"  # the packaged preset
GPU = torch.cuda.is_available()


class Foreign:
    """A class a pickle can name: `weights_only` loading refuses it."""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Every input the table refers to, built once in a folder of its own (never the output location)."""
    d = tmp_path_factory.mktemp("inputs")
    waves = dataset(d / "root", frames=8)
    nan = dataset(d / "nanroot", nan_at=1, frames=8)
    ckpt = checkpoint(d / "ckpt")
    trunc = Path(shutil.copytree(ckpt, d / "trunc"))
    blob = (trunc / "model.safetensors").read_bytes()
    (trunc / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    foreign = Path(shutil.copytree(ckpt, d / "foreign"))
    (foreign / "model.safetensors").write_bytes(b"PK\x03\x04 this is a zip file, not safetensors" * 20)
    latin = Path(shutil.copytree(ckpt, d / "latin"))
    (latin / "config.json").write_bytes(b'{"model_type": "dpot", "note": "caf\xe9"}')
    (d / "latin.yaml").write_bytes(b"train:\n  max_steps: 3  # caf\xe9\n")
    (d / "notes.txt").write_text("not data\n")
    torch.save({"thing": Foreign()}, d / "model.pth")
    np.save(d / "flat.npy", np.zeros((5, 3), dtype=np.float32))
    h5t = d / "h5t" / "cut"
    h5t.mkdir(parents=True)
    for split in ("train", "test"):
        raw = (waves / f"{split}.h5").read_bytes()
        (h5t / f"{split}.h5").write_bytes(raw[:2048])
    run = d / "run"
    assert (
        main(
            [
                "pretrain",
                "--config",
                TINY,
                "--out",
                str(run),
                f"data.root={d / 'root'}",
                "train.max_steps=1",
                "train.batch_size=2",
                "train.eval_trajectories=1",
                "train.eval_steps=2",
            ]
        )
        == 0
    )
    runt = Path(shutil.copytree(run, d / "runt"))
    (runt / "checkpoint" / "model.safetensors").write_bytes(blob[:100])
    return {
        "D": str(waves),
        "ROOT": str(d / "root"),
        "N": str(nan),
        "NROOT": str(d / "nanroot"),
        "C": str(ckpt),
        "CT": str(trunc),
        "CF": str(foreign),
        "CL": str(latin),
        "Y8": str(d / "latin.yaml"),
        "TXT": str(d / "notes.txt"),
        "PTH": str(d / "model.pth"),
        "NPY": str(d / "flat.npy"),
        "H5T": str(h5t),
        "RUN": str(run),
        "RUNT": str(runt),
        "MISSING": str(d / "missing"),
        "TINY": TINY,
    }


# (argv, culprit in the error line); {out} is a fresh path in the output location, {FILE} an existing file
# there and {DIR} an existing folder there
CASES = [
    (["generate", "nope", "--out", "{out}"], "'nope'"),
    (["generate", "ns2d_vorticity", "--out", "{out}", "--n", "0"], "--n"),
    (["generate", "ns2d_vorticity", "--out", "{out}", "--param", "nu=abc"], "nu=abc"),
    (["generate", "ns2d_vorticity", "--out", "{out}", "--param", "zzz=1"], "'zzz'"),
    (["generate", "ns2d_vorticity", "--out", "{out}", "--shard", "5/2"], "5/2"),
    (["generate", "ns2d_vorticity", "--out", "{FILE}", "--n", "1", "--res", "8", "--frames", "3"], "{FILE}"),
    (["convert", "arrays", "{TXT}", "--out", "{out}"], "--layout"),
    (["convert", "pdebench", "{MISSING}", "--out", "{out}"], "{MISSING}"),
    (["convert", "nope", "{TXT}", "--out", "{out}"], "nope"),
    (["convert", "arrays", "{NPY}", "--out", "{out}", "--layout", "n t x y c"], "{NPY}"),
    (["convert", "fno-mat", "{TXT}", "--out", "{out}"], "{TXT}"),
    (["info", "{MISSING}"], "{MISSING}"),
    (["info", "{TXT}"], "{TXT}"),
    (["info", "{CT}"], "model.safetensors"),
    (["info", "{CF}"], "model.safetensors"),
    (["info", "{CL}"], "config.json"),
    (["info", "{H5T}"], "train.h5"),
    (["pretrain", "--config", "{Y8}", "--out", "{out}"], "latin.yaml"),
    (["pretrain", "--config", "{MISSING}", "--out", "{out}"], "{MISSING}"),
    (["pretrain", "--config", "{TINY}", "--out", "{out}", "data.root={MISSING}"], "{MISSING}"),
    (["pretrain", "--config", "{TINY}", "--out", "{out}", "data.root={ROOT}", "train.max_steps=abc"], "max_steps"),
    (["pretrain", "--config", "{TINY}", "--out", "{out}", "data.root={NROOT}"], "trajectory 1"),
    (["pretrain", "--config", "{TINY}", "--out", "{out}", "data.root={H5T}"], "train.h5"),
    (["pretrain", "--config", "{TINY}", "--out", "{FILE}", "data.root={ROOT}"], "{FILE}"),
    (["pretrain", "--config", "{TINY}", "--out", "{out}", "data.root={ROOT}", "train.device=cuda"], "cuda"),
    (["pretrain", "--resume", "{RUN}", "model.options.embed_dim=64"], "embed_dim"),
    (["pretrain", "--resume", "{RUNT}", "train.max_steps=2"], "model.safetensors"),
    (["pretrain", "--resume", "{MISSING}"], "{MISSING}"),
    (["finetune", "--from", "{PTH}", "--data", "{D}", "--out", "{out}"], "import-checkpoint"),
    (["finetune", "--from", "{CT}", "--data", "{D}", "--out", "{out}"], "model.safetensors"),
    (["finetune", "--from", "{CF}", "--data", "{D}", "--out", "{out}"], "model.safetensors"),
    (["finetune", "--from", "{CL}", "--data", "{D}", "--out", "{out}"], "config.json"),
    (["finetune", "--from", "{C}", "--data", "{N}", "--out", "{out}"], "trajectory 1"),
    (["finetune", "--from", "{C}", "--data", "{MISSING}", "--out", "{out}"], "{MISSING}"),
    (["finetune", "--from", "{C}", "--data", "{H5T}", "--out", "{out}"], "train.h5"),
    (["finetune", "--from", "{C}", "--data", "{D}", "--out", "{out}", "train.device=cuda"], "cuda"),
    (["finetune", "--from", "{C}", "--data", "{D}", "--out", "{out}", "train.max_steps=x"], "max_steps"),
    (["finetune", "--config", "{Y8}", "--from", "{C}", "--data", "{D}", "--out", "{out}"], "latin.yaml"),
    (["evaluate", "--checkpoint", "{CT}", "--data", "{D}", "--out", "{out}"], "model.safetensors"),
    (["evaluate", "--checkpoint", "{CF}", "--data", "{D}", "--out", "{out}"], "model.safetensors"),
    (["evaluate", "--checkpoint", "{CL}", "--data", "{D}", "--out", "{out}"], "config.json"),
    (["evaluate", "--checkpoint", "{MISSING}", "--data", "{D}", "--out", "{out}"], "{MISSING}"),
    (["evaluate", "--checkpoint", "{C}", "--data", "{MISSING}", "--out", "{out}"], "{MISSING}"),
    (["evaluate", "--checkpoint", "{C}", "--data", "{H5T}", "--out", "{out}"], "test.h5"),
    (["evaluate", "--checkpoint", "{C}", "--data", "{TXT}", "--out", "{out}"], "{TXT}"),
    (["evaluate", "--checkpoint", "{C}", "--data", "{D}", "--out", "{FILE}"], "{FILE}"),
    (["evaluate", "--checkpoint", "{C}", "--data", "{D}", "--out", "{out}", "--rollout", "0"], "--rollout"),
    (["evaluate", "--checkpoint", "{C}", "--data", "{D}", "--out", "{out}", "--device", "cuda"], "cuda"),
    (["rollout", "--checkpoint", "{C}", "--input", "{D}/test.h5", "--steps", "2", "--out", "{DIR}"], "{DIR}"),
    (["rollout", "--checkpoint", "{C}", "--input", "{D}/test.h5", "--steps", "0", "--out", "{out}.h5"], "--steps"),
    (["rollout", "--checkpoint", "{C}", "--input", "{NPY}", "--steps", "2", "--out", "{out}.npy"], "{NPY}"),
    (["rollout", "--checkpoint", "{C}", "--input", "{TXT}", "--steps", "2", "--out", "{out}.h5"], "{TXT}"),
    (
        ["rollout", "--checkpoint", "{CT}", "--input", "{D}/test.h5", "--steps", "2", "--out", "{out}.h5"],
        "model.safetensors",
    ),
    (
        [
            "rollout",
            "--checkpoint",
            "{C}",
            "--input",
            "{D}/test.h5",
            "--steps",
            "2",
            "--out",
            "{out}.h5",
            "--device",
            "cuda",
        ],
        "cuda",
    ),
    (["import-checkpoint", "{PTH}", "--out", "{out}"], "{PTH}"),
    (["import-checkpoint", "{TXT}", "--out", "{out}"], "{TXT}"),
    (["import-checkpoint", "{MISSING}", "--out", "{out}"], "{MISSING}"),
]


def _fill(item: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        item = item.replace("{" + key + "}", value)
    return item


def _check(code: int, err: str, command: str, culprit: str, before: set[str], outroot: Path) -> None:
    errors = [line for line in err.splitlines() if line.startswith(f"dpot {command}: error:")]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(errors) == 1 and culprit in errors[0], err
    assert "weights_only" not in err, err
    assert listing(outroot) == before, listing(outroot) - before


@pytest.mark.parametrize("argv,culprit", CASES, ids=[" ".join(a[:2]) + f" [{i}]" for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_one_line_and_leaves_nothing(argv, culprit, inputs, tmp_path, capsys):
    if GPU and "cuda" in argv:
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    outroot = tmp_path / "outroot"
    outroot.mkdir()
    (outroot / "existing.txt").write_text("keep me\n")
    (outroot / "existing_dir").mkdir()
    values = {
        **inputs,
        "out": str(outroot / "new"),
        "FILE": str(outroot / "existing.txt"),
        "DIR": str(outroot / "existing_dir"),
    }
    before = listing(outroot)
    code = main([_fill(a, values) for a in argv])
    _check(code, capsys.readouterr().err, argv[0], _fill(culprit, values), before, outroot)


@pytest.mark.parametrize("index", [13, 28, 56])
def test_real_entry_point(index, inputs, tmp_path):
    """A few cases through the installed console path (`python -m dpot`), in a process of their own."""
    argv, culprit = CASES[index]
    outroot = tmp_path / "outroot"
    outroot.mkdir()
    values = {**inputs, "out": str(outroot / "new"), "FILE": "", "DIR": ""}
    before = listing(outroot)
    proc = subprocess.run(
        [sys.executable, "-m", "dpot", *[_fill(a, values) for a in argv]], capture_output=True, text=True, timeout=120
    )
    _check(proc.returncode, proc.stderr, argv[0], _fill(culprit, values), before, outroot)
