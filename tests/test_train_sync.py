"""The training step without host reads, the device-side skip of a bad step, the compile fallback at any call,
the device of a torchrun rank and the TF32 policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_train_loop import TINY, make_corpus

import dpot.training.trainer as trainer_mod
from dpot.data.format import DatasetMeta, write_split
from dpot.training import load_pretrain_config
from dpot.training.engine import EagerFallback
from dpot.training.pretrain import build_mixture, build_model, select_datasets
from dpot.training.trainer import Trainer


def _trainer(root, run, *overrides) -> Trainer:
    cfg = load_pretrain_config(
        TINY,
        [
            f"data.root={root}",
            "train.batch_size=2",
            "data.num_workers=0",
            "train.eval_trajectories=1",
            "train.eval_steps=2",
            *overrides,
            f"out={run}",
        ],
    )
    mixture = build_mixture(cfg, select_datasets(cfg.data), t_ar=cfg.train.t_ar)
    torch.manual_seed(0)
    return Trainer(build_model(cfg, mixture), mixture, cfg.train, cfg.optim, run, num_workers=0)


def _uncounted(host_reads, fn):
    """`fn` with its tensor reads left out of the count (host-side work: the loader, logs, checkpoints)."""

    def wrapped(*args, **kwargs):
        saved = dict(host_reads.calls)
        try:
            return fn(*args, **kwargs)
        finally:
            host_reads.calls.clear()
            host_reads.calls.update(saved)

    return wrapped


def _count_per_step(trainer: Trainer, host_reads, monkeypatch) -> list[int]:
    """Reads between one step's end and the next's (its training step plus the settling of the step before);
    the loader's batches (host tensors, also `check_finite` on them), logs and checkpoints are not counted."""
    per_step: list[int] = []
    queue, setup = Trainer._queue, Trainer._setup
    counted_to = torch.Tensor.to

    def to(t, *args, **kwargs):  # on a CPU every `.to(device)` says "cpu"; one to a tensor's own device moves nothing
        dev = next((a for a in (*args, kwargs.get("device")) if isinstance(a, (str, torch.device))), None)
        same = dev is not None and torch.device(dev).type == t.device.type
        return torch._C.TensorBase.to(t, *args, **kwargs) if same else counted_to(t, *args, **kwargs)

    def queue_(self, flags, step_batches):
        per_step.append(host_reads.reads)
        host_reads.reset()
        queue(self, flags, step_batches)

    def setup_(self, resume):
        setup(self, resume)
        loader = self.loader
        self.loader = type(
            "Loader", (), {"__iter__": lambda _: iter(_uncounted(host_reads, iter(loader).__next__), None)}
        )()

    monkeypatch.setattr(torch.Tensor, "to", to)
    monkeypatch.setattr(Trainer, "_queue", queue_)
    monkeypatch.setattr(Trainer, "_setup", setup_)
    monkeypatch.setattr(trainer_mod, "check_finite", _uncounted(host_reads, trainer_mod.check_finite))
    for name in ("_log_interval", "save"):
        monkeypatch.setattr(Trainer, name, _uncounted(host_reads, getattr(Trainer, name)))
    trainer.fit()
    return per_step[1:]  # the first one includes the set-up


def test_a_training_step_reads_the_device_at_most_once(tmp_path, host_reads, monkeypatch):
    """Multi-step rollout with a class loss, accumulation and clipping: <= 1 read per step between logs."""
    corpus = make_corpus(tmp_path / "data", frames=8, n_train=2, n_test=1)
    trainer = _trainer(
        corpus,
        tmp_path / "run",
        "train.max_steps=6",
        "train.log_every=100",
        "train.t_ar=2",
        "train.cls_weight=0.1",
        "train.grad_accum=2",
        "train.checkpoint_every=100",
    )
    per_step = _count_per_step(trainer, host_reads, monkeypatch)
    assert len(per_step) == 5 and max(per_step) <= 1, per_step


def test_bad_steps_are_skipped_on_the_device(tmp_path, host_reads, monkeypatch, capsys):
    """Every step diverges (t_ar=2 rollout of huge values), skipped on the device: weights and AdamW state as if no
    step had run (moments zero, step counters 0), each skip reported with its step, the run then stops."""
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
    trainer = _trainer(
        tmp_path / "data",
        tmp_path / "run",
        "train.max_steps=5",
        "train.log_every=100",
        "train.t_ar=2",
        "train.noise=0",
        "train.max_bad_steps=4",
        "train.checkpoint_every=100",
        "data.normalize=false",
    )
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(trainer_mod.DpotError, match="NaN/Inf loss at step 4 on dataset"):
        _count_per_step(trainer, host_reads, monkeypatch)
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k].cpu()) for k in before)
    states = list(trainer.optimizer.state.values())
    assert states and all(float(s["step"]) == 0 and not s["exp_avg"].any() for s in states)
    assert trainer.skipped == [1, 2, 3, 4]
    err = capsys.readouterr().err
    assert all(f"step {s}: non-finite loss on blowup (" in err for s in (1, 2, 3, 4))
    assert "the batch is finite, so the model or optimiser state diverged" in err


def test_compile_failure_at_a_later_graph_falls_back_to_eager():
    """The first (grad) graph compiles; a no-grad graph compiled later fails: one warning, eager results."""
    compiled_graphs = []

    def flaky(gm, example_inputs):
        if compiled_graphs:
            raise RuntimeError("no C++ compiler")
        compiled_graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    model = torch.nn.Linear(4, 3)
    said = []
    engine = EagerFallback(torch.compile(model, backend=flaky), model, said.append)
    x = torch.randn(2, 4)
    engine(x).sum().backward()
    assert len(compiled_graphs) == 1 and not said
    with torch.no_grad():
        assert torch.equal(engine(x), model(x))
        engine(x)
    assert len(said) == 1 and "torch.compile failed (BackendCompilerFailed" in said[0]
    torch._dynamo.reset()


def test_torchrun_ranks_get_their_local_gpu(monkeypatch):
    from dpot.training.distributed import resolve_device

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("cuda:0", n_gpus=2) == torch.device("cuda", 1)
    assert resolve_device("cuda", n_gpus=2) == torch.device("cuda", 1)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("cuda:0", n_gpus=2) == torch.device("cuda", 1)  # 2 nodes' worth of ranks, 2 GPUs
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # one process: as given
    assert resolve_device("cuda") == torch.device("cuda", 0)
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")


def test_tf32_policy_is_set_for_the_block_and_restored():
    from dpot.training.engine import tf32_policy

    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    for enabled in (True, False):
        with tf32_policy(enabled):
            assert torch.backends.cuda.matmul.allow_tf32 is enabled and torch.backends.cudnn.allow_tf32 is enabled
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == old
