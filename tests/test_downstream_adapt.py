"""Unit checks of the downstream pieces: checkpoint adaptation rules, parameter groups, the FNO adapter and
array layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpot.errors import DpotError
from dpot.evaluation.layout import Layout
from dpot.models import DPOT
from dpot.models.config import FNOConfig
from dpot.models.fno_baseline import FNOBaseline
from dpot.training.config import AdaptConfig, FinetuneConfig
from dpot.training.finetune import TaskShape, adapt_model
from dpot.training.param_groups import param_groups

SMALL = dict(
    img_size=16,
    patch_size=4,
    embed_dim=32,
    depth=2,
    n_blocks=4,
    mlp_ratio=1,
    out_layer_dim=8,
    modes=4,
    in_channels=2,
    out_channels=2,
    in_timesteps=4,
)


def small(**kw) -> DPOT:
    torch.manual_seed(0)
    return DPOT.from_preset("demo", **{**SMALL, **kw})


def test_widen_keeps_pretrained_channels_and_reinit_replaces_heads():
    src = small()
    task = TaskShape(name="t", ndim=2, grid=(16, 16), channels=3, t_in=4, steady=False)
    with pytest.raises(DpotError, match="finetune.channels=widen"):
        adapt_model(src, task, FinetuneConfig())
    cfg = FinetuneConfig(finetune=AdaptConfig(channels="widen"))
    model, log = adapt_model(src, task, cfg)
    w_src, w_new = src.patch_embed.proj[0].weight, model.patch_embed.proj[0].weight
    e = w_src.shape[0]
    assert torch.equal(w_new[:e, :2], w_src[:, :2]) and torch.equal(w_new[:e, 3:], w_src[:, 2:])
    assert torch.count_nonzero(w_new[:e, 2]) == 0  # the new input channel starts silent
    assert torch.equal(model.out_layer[4].weight[:2], src.out_layer[4].weight)
    assert any("widened" in line for line in log)
    re_model, _ = adapt_model(src, task, FinetuneConfig(finetune=AdaptConfig(channels="reinit")))
    assert torch.equal(re_model.blocks[0].filter.w1, src.blocks[0].filter.w1)
    assert re_model.config.in_channels == 3


def test_auto_channels_reinit_the_heads_for_fields_the_checkpoint_never_trained():
    """`auto` keeps a 3-channel checkpoint's embedding and head for a pre-training dataset's fields, and starts
    them new for other fields (3-channel shallow water after 1-channel NS and 2-channel diffusion-reaction:
    kept, the rollout diverged, docs/downstream.md)."""
    src = small(in_channels=3, out_channels=3, channel_mask=True)
    with torch.no_grad():
        src.patch_embed.mask_proj.fill_(0.5)  # as if trained
    trained = [
        {"name": "ns", "pde": "ns2d_vorticity", "channels": ["w"]},
        {"name": "dr", "pde": "diffusion_reaction", "channels": ["u", "v"]},
    ]
    sw = TaskShape("sw", 2, (16, 16), 3, 4, False, "shallow_water", ("h", "u", "v"))
    model, log = adapt_model(src, sw, FinetuneConfig(), trained)
    assert "channels auto -> reinit" in log[0] and "shallow_water [h, u, v]" in log[0]
    assert torch.equal(model.blocks[0].filter.w1, src.blocks[0].filter.w1)
    for name in ("patch_embed.proj.0.weight", "patch_embed.mask_proj", "out_layer.4.weight"):
        assert not torch.equal(model.state_dict()[name], src.state_dict()[name]), name
    for task in (
        TaskShape("dr2", 2, (16, 16), 2, 4, False, "diffusion_reaction", ("u", "v")),
        TaskShape("sw", 2, (16, 16), 3, 4, False, "shallow_water", ("h", "u", "v")),
    ):
        kept, log = adapt_model(src, task, FinetuneConfig(), trained if task.name == "dr2" else None)
        assert log[0].startswith("channels auto: padded as is") and kept.config.in_channels == 3
        assert all(torch.equal(v, src.state_dict()[k]) for k, v in kept.state_dict().items())


def test_resolution_and_time_adaptation():
    src = small()
    task = TaskShape(name="t", ndim=2, grid=(32, 32), channels=2, t_in=1, steady=True)
    model, log = adapt_model(src, task, FinetuneConfig())
    assert model.pos_embed.shape[2:] == (8, 8) and model.config.in_timesteps == 1
    assert torch.allclose(model.time_agg_layer.w[0], src.time_agg_layer.w.sum(0))
    assert model(torch.randn(2, 32, 32, 1, 2)).shape == (2, 32, 32, 1, 2)
    assert any("interpolated" in line for line in log) and any("T_in 4 -> 1" in line for line in log)


def test_param_groups_freeze_and_layer_decay():
    model = small()
    groups = param_groups(model, AdaptConfig(freeze=["embedding"], layer_decay=0.5), lr=1.0)
    lrs = {n: g["lr"] for g in groups for n in g["params"]}
    assert not any(n.startswith("patch_embed.") for n in lrs) and not model.pos_embed.requires_grad
    assert lrs["blocks.1.mlp.0.weight"] == 0.5 and lrs["blocks.0.mlp.0.weight"] == 0.25
    assert lrs["out_layer.0.weight"] == 1.0
    with pytest.raises(DpotError, match="matches no parameter"):
        param_groups(small(), AdaptConfig(freeze=["nonexistent"]), lr=1.0)


def test_fno_adapter_roundtrip(tmp_path):
    from dpot.models import load_model, rollout

    fno = FNOBaseline(FNOConfig(ndim=2, in_channels=2, out_channels=2, in_timesteps=3, modes=4, width=8, n_layers=2))
    x = torch.randn(2, 12, 12, 3, 2)
    mask = torch.tensor([[1, 0], [1, 1]])
    y = fno(x, channel_mask=mask)
    assert y.shape == (2, 12, 12, 1, 2)
    x2 = x.clone()
    x2[0, ..., 1] = 7.0  # a padded channel does not change the prediction
    assert torch.allclose(fno(x2, channel_mask=mask)[0], y[0])
    fno.save_pretrained(tmp_path / "ck")
    again = load_model(tmp_path / "ck")
    assert isinstance(again, FNOBaseline) and torch.allclose(again(x, channel_mask=mask), y)
    assert rollout(again, x, 4).shape == (2, 12, 12, 4, 2)
    with pytest.raises(ValueError, match="T_in=3"):
        fno(torch.randn(1, 12, 12, 4, 2))


def test_layout_roundtrip_and_errors():
    a = np.random.rand(5, 3, 8, 6)
    lay = Layout.parse("t c y x")
    canon = lay.to_canonical(a)
    assert canon.shape == (1, 5, 6, 8, 3) and np.array_equal(lay.from_canonical(canon), a)
    for bad, msg in (("n t x q", "unknown axis"), ("t t x", "twice"), ("n x c", "needs a 't'"), ("t y", "x, x y")):
        with pytest.raises(DpotError, match=msg):
            Layout.parse(bad)
