"""bf16 autocast error budget of the DPOT network (per component and end to end), and no host syncs in its
forward/backward. The phase of the temporal basis reaches 1024 rad: computed in bf16 it is off by radians,
which the 5% end-to-end check of test_model_core cannot see; the budgets here can."""

from __future__ import annotations

import pytest
import torch

from dpot.models import DPOT, DPOTConfig


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def _bf16(fn, *args):
    with torch.no_grad():
        ref = fn(*args)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = fn(*args)
    return out, ref


@pytest.fixture(scope="module")
def ti():
    """The real Ti preset (128^2, 10 input steps) and a fixed input."""
    torch.manual_seed(0)
    model = DPOT.from_preset("Ti").eval()
    x = torch.randn(1, 128, 128, 10, 4, generator=torch.Generator().manual_seed(1))
    return model, x


def test_ti_forward_under_bf16_autocast_within_half_a_percent(ti, one_thread):
    model, x = ti
    out, ref = _bf16(model, x)
    assert out.dtype == torch.bfloat16
    assert _rel(out, ref) < 0.005  # 0.38% measured; 3.1% with the basis phase computed in bf16


def test_bf16_error_budget_per_component(ti, one_thread):
    model, x = ti
    agg = model.time_agg_layer
    basis, ref = _bf16(agg.basis)
    assert basis.dtype == torch.float32 and (basis - ref).abs().max() < 1e-6  # was 1.98 (144 of 5120 > 0.5)
    with torch.no_grad():
        z = model.embed(x)
    budgets = {  # relative L2 vs fp32; bf16 matmuls alone give 0.2-0.4%
        "embed (patch conv, coordinates, pos_embed, time aggregation)": (model.embed, x, 0.006),
        "time aggregation layer": (agg, torch.randn(2, 10, 512), 0.006),
        "group norm": (model.blocks[0].norm1, z, 1e-6),
        "spectral filter (FFTs in fp32)": (model.blocks[0].filter, model.blocks[0].norm1(z), 0.006),
        "block": (model.blocks[0], z, 0.008),
        "decode": (model.decode, z, 0.006),
    }
    for name, (fn, arg, tol) in budgets.items():
        out, ref = _bf16(fn, arg)
        assert torch.isfinite(out).all() and _rel(out, ref) < tol, name


def test_off_grid_pos_embed_and_coordinates_stay_fp32():
    torch.manual_seed(0)
    m = DPOT(
        DPOTConfig(
            img_size=16,
            patch_size=4,
            in_channels=2,
            out_channels=2,
            in_timesteps=3,
            embed_dim=16,
            depth=1,
            n_blocks=2,
            out_layer_dim=8,
            interpolate_pos_embed=True,
        )
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pe = m._pos_embed((5, 6), torch.float32)
        coords = m._coords((20, 24), torch.zeros(1))
    assert pe.dtype == coords.dtype == torch.float32
    assert torch.equal(pe, m._pos_embed((5, 6), torch.float32))


@pytest.mark.parametrize("space", [(16, 16), (20, 24)], ids=["native grid", "off grid"])
def test_forward_and_backward_read_nothing_back_to_the_host(space, host_reads):
    torch.manual_seed(0)
    m = DPOT(
        DPOTConfig(
            img_size=16,
            patch_size=4,
            in_channels=2,
            out_channels=2,
            in_timesteps=3,
            embed_dim=16,
            depth=2,
            n_blocks=2,
            out_layer_dim=8,
            channel_mask=True,
            interpolate_pos_embed=True,
        )
    )
    x = torch.randn(2, *space, 3, 2)
    mask = torch.ones(2, 2)
    for step in range(2):  # the second call uses the cached off-grid coordinates
        host_reads.reset()
        pred, logits = m(x, channel_mask=mask, return_logits=True)
        (pred.square().mean() + logits.square().mean()).backward()
        assert host_reads.calls == {}, f"call {step}: {host_reads.calls}"
    assert len(m._coord_cache) == (space != (16, 16))


def test_loss_and_metrics_reduce_in_fp32_under_autocast():
    from dpot.evaluation.metrics import nrmse, relative_l2_loss

    g = torch.Generator().manual_seed(0)
    y = torch.randn(2, 32, 32, 3, 2, generator=g)
    pred = (y + 1e-3 * torch.randn(2, 32, 32, 3, 2, generator=g)).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, err = relative_l2_loss(pred, y), nrmse(pred, y)
    assert loss.dtype == err.dtype == torch.float32
    assert torch.allclose(loss, relative_l2_loss(pred.float(), y), rtol=1e-6)
    assert torch.allclose(err, nrmse(pred.float(), y), rtol=1e-6)
