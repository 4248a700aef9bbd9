"""The trainer on tiny canonical data: it learns, resumes bit-for-bit, survives signals and NaNs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dpot.data.format import DatasetMeta, write_split


def _advection(rng, n, frames, res, shift=1):
    """Random smooth periodic fields translated by `shift` pixels per frame (exact advection on the grid)."""
    k = np.fft.fftfreq(res)[:, None] ** 2 + np.fft.fftfreq(res)[None, :] ** 2
    spec = (rng.standard_normal((n, res, res)) + 1j * rng.standard_normal((n, res, res))) * np.exp(-40 * k)
    base = np.fft.ifft2(spec).real
    base /= base.std(axis=(1, 2), keepdims=True)
    out = np.stack([np.roll(base, shift * t, axis=1) for t in range(frames)], axis=1)
    return out[..., None].astype(np.float32) + 1.0


def _heat(rng, n, frames, res, nu=0.02):
    """Two-channel exact solutions of the periodic heat equation (Fourier modes decay as exp(-nu k² t))."""
    kk = np.fft.fftfreq(res, 1 / res)
    k2 = kk[:, None] ** 2 + kk[None, :] ** 2
    shape = (n, 2, res, res)
    spec = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * np.exp(-k2 / 8)
    out = np.stack([np.fft.ifft2(spec * np.exp(-nu * k2 * t)).real for t in range(frames)], axis=1)
    out /= out[:, :1].std(axis=(1, 3, 4), keepdims=True)
    return np.moveaxis(out, 2, -1).astype(np.float32)


def make_corpus(root: Path, res: int = 16, frames: int = 12, n_train: int = 8, n_test: int = 2) -> Path:
    """Two small 2D datasets in the canonical format (1 and 2 channels), train and test splits."""
    rng = np.random.default_rng(0)
    for name, fn, pde, channels in (("advect", _advection, "advection", ["u"]), ("heat", _heat, "other", ["a", "b"])):
        meta = DatasetMeta(
            name=name,
            pde=pde,
            channels=channels,
            space=["x", "y"],
            domain=[[0, 1], [0, 1]],
            boundary=["periodic", "periodic"],
            dt=0.1,
            source="tests",
        )
        for split, n in (("train", n_train), ("test", n_test)):
            write_split(root / name / f"{split}.h5", meta, fields=fn(rng, n, frames, res))
    return root


TINY = "tiny"  # the packaged preset
QUICK = ["train.eval_trajectories=1", "train.eval_steps=2", "train.log_every=1", "train.batch_size=4"]


def pretrain(*args) -> int:
    from dpot.cli import main

    return main(["pretrain", *map(str, args)])


def weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "checkpoint" / "model.safetensors"))


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def straight(corpus, tmp_path_factory):
    """A run taken straight to step 12 (checkpoints every 3): the reference for the resume tests."""
    run = tmp_path_factory.mktemp("straight") / "run"
    assert (
        pretrain(
            "--config",
            TINY,
            "--out",
            run,
            f"data.root={corpus}",
            "train.max_steps=12",
            "train.checkpoint_every=3",
            *QUICK,
        )
        == 0
    )
    return run


def test_loss_falls_and_checkpoint_is_complete(corpus, tmp_path):
    from dpot.models import load_model

    run = tmp_path / "run"
    assert (
        pretrain("--config", TINY, "--out", run, f"data.root={corpus}", "train.max_steps=40", "optim.lr=6e-3", *QUICK)
        == 0
    )
    lines = metrics(run)
    assert [r["step"] for r in lines] == list(range(1, 41))
    start = np.mean([r["loss"] for r in lines[:3]])
    end = np.mean([r["loss"] for r in lines[-5:]])
    assert end < 0.6 * start, (start, end)
    last = lines[-1]
    assert set(last["loss_per_dataset"]) == {"advect", "heat"} and last["samples_per_s"] > 0
    assert set(last["eval_l2re"]) == {"advect", "heat"}
    assert all(math.isfinite(v) for v in last["eval_l2re"].values())
    ckpt = run / "checkpoint"
    info = json.loads((ckpt / "config.json").read_text())
    assert info["model_type"] == "dpot" and info["step"] == 40
    assert [d["name"] for d in info["data"]] == ["advect", "heat"] and info["normalization"] is None
    assert info["train_config"]["train"]["max_steps"] == 40
    state = torch.load(ckpt / "training_state.pt", weights_only=True)
    assert state["step"] == 40 and state["sampler"][0]["position"] == 40 * 4
    model = load_model(ckpt)
    assert model.config.in_channels == 2 and model.config.n_cls == 2
    assert (run / "config.yaml").is_file() and any((run / "tb").iterdir())


@pytest.mark.parametrize("workers", [0, 2])
def test_stop_and_resume_equals_straight_run(corpus, straight, tmp_path, workers):
    """Also with DataLoader workers (their prefetching does not move the resume point; `straight` has none)."""
    run = tmp_path / "run"
    assert (
        pretrain(
            "--config",
            TINY,
            "--out",
            run,
            f"data.root={corpus}",
            "train.max_steps=5",
            "train.checkpoint_every=3",
            f"data.num_workers={workers}",
            *QUICK,
        )
        == 0
    )
    assert pretrain("--resume", run, "train.max_steps=12") == 0
    ref, got = weights(straight), weights(run)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    a = torch.load(straight / "checkpoint" / "training_state.pt", weights_only=True)
    b = torch.load(run / "checkpoint" / "training_state.pt", weights_only=True)
    assert a["sampler"] == b["sampler"] and torch.equal(a["rng"][0]["noise"], b["rng"][0]["noise"])
    assert [r["loss"] for r in metrics(run)] == [r["loss"] for r in metrics(straight)]


def test_time_limit_stops_with_a_resumable_checkpoint(corpus, straight, tmp_path):
    """`stop_at` in the past: one step, a checkpoint, and a resume that ends where a straight run does."""
    import time

    from dpot.training import load_pretrain_config, run_pretrain

    run = tmp_path / "run"
    cfg = load_pretrain_config(
        TINY, [f"data.root={corpus}", "train.max_steps=12", "train.checkpoint_every=3", *QUICK, f"out={run}"]
    )
    result = run_pretrain(cfg, stop_at=time.perf_counter())
    assert result.interrupted == "time budget" and result.step == 1
    assert pretrain("--resume", run, "train.max_steps=12") == 0
    ref, got = weights(straight), weights(run)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def _launch(corpus, run, *extra):
    import subprocess
    import sys

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dpot",
            "pretrain",
            "--config",
            TINY,
            "--out",
            str(run),
            f"data.root={corpus}",
            "train.checkpoint_every=3",
            *QUICK,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_step(proc, run: Path, step: int) -> None:
    import time

    deadline = time.time() + 60
    while time.time() < deadline:
        path = run / "metrics.jsonl"
        if path.exists() and any(
            json.loads(s)["step"] >= step for s in path.read_text().splitlines() if s.endswith("}")
        ):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)
    raise AssertionError("training made no progress")


def test_sigkill_and_sigterm_then_resume_equal_straight_run(corpus, straight, tmp_path):
    import signal

    killed, termed = tmp_path / "killed", tmp_path / "termed"
    # both would run to 1000 (same schedule: tiny.yaml fixes optim.schedule_steps); they are stopped early
    # one at a time, each stopped as soon as it gets there: a run left going while the other is watched can race
    # past step 12 on a fast machine
    pk = _launch(corpus, killed, "train.max_steps=1000")
    _wait_for_step(pk, killed, 4)  # a checkpoint at 3 exists; the steps after the last checkpoint are lost
    pk.send_signal(signal.SIGKILL)
    pk.communicate()
    pt = _launch(corpus, termed, "train.max_steps=1000")
    _wait_for_step(pt, termed, 2)
    pt.send_signal(signal.SIGTERM)
    out, err = pt.communicate()
    assert pt.returncode == 143 and "checkpoint saved" in err
    assert f"continue with `dpot pretrain --resume {termed}`" in out
    stopped = torch.load(termed / "checkpoint" / "training_state.pt", weights_only=True)["step"]
    assert metrics(termed)[-1]["step"] == stopped < 12
    assert torch.load(killed / "checkpoint" / "training_state.pt", weights_only=True)["step"] < 12
    for run in (killed, termed):
        assert pretrain("--resume", run, "train.max_steps=12") == 0
        ref, got = weights(straight), weights(run)
        assert all(torch.equal(ref[k], got[k]) for k in ref)
        assert [r["step"] for r in metrics(run)] == list(range(1, 13))
        assert [r["loss"] for r in metrics(run)] == [r["loss"] for r in metrics(straight)]


def test_options_run_and_grad_accumulation_is_exact(corpus, tmp_path):
    """Pushforward multi-step, class loss, coupled Adam with cycled beta1, bf16 autocast; and 2x4 accumulated
    == 1x8."""
    run = tmp_path / "opts"
    assert (
        pretrain(
            "--config",
            TINY,
            "--out",
            run,
            f"data.root={corpus}",
            "train.max_steps=2",
            "train.t_ar=2",
            "train.pushforward=true",
            "train.cls_weight=0.1",
            "optim.name=adam",
            "optim.schedule=onecycle",
            "optim.cycle_beta1=true",
            "train.noise=5e-4",
            "train.precision=bf16",
            "train.noise_mode=reference",
            *QUICK,
        )
        == 0
    )
    assert all(math.isfinite(r["loss"]) for r in metrics(run))
    runs = []
    for i, (batch, accum) in enumerate(((8, 1), (4, 2))):
        runs.append(tmp_path / f"acc{i}")
        assert (
            pretrain(
                "--config",
                TINY,
                "--out",
                runs[-1],
                f"data.root={corpus}",
                "train.max_steps=2",
                *QUICK,
                f"train.batch_size={batch}",
                f"train.grad_accum={accum}",
                "train.noise=0",
            )
            == 0
        )
    a, b = weights(runs[0]), weights(runs[1])
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def test_repeated_nan_stops_with_step_and_dataset(tmp_path, capsys):
    meta = DatasetMeta(
        name="blowup",
        pde="other",
        channels=["u"],
        space=["x", "y"],
        domain=[[0, 1], [0, 1]],
        boundary=["periodic", "periodic"],
    )
    write_split(
        tmp_path / "data" / "blowup" / "train.h5", meta, fields=np.full((2, 8, 16, 16, 1), 3e38, dtype=np.float32)
    )
    code = pretrain(
        "--config",
        TINY,
        "--out",
        tmp_path / "run",
        f"data.root={tmp_path / 'data'}",
        "train.noise=0",
        "train.max_bad_steps=2",
        "train.max_steps=5",
        "data.normalize=false",
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "step 1: non-finite loss on blowup (" in err and "train.h5 trajectory " in err
    assert "the batch is finite, so the model or optimiser state diverged (optim.lr=" in err
    assert "NaN/Inf loss at step 2 on dataset(s) blowup" in err


def test_bad_input_is_one_line(corpus, tmp_path, capsys):
    out = tmp_path / "r"
    assert pretrain("--config", TINY, "--out", out, f"data.root={corpus}", "train.max_stepz=3") == 2
    assert "train.max_stepz" in capsys.readouterr().err
    assert pretrain("--config", TINY, "--out", tmp_path / "r", f"data.root={corpus}", "data.datasets=[nope]") == 2
    assert "nope" in capsys.readouterr().err
    assert pretrain("--resume", tmp_path / "missing") == 2
    assert "not a run directory" in capsys.readouterr().err
    assert pretrain("--config", "tinyy", "--out", out) == 2
    assert "no pretrain preset 'tinyy'; known: demo, h, l, m, s, ti, tiny" in capsys.readouterr().err
    assert pretrain("--resume", out, "--config", TINY) == 2
    assert "drop --config" in capsys.readouterr().err
