"""The run-folder lock: two runs on one folder never both train; a killed run's lock never blocks --resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_train_loop import QUICK, TINY, make_corpus, pretrain


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"), res=8, frames=8, n_train=4, n_test=1)


def _launch(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dpot", "pretrain", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(proc: subprocess.Popen, run: Path) -> None:
    deadline = time.time() + 90
    while time.time() < deadline:
        if (run / "checkpoint" / "training_state.pt").is_file():
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint written")


def test_second_run_refused_and_killed_run_resumes(corpus, tmp_path):
    run = tmp_path / "run"
    first = _launch(
        "--config",
        TINY,
        "--out",
        run,
        f"data.root={corpus}",
        "train.max_steps=100000",
        "train.checkpoint_every=1",
        *QUICK,
    )
    _wait_for_checkpoint(first, run)
    second = _launch("--resume", run, "train.max_steps=2")  # a new run is refused anyway (a checkpoint exists)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    lines = [s for s in err.splitlines() if "error:" in s]
    assert len(lines) == 1 and f"in use by another run (pid {first.pid} on " in lines[0], err
    assert first.poll() is None  # the first run is untouched
    first.send_signal(signal.SIGKILL)
    first.communicate()
    # a kill leaves the lock file but not the lock; a half-written checkpoint folder is swept on resume
    (run / ".checkpoint.dead.tmp").mkdir()
    step = int(torch.load(run / "checkpoint" / "training_state.pt", weights_only=True)["step"])
    assert pretrain("--resume", run, f"train.max_steps={step + 1}") == 0
    assert not (run / ".checkpoint.dead.tmp").exists() and not (run / ".lock.owner").exists()
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == step + 1


def test_lock_refuses_in_process_and_cleans_up(tmp_path):
    from dpot.errors import DpotError
    from dpot.training.runlock import run_lock

    run = tmp_path / "r"
    with run_lock(run):
        owner = json.loads((run / ".lock.owner").read_text())
        with pytest.raises(DpotError, match=f"in use by another run \\(pid {owner['pid']}"), run_lock(run):
            pass
    with pytest.raises(RuntimeError), run_lock(run):  # the folder was ours and is empty: removed again
        raise RuntimeError
    assert run.exists()  # it existed before this block: kept
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError), run_lock(fresh):
        raise RuntimeError
    assert not fresh.exists()


def test_resume_past_max_steps_says_so(corpus, tmp_path, capsys):
    run = tmp_path / "done"
    assert pretrain("--config", TINY, "--out", run, f"data.root={corpus}", "train.max_steps=1", *QUICK) == 0
    capsys.readouterr()
    assert pretrain("--resume", run) == 0
    assert "nothing to train: the run had already reached train.max_steps=1" in capsys.readouterr().err
    from dpot.cli import main

    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"run {run}\n  last logged step 1: loss " in out and "not running" in out and "checkpoint " in out
