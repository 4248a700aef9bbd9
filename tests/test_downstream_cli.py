"""Scripted use of `dpot finetune`, `dpot evaluate`, `dpot rollout` and a miniature `dpot demo` on `dpot generate
tiny` output, plus the bad inputs the downstream issue lists (one clear line each)."""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np
import pytest
import torch

from dpot.cli import main

PRETRAIN = ["--config", "tiny"]
QUIET = ["train.progress=false", "train.log_every=1"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    assert main(["generate", "tiny", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory):
    """A tiny DPOT pre-trained on the 1- and 2-channel families (so shallow water's 3 channels do not fit)."""
    out = tmp_path_factory.mktemp("pre") / "run"
    assert (
        main(
            [
                "pretrain",
                *PRETRAIN,
                "--out",
                str(out),
                "train.progress=false",
                f"data.root={tiny}",
                "data.datasets=[ns2d_nu1e-3,diffusion_reaction_2d]",
                "train.max_steps=3",
            ]
        )
        == 0
    )
    return out


def one_line_error(capsys, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"dpot {argv[0]}: error: ")
    for n in needles:
        assert n in err, err
    return err


def test_scripted_finetune_evaluate_resume(tiny, run, tmp_path, capsys):
    ft, ev = tmp_path / "ft", tmp_path / "ev"
    # options and overrides in any order, as in `dpot pretrain`
    assert (
        main(
            [
                "finetune",
                "--from",
                str(run / "checkpoint"),
                "data.n_trajectories=1",
                "--data",
                str(tiny / "ns2d_nu1e-3"),
                "--out",
                str(ft),
                "train.max_steps=2",
                *QUIET,
            ]
        )
        == 0
    )
    meta = json.loads((ft / "checkpoint" / "config.json").read_text())
    assert meta["step"] == 2 and meta["finetune"]["model"] == "pretrained"
    assert meta["data"][0]["n_trajectories"] == 1
    one_line_error(capsys, ["finetune", "--resume", str(ft), "--config", "few_shot"], "drop --config")
    assert (ft / "config.yaml").is_file() and (ft / "metrics.jsonl").is_file() and (ft / "tb").is_dir()
    assert main(["finetune", "--resume", str(ft), "train.max_steps=3", *QUIET]) == 0
    assert json.loads((ft / "checkpoint" / "config.json").read_text())["step"] == 3
    assert (
        main(
            ["evaluate", "--checkpoint", str(ft / "checkpoint"), "--data", str(tiny / "ns2d_nu1e-3"), "--out", str(ev)]
        )
        == 0
    )
    metrics = json.loads((ev / "metrics.json").read_text())
    m = metrics["ns2d_nu1e-3"]
    for key in ("l2re", "nrmse", "vrmse", "l2re_per_step", "per_channel"):
        assert key in m
    frames = h5py.File(tiny / "ns2d_nu1e-3" / "test.h5")["fields"].shape[1]
    assert len(m["l2re_per_step"]) == m["steps"] == frames - m["t_in"]  # default: every remaining frame
    assert np.isfinite(m["l2re"]) and m["l2re"] == pytest.approx(m["per_channel"]["w"]["l2re"], rel=1e-5)
    pngs = sorted(p.name for p in ev.glob("*.png"))
    assert pngs and all((ev / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    report = (ev / "report.md").read_text()
    assert all(f"]({p})" in report for p in pngs)
    assert (ev / "metrics.csv").read_text().startswith("checkpoint,dataset,channel,step,l2re,nrmse,vrmse")


def test_fno_baseline_through_finetune_and_compare(tiny, run, tmp_path):
    fno, ev = tmp_path / "fno", tmp_path / "ev"
    assert (
        main(
            [
                "finetune",
                "--from",
                str(run / "checkpoint"),
                "--data",
                str(tiny / "diffusion_reaction_2d"),
                "--out",
                str(fno),
                "model=fno",
                "fno.width=8",
                "fno.modes=4",
                "fno.n_layers=2",
                "train.max_steps=2",
                *QUIET,
            ]
        )
        == 0
    )
    assert json.loads((fno / "checkpoint" / "config.json").read_text())["model_type"] == "fno"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                f"dpot={run / 'checkpoint'}",
                f"fno={fno / 'checkpoint'}",
                "--data",
                str(tiny / "diffusion_reaction_2d"),
                "--rollout",
                "3",
                "--out",
                str(ev),
            ]
        )
        == 0
    )
    m = json.loads((ev / "metrics.json").read_text())["diffusion_reaction_2d"]
    assert set(m["by_checkpoint"]) == {"dpot", "fno"} and len(m["l2re_per_step"]) == 3
    assert (ev / "error_diffusion_reaction_2d.png").is_file()
    assert (ev / "snapshots_fno_diffusion_reaction_2d.png").is_file()


def test_steady_and_3d_finetune(tiny, run, tmp_path):
    """Steady-state Darcy (T_in = 1, one-step evaluation) and 2D -> 3D transfer on the 3D family."""
    for name in ("darcy_2d", "ns3d"):
        ft = tmp_path / name
        assert (
            main(
                [
                    "finetune",
                    "--from",
                    str(run / "checkpoint"),
                    "--data",
                    str(tiny / name),
                    "--out",
                    str(ft),
                    "train.max_steps=1",
                    "finetune.channels=widen",
                    "train.batch_size=2",
                    *QUIET,
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    "evaluate",
                    "--checkpoint",
                    str(ft / "checkpoint"),
                    "--data",
                    str(tiny / name),
                    "--rollout",
                    "2" if name == "ns3d" else "1",
                    "--out",
                    str(tmp_path / f"ev_{name}"),
                ]
            )
            == 0
        )
        m = json.loads((tmp_path / f"ev_{name}" / "metrics.json").read_text())[name]
        assert m["steps"] == (1 if name == "darcy_2d" else 2) and np.isfinite(m["l2re"])
    cfg = json.loads((tmp_path / "ns3d" / "checkpoint" / "config.json").read_text())
    assert cfg["model"]["ndim"] == 3 and "3D transfer" in " ".join(cfg["finetune"]["adaptation"])
    assert json.loads((tmp_path / "darcy_2d" / "checkpoint" / "config.json").read_text())["model"]["in_timesteps"] == 1


def test_auto_channels_follow_the_checkpoints_fields(tiny, run, tmp_path):
    """Default `finetune.channels=auto`: a dataset of fields the checkpoint never trained on (Darcy, after NS and
    diffusion-reaction) gets a new embedding and head; NS at another viscosity keeps them, padded."""
    logs = {}
    for name in ("darcy_2d", "ns2d_nu1e-5"):
        argv = ["finetune", "--from", str(run / "checkpoint"), "--data", str(tiny / name), "--out"]
        argv.append(str(tmp_path / name))
        assert main([*argv, "train.max_steps=1", "train.batch_size=2", *QUIET]) == 0
        meta = json.loads((tmp_path / name / "checkpoint" / "config.json").read_text())
        logs[name] = (meta["model"]["in_channels"], " ".join(meta["finetune"]["adaptation"]))
    assert logs["darcy_2d"][0] == 1 and "channels auto -> reinit: darcy" in logs["darcy_2d"][1]
    assert "new (random init): cls_head, out_layer, patch_embed" in logs["darcy_2d"][1]
    assert logs["ns2d_nu1e-5"][0] == 2 and "padded as is" in logs["ns2d_nu1e-5"][1]
    assert "pre-training dataset ns2d_nu1e-3" in logs["ns2d_nu1e-5"][1]


def test_freeze_and_heads_first(tiny, run, tmp_path):
    from safetensors.torch import load_file

    src = load_file(str(run / "checkpoint" / "model.safetensors"))
    for extra in (["finetune.freeze=[backbone]"], ["finetune.heads_only_steps=5"]):
        ft = tmp_path / extra[0].split("=")[0].split(".")[1]
        assert (
            main(
                [
                    "finetune",
                    "--from",
                    str(run / "checkpoint"),
                    "--data",
                    str(tiny / "ns2d_nu1e-3"),
                    "--out",
                    str(ft),
                    "train.max_steps=2",
                    "optim.schedule=constant",
                    "optim.warmup=0",
                    *extra,
                    *QUIET,
                ]
            )
            == 0
        )
        new = load_file(str(ft / "checkpoint" / "model.safetensors"))
        assert all(torch.equal(new[k], src[k]) for k in src if k.startswith("blocks."))
        assert not torch.equal(new["out_layer.4.weight"], src["out_layer.4.weight"])


def test_rollout_layouts(tiny, run, tmp_path, capsys):
    ckpt = str(run / "checkpoint")
    fields = h5py.File(tiny / "ns2d_nu1e-3" / "test.h5")["fields"][:, :6]  # (N, T, X, Y, C)
    np.save(tmp_path / "h.npy", np.transpose(fields, (0, 1, 4, 2, 3)))  # n t c x y
    assert (
        main(
            [
                "rollout",
                "--checkpoint",
                ckpt,
                "--input",
                str(tmp_path / "h.npy"),
                "--layout",
                "n t c x y",
                "--steps",
                "3",
                "--out",
                str(tmp_path / "p.npy"),
            ]
        )
        == 0
    )
    out = np.load(tmp_path / "p.npy")
    assert out.shape == (fields.shape[0], 3, 1, *fields.shape[2:4]) and np.all(np.isfinite(out))
    assert "frames/s" in capsys.readouterr().out
    np.savez(tmp_path / "h.npz", w=fields[0, ..., 0])  # t x y
    assert (
        main(
            [
                "rollout",
                "--checkpoint",
                ckpt,
                "--input",
                str(tmp_path / "h.npz"),
                "--layout",
                "txy",
                "--steps",
                "2",
                "--include-history",
                "--out",
                str(tmp_path / "p.npz"),
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "p.npz")["w"].shape == (8, *fields.shape[2:4])
    assert (
        main(
            [
                "rollout",
                "--checkpoint",
                ckpt,
                "--input",
                str(tiny / "ns2d_nu1e-3" / "test.h5"),
                "--steps",
                "2",
                "--out",
                str(tmp_path / "p.h5"),
            ]
        )
        == 0
    )
    assert h5py.File(tmp_path / "p.h5")["fields"].shape[1] == 2
    # bad input: one clear line each
    np.save(tmp_path / "short.npy", fields[:, :2])
    one_line_error(
        capsys,
        [
            "rollout",
            "--checkpoint",
            ckpt,
            "--input",
            str(tmp_path / "short.npy"),
            "--layout",
            "n t x y c",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "x.npy"),
        ],
        "2 frames",
        "T_in=4",
    )
    one_line_error(
        capsys,
        [
            "rollout",
            "--checkpoint",
            ckpt,
            "--input",
            str(tmp_path / "h.npy"),
            "--layout",
            "n t k x y",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "x.npy"),
        ],
        "--layout",
        "'k'",
    )
    one_line_error(
        capsys,
        [
            "rollout",
            "--checkpoint",
            ckpt,
            "--input",
            str(tmp_path / "h.npy"),
            "--layout",
            "t x y c",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "x.npy"),
        ],
        "5 axes",
        "names 4",
    )
    assert not (tmp_path / "x.npy").exists()


