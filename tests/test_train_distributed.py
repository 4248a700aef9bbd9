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
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "dpot",
        "pretrain",
        *args,
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    )
    ok = proc.returncode == 0 or (tolerate_exit_abort and EXIT_ABORT in proc.stderr)
    assert ok, proc.stderr[-3000:]
    return proc


def test_ddp_two_ranks_shard_the_sampler_and_resume(tmp_path):
    corpus = make_corpus(tmp_path / "data")
    run = tmp_path / "run"
    torchrun(
        "--config",
        TINY,
        "--out",
        str(run),
        f"data.root={corpus}",
        "train.max_steps=3",
        "train.checkpoint_every=2",
        "train.batch_size=4",
        *QUICK,
        tolerate_exit_abort=True,
    )
    state = torch.load(run / "checkpoint" / "training_state.pt", weights_only=True)
    assert state["world_size"] == 2 and state["step"] == 3
    assert [s["rank"] for s in state["sampler"]] == [0, 1]
    assert [s["position"] for s in state["sampler"]] == [12, 12]  # 3 steps x 4 samples on each rank
    assert not torch.equal(state["rng"][0]["noise"], state["rng"][1]["noise"])  # independent noise per rank
    before = weights(run)
    proc = torchrun("--resume", str(run), "train.max_steps=5", tolerate_exit_abort=True)
    assert [line for line in proc.stdout.splitlines() if line.startswith("step ")] == [
        line for line in proc.stdout.splitlines() if line.startswith("step 5: loss")
    ]  # one report
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
    torchrun(
        "--config",
        TINY,
        f"data.root={corpus}",
        "train.strategy=fsdp",
        "train.checkpoint_every=2",
        "--out",
        str(run),
        "train.max_steps=2",
        "train.batch_size=4",
        *QUICK,
        tolerate_exit_abort=True,
    )
    assert load_model(run / "checkpoint").num_parameters() == sum(t.numel() for t in weights(run).values())
    torchrun("--resume", str(run), "train.max_steps=3", tolerate_exit_abort=True)
    state = torch.load(run / "checkpoint" / "training_state.pt", weights_only=True)
    assert state["step"] == 3 and [s["position"] for s in state["sampler"]] == [12, 12]
    assert [r["step"] for r in metrics(run)] == [1, 2, 3]


PROBE = '''
"""Runs under torchrun: tiny trainings that count the gradient reductions of each optimiser step and compare
the trained weights across ranks; rank 0 writes the results as JSON."""
import json, sys
import torch
import torch.distributed as dist
from dpot.training import distributed as D, load_pretrain_config
from dpot.training.pretrain import build_mixture, build_model, select_datasets
from dpot.training.trainer import Trainer

dist.init_process_group("gloo")
corpus, out = sys.argv[1], sys.argv[2]
calls = []
wrap, reduce_scatter = D.wrap, dist.reduce_scatter_single


def counting_wrap(*args, **kwargs):
    wrapped = wrap(*args, **kwargs)
    if isinstance(wrapped, torch.nn.parallel.DistributedDataParallel):
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        def hook(state, bucket):
            calls.append(1)
            return allreduce_hook(state, bucket)

        wrapped.register_comm_hook(None, hook)
    return wrapped


def counting_reduce_scatter(*args, **kwargs):
    calls.append(1)
    return reduce_scatter(*args, **kwargs)


D.wrap, dist.reduce_scatter_single = counting_wrap, counting_reduce_scatter
results = {}
for run in sys.argv[3:]:
    name, *overrides = run.split(",")
    cfg = load_pretrain_config("tiny", [f"data.root={corpus}", "train.batch_size=2", "data.num_workers=0",
                                        "train.max_steps=3", "train.eval_trajectories=1", "train.eval_steps=1",
                                        *overrides, f"out={out}/{name}"])
    mixture = build_mixture(cfg, select_datasets(cfg.data), t_ar=cfg.train.t_ar)
    torch.manual_seed(0)
    model = build_model(cfg, mixture)
    cls0 = [p.detach().clone() for p in model.cls_head.parameters()]
    calls.clear()
    trainer = Trainer(model, mixture, cfg.train, cfg.optim, f"{out}/{name}")
    result = trainer.fit()
    full = {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in model.state_dict().items()}
    cls = [full[k] for k in full if k.startswith("cls_head.")]
    gathered = [None, None]
    dist.all_gather_object(gathered, [t.float() for t in full.values()])
    results[name] = {"reductions_per_step": len(calls) / result.step, "skipped": result.skipped_steps,
                     "loss": result.loss, "cls_changed": any(not torch.equal(a, b) for a, b in zip(cls0, cls)),
                     "ranks_equal": all(torch.equal(a, b) for a, b in zip(*gathered)),
                     "dtypes": sorted({str(t.dtype) for t in full.values()})}
if dist.get_rank() == 0:
    json.dump(results, open(f"{out}/results.json", "w"))
dist.barrier()
dist.destroy_process_group()
'''


def test_ddp_and_fsdp_class_head_accumulation_and_bf16(tmp_path):
    """DDP with the class loss under pushforward (t_ar=2): the class head trains, identically on both ranks,
    without find_unused_parameters; gradient accumulation reduces gradients once per optimiser step (DDP
    all-reduce buckets, FSDP reduce-scatters); FSDP with bf16 keeps fp32 weights and trains."""
    corpus = make_corpus(tmp_path / "data", frames=8, n_train=4, n_test=1)
    (tmp_path / "probe.py").write_text(PROBE)
    runs = [
        "ddp1,train.cls_weight=0.1,train.t_ar=2,train.pushforward=true",
        "ddp2,train.cls_weight=0.1,train.t_ar=2,train.pushforward=true,train.grad_accum=2",
        "ddp0,train.grad_accum=2",
        "fsdp1,train.strategy=fsdp",
        "fsdp2,train.strategy=fsdp,train.grad_accum=2",
        "fsdp_bf16,train.strategy=fsdp,train.precision=bf16",
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(tmp_path / "probe.py"),
            str(corpus),
            str(tmp_path),
            *runs,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert (tmp_path / "results.json").is_file(), proc.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    for name, r in res.items():
        assert r["skipped"] == [] and r["loss"] is not None and r["ranks_equal"], (name, r)
        assert r["dtypes"] == ["torch.float32"], (name, r)
    assert res["ddp1"]["cls_changed"] and res["ddp2"]["cls_changed"]
    assert not res["ddp0"]["cls_changed"]  # cls_weight=0: the head is frozen, DDP needs no unused-parameter walk
    assert res["ddp1"]["reductions_per_step"] == res["ddp2"]["reductions_per_step"] > 0
    assert res["fsdp1"]["reductions_per_step"] == res["fsdp2"]["reductions_per_step"] > 0
