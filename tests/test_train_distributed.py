"""The data-parallel path on CPU: `torchrun --nproc_per_node 2` with the gloo backend, then a resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from test_train_loop import QUICK, TINY, make_corpus, metrics, weights

# gloo on CPUs (seen with FSDP2 and, once, DDP) occasionally aborted a worker in C++ teardown *after* the run
# finished and its checkpoint was written ("terminate called without an active exception"). `dpot.cli.entry` now
# ends torchrun workers with os._exit, skipping that teardown; the tests still tolerate it and check the results.
EXIT_ABORT = "terminate called without an active exception"


def torchrun(*args: str, tolerate_exit_abort: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dpot", "pretrain", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    ok = proc.returncode == 0 or (tolerate_exit_abort and EXIT_ABORT in proc.stderr)
    assert ok, proc.stderr[-3000:]
    return proc


def test_ddp_two_ranks_shard_the_sampler_and_resume(tmp_path):
    corpus = make_corpus(tmp_path / "data")
    run = tmp_path / "run"
    torchrun("--config", TINY, "--out", str(run), f"data.root={corpus}", "train.max_steps=3",
             "train.checkpoint_every=2", "train.batch_size=4", *QUICK, tolerate_exit_abort=True)
    state = torch.load(run / "checkpoint" / "training_state.pt", weights_only=True)
    assert state["world_size"] == 2 and state["step"] == 3
    assert [s["rank"] for s in state["sampler"]] == [0, 1]
    assert [s["position"] for s in state["sampler"]] == [12, 12]  # 3 steps x 4 samples on each rank
    assert not torch.equal(state["rng"][0]["noise"], state["rng"][1]["noise"])  # independent noise per rank
    before = weights(run)
    proc = torchrun("--resume", str(run), "train.max_steps=5", tolerate_exit_abort=True)
    assert [line for line in proc.stdout.splitlines() if line.startswith("step ")] == \
        [line for line in proc.stdout.splitlines() if line.startswith("step 5: loss")]  # one report
    assert proc.stdout.count("step 5: loss") == 1  # only rank 0 reports
    assert [r["step"] for r in metrics(run)] == [1, 2, 3, 4, 5]
    after = weights(run)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    info = json.loads((Path(run) / "checkpoint" / "config.json").read_text())
    assert info["step"] == 5


def test_fsdp_checkpoint_and_resume(tmp_path):
    """FSDP (fully_shard on gloo): full state dicts gathered to rank 0, loadable alone, and resumable.
    (Bit-exactness of an FSDP resume against a straight run was checked by hand; docs/training.md.)"""
    from dpot.models import load_model

    corpus = make_corpus(tmp_path / "data")
    run = tmp_path / "run"
    torchrun("--config", TINY, f"data.root={corpus}", "train.strategy=fsdp", "train.checkpoint_every=2",
             "--out", str(run), "train.max_steps=2", "train.batch_size=4", *QUICK, tolerate_exit_abort=True)
    assert load_model(run / "checkpoint").num_parameters() == sum(t.numel() for t in weights(run).values())
    torchrun("--resume", str(run), "train.max_steps=3", tolerate_exit_abort=True)
    state = torch.load(run / "checkpoint" / "training_state.pt", weights_only=True)
    assert state["step"] == 3 and [s["position"] for s in state["sampler"]] == [12, 12]
    assert [r["step"] for r in metrics(run)] == [1, 2, 3]