def test_channel_mismatch_is_one_line(tiny, run, tmp_path, capsys):
    sw = str(tiny / "shallow_water_2d")
    one_line_error(
        capsys,
        ["finetune", "--from", str(run / "checkpoint"), "--data", sw, "--out", str(tmp_path / "ft"), *QUIET],
        "3 channels",
        "takes 2",
        "finetune.channels=widen",
    )
    one_line_error(
        capsys,
        ["evaluate", "--checkpoint", str(run / "checkpoint"), "--data", sw, "--out", str(tmp_path / "ev")],
        "3 input",
        "takes 2",
    )
    assert not (tmp_path / "ft" / "checkpoint").exists() and not (tmp_path / "ev").exists()


def test_demo_miniature(tmp_path):
    """The whole demo, generation of the tiny corpus included, with a tiny budget (seconds, not 15 minutes)."""
    from tinyplan import TINY_DEMO

    from dpot.workflows.demo import run_demo

    report = run_demo(
        tmp_path / "demo",
        overrides=TINY_DEMO,
    )
    text = report.read_text()
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert summary["generated"] and (tmp_path / "demo" / "data" / "ns2d_nu1e-5" / "test.h5").is_file()
    assert summary["holdout"] == "ns2d_nu1e-5" and summary["pretrain"]["steps"] == 2
    assert summary["pretrain"]["measured_step_seconds"] > 0
    for label in ("DPOT fine-tuned", "DPOT from scratch", "FNO"):  # the spent time limit stops each run at once
        run = summary["finetune"][label]
        assert run["planned_steps"] == 2 and 1 <= run["steps"] <= 2
        assert summary["finetune"]["measured_step_seconds"][label] > 0
    assert summary["family"] == ["ns2d_nu1e-3", "ns2d_nu1e-5"]  # the whole family is held out of pre-training
    assert "shallow_water_2d" in summary["pretrain"]["datasets"]
    assert not {"ns2d_nu1e-3", "ns2d_nu1e-5", "ns3d", "darcy_2d"} & set(summary["pretrain"]["datasets"])
    assert set(summary["holdout_results"]) == {
        "DPOT fine-tuned",
        "DPOT from scratch",
        "FNO",
        "DPOT zero-shot",
        "repeat last frame",
    }
    assert "## What this shows" in text and "FNO" in text
    for link in ("eval_holdout/error_ns2d_nu1e-5.png", "eval_zero_shot/report.md"):
        assert link in text and (tmp_path / "demo" / link).is_file()


def test_fno_without_neuraloperator_is_one_line(tiny, run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "neuralop", None)  # as if the `baselines` extra were not installed
    monkeypatch.setitem(sys.modules, "neuralop.models", None)
    one_line_error(
        capsys,
        [
            "finetune",
            "--from",
            str(run / "checkpoint"),
            "--data",
            str(tiny / "diffusion_reaction_2d"),
            "--out",
            str(tmp_path / "fno"),
            "model=fno",
            *QUIET,
        ],
        "pip install 'dpot[baselines]'",
    )
    assert not (tmp_path / "fno" / "checkpoint").exists()


def test_generated_corpus_stays_raw_under_the_default_normalisation(tiny):
    """`data.normalize=auto` leaves every generated dataset raw (O(1) channels), so runs on the generated corpus
    (the demo, the claims study in docs/results.md) train exactly as with the reference's raw values."""
    from dpot.data.format import dataset_dirs
    from dpot.data.normalize import dataset_normalizer

    dirs = dataset_dirs(tiny)
    assert len(dirs) == 9 and all(dataset_normalizer(d, "auto") is None for d in dirs)
