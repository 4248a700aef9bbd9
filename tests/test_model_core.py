"""DPOT network: sizes, shapes for 1D/2D/3D, options, layers against naive versions, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dpot.errors import DpotError
from dpot.models import DPOT, DPOTConfig, count_parameters, preset_config
from dpot.models.layers import GroupNormCL, SpectralMixer
from dpot.models.presets import REFERENCE_PARAMS


def tiny(**kw) -> DPOT:
    base = dict(
        img_size=16,
        patch_size=4,
        in_channels=3,
        out_channels=3,
        in_timesteps=4,
        embed_dim=32,
        depth=2,
        n_blocks=4,
        mlp_ratio=2,
        out_layer_dim=8,
        n_cls=5,
    )
    base.update(kw)
    torch.manual_seed(0)
    return DPOT(DPOTConfig(**base))


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_preset_parameter_counts_match_reference(name):
    assert count_parameters(preset_config(name)) == REFERENCE_PARAMS[name]


def test_presets_build_on_meta_and_demo_is_small():
    with torch.device("meta"):
        assert DPOT.from_preset("H").pos_embed.is_meta
    assert count_parameters(preset_config("demo")) < 500_000
    assert preset_config("ti", depth=2).depth == 2  # case-insensitive, overrides
    with pytest.raises(DpotError, match="unknown DPOT preset"):
        preset_config("XL")


def test_config_roundtrip_and_validation():
    cfg = preset_config("S", ndim=3, img_size=64)
    assert DPOTConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.img_size == (64, 64, 64) and cfg.patch_hidden_dim == 4 * 8 + 4
    assert cfg.faithful and not cfg.replace(channel_mask=True).faithful
    with pytest.raises(DpotError, match="unknown config key 'embed_dims'; did you mean 'embed_dim'"):
        DPOTConfig.from_dict({"embed_dims": 3})
    with pytest.raises(DpotError, match="divisible by patch_size"):
        DPOTConfig(img_size=30)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_shapes_all_dimensions(ndim):
    size = {1: 32, 2: 16, 3: 8}[ndim]
    m = tiny(ndim=ndim, img_size=size, out_timesteps=2, patch_size=4)
    x = torch.randn(2, *([size] * ndim), 4, 3)
    y, logits = m(x, return_logits=True)
    assert y.shape == (2, *([size] * ndim), 2, 3) and logits.shape == (2, 5)
    y.sum().backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if not n.startswith("cls_head"))


def test_fused_embedding_equals_layer_by_layer():
    m = tiny()
    x = torch.randn(2, 16, 16, 4, 3)
    cfg = m.config
    t = torch.linspace(0, 1, 4)
    gx = torch.linspace(0, 1, 16)
    grid = torch.stack(torch.meshgrid(gx, gx, t, indexing="ij"), -1).expand(2, -1, -1, -1, -1)
    h = torch.cat([x, grid], -1).permute(0, 3, 4, 1, 2).reshape(8, 6, 16, 16)
    p0, p2 = m.patch_embed.proj[0], m.patch_embed.proj[2]
    h = F.conv2d(F.gelu(F.conv2d(h, p0.weight, p0.bias, stride=4)), p2.weight, p2.bias) + m.pos_embed
    h = h.reshape(2, 4, cfg.embed_dim, 4, 4).permute(0, 3, 4, 1, 2)
    expected = m.time_agg_layer(h)
    assert torch.allclose(m.embed(x), expected, atol=1e-5, rtol=1e-5)


def test_group_norm_channels_last_matches_torch():
    gn = GroupNormCL(8, 32)
    torch.nn.init.normal_(gn.weight)
    x = torch.randn(2, 5, 6, 32)
    ref = F.group_norm(x.permute(0, 3, 1, 2), 8, gn.weight, gn.bias).permute(0, 2, 3, 1)
    assert torch.allclose(gn(x), ref, atol=1e-5)


def _naive_spectral(layer: SpectralMixer, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Reference-style filter: MLP on every mode with separate real/imag einsums, then zero the dropped ones."""
    b, hh, ww, d = x.shape
    z = torch.fft.rfft2(x, dim=(1, 2), norm="ortho").reshape(b, hh, ww // 2 + 1, layer.n_blocks, layer.block)
    w1, b1, w2, b2 = layer.w1, layer.b1, layer.w2, layer.b2

    def mm(a, w):
        return torch.einsum("...bi,bio->...bo", a, w)

    r1 = F.gelu(mm(z.real, w1[0]) - mm(z.imag, w1[1]) + b1[0])
    i1 = F.gelu(mm(z.imag, w1[0]) + mm(z.real, w1[1]) + b1[1])
    r2 = mm(r1, w2[0]) - mm(i1, w2[1]) + b2[0]
    i2 = mm(i1, w2[0]) + mm(r1, w2[1]) + b2[1]
    out = torch.complex(r2, i2).reshape(b, hh, ww // 2 + 1, d) * keep[None, :, :, None]
    return torch.fft.irfft2(out, s=(hh, ww), dim=(1, 2), norm="ortho") + x


@pytest.mark.parametrize("modes,symmetric", [(None, False), (3, False), (3, True), (100, True)])
def test_spectral_mixer_matches_naive_filter(modes, symmetric):
    torch.manual_seed(1)
    layer = SpectralMixer(32, 4, 2, modes, symmetric)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 12, 10, 32)
    kx, ky = torch.fft.fftfreq(12) * 12, torch.arange(6)
    m = modes or 100
    rows = (kx.abs() < m) if symmetric else (torch.arange(12) < m)
    keep = (rows[:, None] & (ky[None, :] < m)).float()
    assert torch.allclose(layer(x), _naive_spectral(layer, x, keep), atol=1e-5)


def test_interpolated_pos_embed_any_divisible_size():
    m = tiny(interpolate_pos_embed=True)
    plain = tiny()
    x = torch.randn(1, 16, 16, 4, 3)
    assert torch.allclose(m(x), plain(x))  # native grid: unchanged
    assert m(torch.randn(1, 24, 12, 4, 3)).shape == (1, 24, 12, 1, 3)
    with pytest.raises(ValueError, match="divisible by patch_size=4"):
        m(torch.randn(1, 18, 16, 4, 3))


def test_channel_mask_padding_rules():
    x = torch.randn(2, 16, 16, 4, 3)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    m = tiny()
    ones = x.clone()
    ones[0, ..., 2] = 1.0
    ones[1, ..., 1:] = 1.0
    assert torch.allclose(m(x, channel_mask=mask), m(ones))  # faithful: padded channels become 1.0
    mm = tiny(channel_mask=True)
    torch.nn.init.normal_(mm.patch_embed.mask_proj)
    garbage = x.clone()
    garbage[0, ..., 2] = 7.0
    assert torch.allclose(mm(x, channel_mask=mask), mm(garbage, channel_mask=mask))
    assert not torch.allclose(mm(x, channel_mask=mask), mm(x * (mask[:, None, None, None, :] > 0)))


def test_patch_hidden_and_grad_checkpoint():
    assert tiny(patch_hidden=64).patch_embed.proj[0].weight.shape[0] == 64
    x = torch.randn(2, 16, 16, 4, 3)
    grads = []
    for flag in (False, True):
        m = tiny(grad_checkpoint=flag).train()
        m(x).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for n, p in m.named_parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_bf16_autocast_keeps_ffts_fp32(monkeypatch):
    m = tiny()
    x = torch.randn(2, 16, 16, 4, 3)
    seen = []
    for name in ("rfftn", "irfftn"):
        fn = getattr(torch.fft, name)
        monkeypatch.setattr(torch.fft, name, lambda z, *a, _fn=fn, **k: (seen.append(z.dtype), _fn(z, *a, **k))[1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert set(seen) == {torch.float32, torch.complex64} and len(seen) == 2 * m.config.depth
    ref = m(x)
    assert torch.isfinite(y).all() and (y.float() - ref).norm() / ref.norm() < 0.05


def test_forward_has_no_graph_breaks():
    m = tiny(depth=1, interpolate_pos_embed=True, symmetric_modes=True, channel_mask=True, modes=2)
    explain = torch._dynamo.explain(m)(torch.randn(2, 20, 16, 4, 3), torch.ones(2, 3))
    assert explain.graph_break_count == 0 and explain.graph_count == 1


@pytest.mark.parametrize(
    "shape,mask,match",
    [
        ((2, 16, 4, 3), None, r"must be 5-D \(B, 16, 16, T_in=4, C=3\)"),
        ((2, 16, 16, 4, 2), None, r"\(B, 16, 16, T_in=4, C=3\)"),
        ((2, 16, 16, 5, 3), None, "T_in=4"),
        ((2, 32, 32, 4, 3), None, "interpolate_pos_embed"),
        ((2, 16, 16, 4, 3), (2, 2), r"channel_mask must have shape \(B=2, C=3\)"),
    ],
)
def test_bad_input_names_expected_shape(shape, mask, match):
    m = tiny()
    with pytest.raises(ValueError, match=match):
        m(torch.randn(*shape), channel_mask=None if mask is None else torch.ones(*mask))


def test_nan_input_rejected_at_the_data_boundary():
    from dpot.data.checks import check_finite

    x = torch.randn(1, 16, 16, 4, 3)
    x[0, 3, 3, 1, 0] = float("nan")
    check_finite({"x": x[:, :2], "mask": torch.ones(1, 3, dtype=torch.bool)}, "batch 1")  # finite part passes
    with pytest.raises(DpotError, match=r"batch 7: NaN or Inf values in 1.x \(1, 16, 16, 4, 3\)"):
        check_finite([torch.zeros(2), {"x": x}], "batch 7")
    assert torch.isnan(tiny()(x)).any()  # the forward itself does not validate (no host sync per call)
