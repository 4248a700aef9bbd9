"""LoRA fine-tuning: low-rank updates (matrix, complex spectral, per-frame), adapter save/load, merge/export,
and `dpot finetune ... finetune.method=lora` end to end on `dpot generate tiny` data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from test_downstream_cli import QUIET, run, tiny  # noqa: F401  (module fixtures: tiny corpus, tiny pre-training)

from dpot.cli import main
from dpot.errors import DpotError
from dpot.models import DPOT, load_model
from dpot.models.lora import LoraConfig, LoraDPOT, attach, count_trainable, inject
from dpot.training.config import AdaptConfig
from dpot.training.param_groups import param_groups

SMALL = dict(
    img_size=16, patch_size=4, embed_dim=32, depth=2, n_blocks=4, mlp_ratio=1, out_layer_dim=8, in_timesteps=3, modes=3
)


def small_dpot(seed=0):
    torch.manual_seed(seed)
    return DPOT.from_preset("demo", **SMALL)


def perturb(model, seed=1):
    """Give every trainable tensor a random nudge (the zero-initialised factors included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


X = torch.randn(2, 16, 16, 3, 4, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("spectral", [True, False])
def test_trainable_counts_and_merge_equals_unmerged(spectral):
    base = small_dpot()
    r, d, h = 4, 32, 4
    b = d // h
    cfg = LoraConfig(rank=r, spectral=spectral, targets=["blocks.*.mlp.*.weight", "time_agg_layer.w"], full=[])
    lora = inject(base, cfg)
    with torch.no_grad():
        assert torch.equal(lora(X), base(X))  # the zero-initialised factors start at the base network
    mlp = 2 * 2 * r * (d + d)  # 2 blocks x 2 matrices (32x32) x r(m + n)
    time = 3 * r * (d + d)  # T_in=3 per-frame products
    spec = 2 * 2 * (2 * h * b * r + 2 * h * r * b)  # 2 blocks x (w1, w2) x complex factors (re, im)
    assert count_trainable(lora) == mlp + time + (spec if spectral else 0)
    assert set(lora.state_dict()) == {n for n, _ in lora.named_parameters()}  # the state dict IS the adapter
    perturb(lora)
    merged = lora.merged()
    assert type(merged) is DPOT and not any("parametrizations" in k for k in merged.state_dict())
    with torch.no_grad():
        out, ref = lora(X), merged(X)
        assert not torch.allclose(out, base(X))
    torch.testing.assert_close(ref, out, rtol=1e-5, atol=1e-6)


def test_defaults_train_biases_and_norms_in_full_and_the_factors_at_a_higher_rate():
    """Regression: with only the low-rank factors training at optim.lr, held-out rollouts stayed near the
    untrained level (docs/downstream.md); biases/norms train in full, the factors at lr x lr_scale."""
    base = small_dpot()
    lora = inject(base, LoraConfig(rank=2))
    params = dict(lora.named_parameters())
    full = {
        "blocks.0.norm1.weight",
        "blocks.1.norm2.bias",
        "blocks.0.mlp.0.bias",
        "blocks.1.filter.b2",
        "patch_embed.proj.0.bias",
        "out_layer.4.bias",
    }
    assert full <= set(params) and full <= set(lora.lora_record["full"]) and full <= set(lora.state_dict())
    assert "time_agg_layer.w" in lora.lora_record["targets"] and "pos_embed" not in params
    lora(X).square().mean().backward()
    assert all(params[n].grad.abs().sum() > 0 for n in params if n.endswith(".b") or n in full)  # all reached
    groups = param_groups(lora, AdaptConfig(method="lora"), lr=1e-3)
    lr_of = {n: g["lr"] for g in groups for n in g["params"]}
    assert set(lr_of) == set(params)  # the optimiser holds every trainable tensor
    assert lr_of["blocks.0.mlp.0.parametrizations.weight.0.a"] == pytest.approx(4e-3)
    assert lr_of["blocks.0.norm1.weight"] == pytest.approx(1e-3)


def test_unknown_or_empty_targets_are_one_line():
    with pytest.raises(DpotError, match="matches no parameter"):
        inject(small_dpot(), LoraConfig(targets=["blocks.*.attn.weight"]))
    with pytest.raises(DpotError, match="finetune.lora.full"):
        inject(small_dpot(), LoraConfig(full=["blocks.*.gamma"]))
    with pytest.raises(DpotError, match="select no weight matrix"):
        inject(small_dpot(), LoraConfig(targets=["blocks.*.norm1.*"], spectral=False))
    with pytest.raises(DpotError, match="rank=0"):
        LoraConfig(rank=0)


def test_adapter_save_load_export(tmp_path, capsys):
    base = small_dpot()
    base.save_pretrained(tmp_path / "base")
    adapted = small_dpot()
    with torch.no_grad():  # a tensor the task adaptation changed: trains in full, stored in the adapter
        adapted.pos_embed.mul_(2)
    lora = attach(adapted, base, tmp_path / "base", LoraConfig(rank=2))
    full = lora.lora_record["full"]  # the changed tensor and the default biases/norms
    assert "pos_embed" in full and "blocks.0.norm1.weight" in full
    assert "blocks.0.filter.w1" in lora.lora_record["targets"]
    perturb(lora)
    lora.save_pretrained(tmp_path / "adapter", extra={"normalization": None, "step": 7})
    adapter = load_file(str(tmp_path / "adapter" / "model.safetensors"))
    assert "pos_embed" in adapter and not any(k.startswith("cls_head") for k in adapter)
    assert sum(v.numel() for v in adapter.values()) == count_trainable(lora) < base.num_parameters()
    loaded = load_model(tmp_path / "adapter")
    assert isinstance(loaded, LoraDPOT)
    with torch.no_grad():
        expected = lora(X)
        torch.testing.assert_close(loaded(X), expected, rtol=0, atol=0)
    # export --merge: a plain checkpoint that loads without the LoRA code (checked in a fresh interpreter)
    assert main(["export", "--merge", str(tmp_path / "adapter"), "--out", str(tmp_path / "merged")]) == 0
    assert "parameters:" in capsys.readouterr().out
    meta = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert meta["model_type"] == "dpot" and meta["step"] == 7 and meta["merged_from"]["lora"]["rank"] == 2
    torch.save(X, tmp_path / "x.pt")
    code = (
        "import sys, torch; from dpot.models import load_model; "
        f"m = load_model({str(tmp_path / 'merged')!r}); x = torch.load({str(tmp_path / 'x.pt')!r}); "
        f"torch.save(m(x).detach(), {str(tmp_path / 'y.pt')!r}); "
        "assert type(m).__name__ == 'DPOT' and 'dpot.models.lora' not in sys.modules and 'peft' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), expected, rtol=1e-5, atol=1e-6)
    # the base moved on: loading the adapter refuses, in one line
    with torch.no_grad():
        base.pos_embed.add_(1)
    base.save_pretrained(tmp_path / "base")
    with pytest.raises(DpotError, match="changed since the adapter was trained"):
        load_model(tmp_path / "adapter")
    assert main(["export", "--merge", str(tmp_path / "merged"), "--out", str(tmp_path / "m2")]) == 2
    assert "not a LoRA adapter folder" in capsys.readouterr().err


def test_finetune_cli_lora(tiny, run, tmp_path, capsys):  # noqa: F811
    ft, data = tmp_path / "ft", str(tiny / "ns2d_nu1e-3")
    base = run / "checkpoint"
    assert (
        main(
            [
                "finetune",
                "--from",
                str(base),
                "--data",
                data,
                "--out",
                str(ft),
                "train.max_steps=2",
                "finetune.method=lora",
                "finetune.lora.rank=2",
                *QUIET,
            ]
        )
        == 0
    )
    meta = json.loads((ft / "checkpoint" / "config.json").read_text())
    assert meta["model_type"] == "dpot-lora" and meta["lora"]["base"]["path"] == str(base.resolve())
    assert meta["step"] == 2 and any("LoRA rank 2" in line for line in meta["finetune"]["adaptation"])
    adapter = load_file(str(ft / "checkpoint" / "model.safetensors"))
    src = load_file(str(base / "model.safetensors"))
    assert sum(v.numel() for v in adapter.values()) < sum(v.numel() for v in src.values()) / 2
    assert not any(torch.equal(v, torch.zeros_like(v)) for k, v in adapter.items() if k.endswith(".b"))  # trained
    assert main(["finetune", "--resume", str(ft), "train.max_steps=3", *QUIET]) == 0
    assert json.loads((ft / "checkpoint" / "config.json").read_text())["step"] == 3
    capsys.readouterr()
    for ckpt, ev in ((ft / "checkpoint", tmp_path / "ev"), (tmp_path / "merged", tmp_path / "ev_m")):
        if ckpt.name == "merged":
            assert main(["export", "--merge", str(ft / "checkpoint"), "--out", str(ckpt)]) == 0
        assert main(["evaluate", "--checkpoint", str(ckpt), "--data", data, "--rollout", "3", "--out", str(ev)]) == 0
        assert (
            main(
                [
                    "rollout",
                    "--checkpoint",
                    str(ckpt),
                    "--input",
                    str(tiny / "ns2d_nu1e-3" / "test.h5"),
                    "--steps",
                    "2",
                    "--out",
                    str(ev / "p.h5"),
                ]
            )
            == 0
        )
    adapter_l2re = json.loads((tmp_path / "ev" / "metrics.json").read_text())["ns2d_nu1e-3"]["l2re"]
    merged_l2re = json.loads((tmp_path / "ev_m" / "metrics.json").read_text())["ns2d_nu1e-3"]["l2re"]
    assert adapter_l2re == pytest.approx(merged_l2re, rel=1e-4)
    assert (
        main(
            [
                "finetune",
                "--from",
                str(base),
                "--data",
                data,
                "--out",
                str(tmp_path / "f2"),
                "model=fno",
                "finetune.method=lora",
                *QUIET,
            ]
        )
        == 2
    )
    assert "finetune.method=lora" in capsys.readouterr().err
