"""Checkpoint folders (save/load, load_model dispatch, summary) and auto-regressive rollout."""

from __future__ import annotations

import json
import sys

import pytest
import torch

import dpot
from dpot.errors import DpotError
from dpot.models import MODEL_TYPES, DPOTConfig, checkpoint_summary, load_model


def small(**kw) -> dpot.DPOT:
    torch.manual_seed(0)
    return dpot.DPOT(
        DPOTConfig(
            img_size=16,
            patch_size=4,
            in_channels=2,
            out_channels=2,
            in_timesteps=3,
            embed_dim=16,
            depth=1,
            n_blocks=2,
            out_layer_dim=4,
            n_cls=2,
            **kw,
        )
    )


def test_save_and_load_exactly(tmp_path):
    m = small(symmetric_modes=True, modes=2)
    m.save_pretrained(tmp_path / "ck", extra={"step": 7})
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["model_type"] == "dpot" and meta["step"] == 7 and meta["dpot_version"] == dpot.__version__
    loaded = dpot.DPOT.from_pretrained(tmp_path / "ck")
    assert loaded.config == m.config
    for (k, a), (_, b) in zip(m.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.randn(1, 16, 16, 3, 2)
    assert torch.equal(load_model(tmp_path / "ck")(x), m(x))


def test_summary_and_registry(tmp_path):
    m = small()
    m.save_pretrained(tmp_path / "ck", extra={"data": {"datasets": ["a"]}})
    text = checkpoint_summary(tmp_path / "ck")
    assert f"parameters: {m.num_parameters():,}" in text and "DPOT 2D" in text and '"datasets"' in text
    assert {"dpot", "fno"} <= set(MODEL_TYPES)
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    (tmp_path / "ck" / "config.json").write_text(json.dumps({**meta, "model_type": "unet"}))
    with pytest.raises(DpotError, match="unknown model_type 'unet'"):
        load_model(tmp_path / "ck")
    with pytest.raises(DpotError, match="config.json missing"):
        load_model(tmp_path / "nothing")


def test_mismatched_weights_rejected(tmp_path):
    small().save_pretrained(tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    meta["model"]["depth"] = 2
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(DpotError, match="do not match config.json"):
        dpot.DPOT.from_pretrained(tmp_path / "ck")
    meta["model"].update(depth=1, n_cls=5)
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(DpotError, match="size mismatch for cls_head"):
        dpot.DPOT.from_pretrained(tmp_path / "ck")


def test_rollout_slides_window_and_bundles():
    m = small(out_timesteps=2)
    hist = torch.randn(2, 16, 16, 5, 2)
    with torch.no_grad():
        traj = dpot.rollout(m, hist, steps=5)
        assert traj.shape == (2, 16, 16, 5, 2)
        window, frames = hist[..., -3:, :], []
        for _ in range(5):
            frame = m(window)[..., :1, :]
            frames.append(frame)
            window = torch.cat([window[..., 1:, :], frame], dim=-2)
        assert torch.allclose(dpot.rollout(m, hist, steps=5, bundle=1), torch.cat(frames, -2), atol=1e-6)
        assert torch.allclose(traj[..., :2, :], m(hist[..., -3:, :]))
    with pytest.raises(ValueError, match="bundle must be in 1..2"):
        dpot.rollout(m, hist, steps=2, bundle=3)
    with pytest.raises(ValueError, match="history must have shape"):
        dpot.rollout(m, hist[..., :2, :], steps=2)


def test_registry_names_each_config_class():
    from dpot.models.checkpoint import model_class
    from dpot.models.fno_baseline import FNOConfig

    assert model_class("dpot").config_class is DPOTConfig and model_class("fno").config_class is FNOConfig
    assert all(model_class(t).model_type == t for t in MODEL_TYPES)


def test_load_overrides_keep_weight_shapes(tmp_path):
    from dpot.models.checkpoint import load_model_config

    m = small()
    m.save_pretrained(tmp_path / "ck")
    loaded = load_model(tmp_path / "ck", interpolate_pos_embed=True)
    assert loaded.config.interpolate_pos_embed and torch.equal(loaded.pos_embed, m.pos_embed)
    x = torch.randn(1, 24, 24, 3, 2)  # a grid the checkpoint was not built for, thanks to the override
    assert loaded(x).shape == (1, 24, 24, 1, 2)
    assert load_model_config(tmp_path / "ck", grad_checkpoint=True).grad_checkpoint
    with pytest.raises(DpotError, match=r"override depth=2 changes the weights \(blocks\.1\."):
        dpot.DPOT.from_pretrained(tmp_path / "ck", depth=2)
    with pytest.raises(DpotError, match="override channel_mask=True changes the weights"):
        load_model(tmp_path / "ck", channel_mask=True)
    with pytest.raises(DpotError, match="unknown config key .depht.; did you mean .depth."):
        load_model(tmp_path / "ck", depht=2)


def fno_model():
    from dpot.models.fno_baseline import FNOBaseline, FNOConfig

    torch.manual_seed(0)
    return FNOBaseline(FNOConfig(ndim=1, in_channels=1, out_channels=1, in_timesteps=2, modes=3, width=4, n_layers=1))


def test_fno_checkpoint_same_format_and_older_ones_load(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    m = fno_model()
    m.save_pretrained(tmp_path / "new")
    with safe_open(str(tmp_path / "new" / "model.safetensors"), framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
    x = torch.randn(2, 16, 2, 1)
    assert torch.equal(load_model(tmp_path / "new")(x), m(x))
    # the layout FNO checkpoints had before the shared format: no safetensors metadata
    old = tmp_path / "old"
    old.mkdir()
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(old / "model.safetensors"))
    (old / "config.json").write_text(
        json.dumps({"model_type": "fno", "model": m.config.to_dict(), "dpot_version": "0.1.0"})
    )
    assert torch.equal(load_model(old)(x), m(x))


def test_missing_optional_extra_is_one_line(tmp_path, monkeypatch):
    fno_model().save_pretrained(tmp_path / "ck")
    monkeypatch.setitem(sys.modules, "neuralop", None)  # as if neuraloperator were not installed
    monkeypatch.setitem(sys.modules, "neuralop.models", None)
    with pytest.raises(DpotError, match=r"pip install 'dpot\[baselines\]'"):
        load_model(tmp_path / "ck")
    with pytest.raises(DpotError, match=r"pip install 'dpot\[baselines\]'"):
        fno_model()
