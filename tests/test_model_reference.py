"""Reference checkpoint import: files in the released key layout, outputs of the reference network, bad files.

`reference_state` builds a state dict from the key/shape table of the reference notes and `reference_forward`
re-implements the reference forward pass from the notes' step-by-step description (channels first, separate
real/imaginary einsums, zero-filled spectrum), independently of dpot's fused implementation.
"""

from __future__ import annotations

import argparse
import os

import pytest
import torch
import torch.nn.functional as F

from dpot.cli import main
from dpot.errors import DpotError
from dpot.models import DPOT, load_model
from dpot.models.reference import config_from_state_dict, import_reference_checkpoint

DIMS = dict(C=3, C_out=3, T=5, T_out=2, P=4, X=16, D=32, h=4, r=2, O=8, L=2, n_cls=6)


def reference_state(C, C_out, T, T_out, P, X, D, h, r, O, L, n_cls, seed=0):
    """Random tensors under the reference's 2D DPOTNet key names and shapes."""
    g = torch.Generator().manual_seed(seed)
    e1, b = C_out * P + 3, D // h

    def t(*shape, scale=0.2):
        return scale * torch.randn(*shape, generator=g)

    sd = {
        "patch_embed.proj.0.weight": t(e1, C + 3, P, P),
        "patch_embed.proj.0.bias": t(e1),
        "patch_embed.proj.2.weight": t(D, e1, 1, 1),
        "patch_embed.proj.2.bias": t(D),
        "pos_embed": t(1, D, X // P, X // P),
    }
    for i in range(L):
        sd.update(
            {
                f"blocks.{i}.norm1.weight": 1 + t(D),
                f"blocks.{i}.norm1.bias": t(D),
                f"blocks.{i}.filter.w1": t(2, h, b, b),
                f"blocks.{i}.filter.b1": t(2, h, b),
                f"blocks.{i}.filter.w2": t(2, h, b, b),
                f"blocks.{i}.filter.b2": t(2, h, b),
                f"blocks.{i}.norm2.weight": 1 + t(D),
                f"blocks.{i}.norm2.bias": t(D),
                f"blocks.{i}.mlp.0.weight": t(r * D, D, 1, 1),
                f"blocks.{i}.mlp.0.bias": t(r * D),
                f"blocks.{i}.mlp.2.weight": t(D, r * D, 1, 1),
                f"blocks.{i}.mlp.2.bias": t(D),
            }
        )
    sd.update(
        {
            "cls_head.0.weight": t(D, D),
            "cls_head.0.bias": t(D),
            "cls_head.2.weight": t(D, D),
            "cls_head.2.bias": t(D),
            "cls_head.4.weight": t(n_cls, D),
            "cls_head.4.bias": t(n_cls),
            "time_agg_layer.w": t(T, D, D, scale=0.05),
            "time_agg_layer.gamma": 2 ** torch.linspace(-3, 3, D)[None],
            "out_layer.0.weight": t(D, O, P, P),
            "out_layer.0.bias": t(O),
            "out_layer.2.weight": t(O, O, 1, 1),
            "out_layer.2.bias": t(O),
            "out_layer.4.weight": t(C_out * T_out, O, 1, 1),
            "out_layer.4.bias": t(C_out * T_out),
        }
    )
    return sd


def reference_forward(sd, x, P, h, T_out, C_out):
    """The reference 2D forward pass, step by step as in the notes (modes keep everything here)."""
    B, X, Y, T, C = x.shape
    gx, gy, gt = torch.linspace(0, 1, X), torch.linspace(0, 1, Y), torch.linspace(0, 1, T)
    grid = torch.stack(torch.meshgrid(gx, gy, gt, indexing="ij"), dim=-1).expand(B, -1, -1, -1, -1)
    z = torch.cat([x, grid], dim=-1).permute(0, 3, 4, 1, 2).reshape(B * T, C + 3, X, Y)
    z = F.conv2d(z, sd["patch_embed.proj.0.weight"], sd["patch_embed.proj.0.bias"], stride=P)
    z = F.conv2d(F.gelu(z), sd["patch_embed.proj.2.weight"], sd["patch_embed.proj.2.bias"])
    z = z + sd["pos_embed"]
    D, H, W = z.shape[1:]
    z = z.reshape(B, T, D, H, W).permute(0, 3, 4, 1, 2)  # B, H, W, T, D
    basis = torch.cos(torch.linspace(0, 1, T)[:, None] @ sd["time_agg_layer.gamma"])  # T, D
    z = torch.einsum("tij,bxyti->bxyj", sd["time_agg_layer.w"], z * basis).permute(0, 3, 1, 2)
    i = 0
    while f"blocks.{i}.norm1.weight" in sd:
        p = f"blocks.{i}."
        n1 = F.group_norm(z, 8, sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-5)
        spec = torch.fft.rfft2(n1.permute(0, 2, 3, 1), dim=(1, 2), norm="ortho").reshape(B, H, W // 2 + 1, h, -1)
        w1, b1, w2, b2 = (sd[p + "filter." + k] for k in ("w1", "b1", "w2", "b2"))

        def mm(a, w):
            return torch.einsum("...bi,bio->...bo", a, w)

        o1r = F.gelu(mm(spec.real, w1[0]) - mm(spec.imag, w1[1]) + b1[0])
        o1i = F.gelu(mm(spec.imag, w1[0]) + mm(spec.real, w1[1]) + b1[1])
        o2 = torch.complex(mm(o1r, w2[0]) - mm(o1i, w2[1]) + b2[0], mm(o1i, w2[0]) + mm(o1r, w2[1]) + b2[1])
        filt = torch.fft.irfft2(o2.reshape(B, H, W // 2 + 1, D), s=(H, W), dim=(1, 2), norm="ortho")
        f = filt.permute(0, 3, 1, 2) + n1
        m = F.group_norm(f, 8, sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-5)
        m = F.conv2d(
            F.gelu(F.conv2d(m, sd[p + "mlp.0.weight"], sd[p + "mlp.0.bias"])),
            sd[p + "mlp.2.weight"],
            sd[p + "mlp.2.bias"],
        )
        z = z + m
        i += 1
    c = z.mean(dim=(2, 3))
    c = F.linear(
        F.gelu(F.linear(c, sd["cls_head.0.weight"], sd["cls_head.0.bias"])),
        sd["cls_head.2.weight"],
        sd["cls_head.2.bias"],
    )
    logits = F.linear(F.gelu(c), sd["cls_head.4.weight"], sd["cls_head.4.bias"])
    o = F.gelu(F.conv_transpose2d(z, sd["out_layer.0.weight"], sd["out_layer.0.bias"], stride=P))
    o = F.gelu(F.conv2d(o, sd["out_layer.2.weight"], sd["out_layer.2.bias"]))
    o = F.conv2d(o, sd["out_layer.4.weight"], sd["out_layer.4.bias"]).permute(0, 2, 3, 1)
    return o.reshape(B, X, Y, T_out, C_out), logits


def save_reference_file(path, sd, prefix=""):
    """A file like the released ones: {'args': Namespace, 'model': state dict, 'optimizer': Adam state}."""
    params = [torch.nn.Parameter(v.clone()) for v in sd.values()]
    opt = torch.optim.Adam(params)
    sum(p.sum() for p in params).backward()
    opt.step()
    torch.save(
        {
            "args": argparse.Namespace(lr=1e-3, train_paths=["ns2d"], n_blocks=4),
            "model": {prefix + k: v for k, v in sd.items()},
            "optimizer": opt.state_dict(),
        },
        path,
    )


def test_ti_shaped_layout_has_67_tensors_and_matches_model():
    dims = dict(C=4, C_out=4, T=10, T_out=1, P=8, X=128, D=512, h=4, r=1, O=32, L=4, n_cls=12)
    with torch.device("meta"):
        keys = {k: tuple(v.shape) for k, v in reference_state(**dims).items()}
        model = {k: tuple(v.shape) for k, v in DPOT.from_preset("Ti").state_dict().items()}
    assert len(keys) == 67 and keys == model


@pytest.mark.parametrize("prefix", ["", "module."])
def test_imported_checkpoint_reproduces_reference_network(tmp_path, prefix):
    sd = reference_state(**DIMS)
    save_reference_file(tmp_path / "model_X.pth", sd, prefix)
    out = import_reference_checkpoint(tmp_path / "model_X.pth", tmp_path / "ckpt")
    model = load_model(out)
    cfg = model.config
    assert (
        cfg.in_channels,
        cfg.out_channels,
        cfg.in_timesteps,
        cfg.out_timesteps,
        cfg.embed_dim,
        cfg.depth,
        cfg.n_blocks,
        cfg.mlp_hidden,
        cfg.out_layer_dim,
        cfg.n_cls,
        cfg.patch_size,
        cfg.img_size,
    ) == (3, 3, 5, 2, 32, 2, 4, 64, 8, 6, 4, (16, 16))
    x = torch.randn(2, 16, 16, 5, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        pred, logits = model(x, return_logits=True)
        ref_pred, ref_logits = reference_forward(sd, x, P=4, h=4, T_out=2, C_out=3)
    assert ((pred - ref_pred).norm() / ref_pred.norm()) < 1e-5
    assert torch.allclose(pred, ref_pred, atol=1e-5, rtol=1e-5)
    assert torch.allclose(logits, ref_logits, atol=1e-5, rtol=1e-5)


def test_cli_import_and_overwrite_guard(tmp_path, capsys):
    save_reference_file(tmp_path / "m.pth", reference_state(**DIMS))
    assert main(["import-checkpoint", str(tmp_path / "m.pth"), "--out", str(tmp_path / "c")]) == 0
    assert "parameters:" in capsys.readouterr().out
    assert main(["import-checkpoint", str(tmp_path / "m.pth"), "--out", str(tmp_path / "c")]) == 2
    assert "--overwrite" in capsys.readouterr().err


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def _write(tmp_path, name, obj):
    path = tmp_path / name
    if isinstance(obj, bytes):
        path.write_bytes(obj)
    else:
        torch.save(obj, path)
    return path


@pytest.mark.parametrize(
    "obj,match",
    [
        (os.urandom(256), "not a loadable DPOT reference checkpoint"),
        (torch.randn(3), "found a Tensor"),
        ({"model": {"pos_embed": torch.zeros(1, 8, 2, 2)}}, "missing tensor"),
        ({"model": {}, "evil": _Payload()}, "(?i)unsupported global"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, obj, match):
    path = _write(tmp_path, "bad.pth", obj)
    with pytest.raises(DpotError, match=match) as info:
        import_reference_checkpoint(path, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_extra_or_misshapen_tensors_rejected(tmp_path):
    sd = reference_state(**DIMS)
    sd["blocks.0.filter.w2"] = torch.zeros(2, 4, 8, 9)
    with pytest.raises(DpotError, match="wrong shape"):
        import_reference_checkpoint(_write(tmp_path, "a.pth", {"model": sd}), tmp_path / "o")
    sd = reference_state(**DIMS)
    sd["scale_feats_mu.weight"] = torch.zeros(32, 6)
    with pytest.raises(DpotError, match="normalize=True"):
        config_from_state_dict(sd)
