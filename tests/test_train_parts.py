"""Loss, metrics, noise and schedules against hand-computed values and torch's own OneCycleLR."""

from __future__ import annotations

import math

import pytest
import torch

from dpot.evaluation.metrics import l2re, l2re_per_step, nrmse, relative_l2_loss, vrmse
from dpot.training.config import OptimConfig
from dpot.training.noise import add_noise
from dpot.training.optim import beta1_at, build_optimizer, lr_at


def test_l2re_whole_block_per_channel_and_mask():
    y = torch.ones(2, 4, 4, 3, 2)
    pred = y.clone()
    pred[..., 0] *= 1.1  # channel 0: 10 % error everywhere
    pred[..., 1] = 0.0  # channel 1 (padding for sample 0): 100 % error
    mask = torch.tensor([[1, 0], [1, 1]])
    assert l2re(pred, y, mask).tolist() == pytest.approx([0.1, 0.55])
    assert l2re(pred, y).tolist() == pytest.approx([0.55, 0.55])
    assert relative_l2_loss(pred, y, mask).item() == pytest.approx(0.325)
    assert l2re_per_step(pred, y, mask).shape == (2, 3)


def test_whole_block_differs_from_per_step_average():
    y = torch.ones(1, 8, 8, 2, 1)
    y[..., 1, :] = 10.0  # the second frame is 10x larger
    pred = y.clone()
    pred[..., 0, :] += 1.0  # 100 % error on the small frame only
    assert nrmse(pred, y).item() == pytest.approx(0.5)  # mean of per-frame errors (1, 0)
    assert l2re(pred, y).item() == pytest.approx(1 / math.sqrt(101))  # one norm over the block


def test_vrmse_scales_by_variance():
    y = torch.randn(3, 16, 16, 2, 1)
    shifted = y + 0.5 * y.std(dim=(1, 2), keepdim=True, correction=0)
    assert vrmse(shifted, y).tolist() == pytest.approx([0.5] * 3, rel=1e-4)


@pytest.mark.parametrize("mode, level", [("reference", 1e-2), ("rms", 0.1)])
def test_noise_level_per_channel_and_padding_untouched(mode, level):
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 32, 32, 10, 3)
    x[..., 0] = 3.0
    x[..., 1] = torch.randn(2, 32, 32, 10)
    noisy = add_noise(x, level, mode, generator=g)
    n = 32 * 32 * 10
    for c in (0, 1):
        norm = x[..., c].flatten(1).norm(dim=1)
        scale = level * (norm if mode == "reference" else norm / math.sqrt(n))
        std = (noisy - x)[..., c].flatten(1).std(dim=1)
        assert std.tolist() == pytest.approx(scale.tolist(), rel=0.05)
    assert torch.equal(noisy[..., 2], x[..., 2])  # zero-padded channel: no noise


def test_onecycle_matches_torch_including_beta1():
    cfg = OptimConfig(lr=1e-3, warmup=0.2, schedule="onecycle", cycle_beta1=True, betas=[0.9, 0.9])
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3, betas=(0.9, 0.9))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1e-3, total_steps=50, pct_start=0.2, div_factor=1e4, final_div_factor=1e4
    )
    for step in range(50):
        assert lr_at(cfg, step, 50) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        assert beta1_at(cfg, step, 50) == pytest.approx(opt.param_groups[0]["betas"][0])
        opt.step()
        sched.step()
    assert beta1_at(OptimConfig(cycle_beta1=False), 10, 50) == 0.9  # default: beta1 stays as configured


def test_cosine_warmup_and_layerwise_groups():
    cfg = OptimConfig(lr=1.0, schedule="cosine", warmup=10, min_lr_ratio=0.1)
    assert lr_at(cfg, 0, 110) == pytest.approx(0.1) and lr_at(cfg, 9, 110) == pytest.approx(1.0)
    assert lr_at(cfg, 60, 110) == pytest.approx(0.55) and lr_at(cfg, 500, 110) == pytest.approx(0.1)
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([{"params": [a]}, {"params": [b], "lr": 0.5}], cfg)
    assert [g["base_lr"] for g in opt.param_groups] == [1.0, 0.5]
    assert lr_at(cfg, 60, 110, opt.param_groups[1]["base_lr"]) == pytest.approx(0.275)


def test_adam_is_coupled_adamw_is_decoupled():
    cfg = OptimConfig(name="adam", weight_decay=0.1)
    assert type(build_optimizer([{"params": [torch.nn.Parameter(torch.ones(1))]}], cfg)) is torch.optim.Adam
    cfg = OptimConfig(name="adamw", weight_decay=0.1)
    assert type(build_optimizer([{"params": [torch.nn.Parameter(torch.ones(1))]}], cfg)) is torch.optim.AdamW


def test_interval_stats_average_applied_steps_per_dataset():
    from dpot.training.logs import IntervalStats

    stats = IntervalStats(["a", "b"], torch.device("cpu"))
    stats.begin_step()
    stats.add_batch(torch.tensor([1.0, 3.0]), torch.tensor([0, 1]), torch.tensor(2.0))
    stats.add_batch(torch.tensor([2.0, 2.0]), torch.tensor([0, 0]), torch.tensor(2.0))
    stats.end_step(torch.tensor(True), grad_accum=2, samples=4)
    stats.begin_step()  # a diverged step: counted in the throughput, not in the losses
    stats.add_batch(torch.tensor([float("nan"), 5.0]), torch.tensor([1, 0]), torch.tensor(float("nan")))
    assert not torch.isfinite(stats.step_loss_sum())
    stats.end_step(torch.tensor(False), grad_accum=1, samples=2)
    out = stats.read()
    assert out["loss"] == 2.0 and out["loss_per_dataset"] == {"a": 5.0 / 3, "b": 3.0}
    assert out["samples_per_s"] == pytest.approx(3 * out["steps_per_s"])
    assert stats.read()["loss"] is None  # a new interval starts empty
