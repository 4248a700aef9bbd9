"""Weight surgery: copy a trained network's tensors into a differently shaped one (fine-tuning's adaptation).

`transfer_weights(src, dst)` copies every tensor that fits, by these rules (each decision logged):
- same shape: copied; a 1x1 kernel that gained a unit axis (2D -> 3D): reshaped;
- `pos_embed` on another latent grid: interpolated (linear/bilinear/trilinear); another dimension: new;
- temporal aggregation for another T_in: the `(T, D, D)` weights resampled linearly along T and rescaled by
  T_old/T_new (T_in = 1 takes their sum), so a slowly varying input keeps its response;
- channels: `widen` grows the patch embedding and output head, keeping the pre-trained weights of the existing
  channels (new input channels start at zero, new output channels random); `reinit` leaves the patch
  embedding, output head and class head new (the reference's `load_components=['blocks','pos','time_agg']`).

`inflate_2d_to_3d(model)` turns a 2D DPOT into a 3D one: the reference's block transfer plus inflation of the
other layers. Rule (documented in docs/model.md):
- Fourier blocks: spectral weights are dimension-free and copy unchanged; GroupNorm copies; the 1x1 MLP
  convs get a trailing unit axis (the reference's whole transfer, `load_3d_components_from_2d`).
- Temporal aggregator and class head copy when their shapes agree.
- Patch embedding (the reference re-initialises it): data-channel kernels are inflated along z as `w / P`
  (a z-constant input gives the 2D response); coordinate kernels x, y, t map to x, y, t, the new z kernel
  is 0. Extra hidden units (E1 grows by one at the faithful width) get default init and a zero column in
  the 1x1 conv, so they start silent. Channels beyond the 2D model's keep their default init.
- Positional embedding: resized (bilinear) to the 3D model's (x, y) latent grid, replicated along z.
- Output head: the ConvTranspose kernel is replicated along z (each voxel gets its pixel's value); the
  1x1 convs copy; output channels beyond the 2D model's keep their default init.
So for inputs constant along z, the embedding and the output head of the 3D model reproduce the 2D
model's exactly (tested); only the Fourier blocks see a genuinely 3D spectrum.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dpot.models.dpot import DPOT


def _resample_time(w: torch.Tensor, t_new: int) -> torch.Tensor:
    """Temporal-aggregation weights `(T, D, D)` -> `(t_new, D, D)` (linear in T, rescaled by T/t_new)."""
    t_old = w.shape[0]
    if t_new == 1:
        return w.sum(0, keepdim=True)
    flat = w.reshape(t_old, -1).t().unsqueeze(0)  # (1, D*D, T)
    out = F.interpolate(flat, size=t_new, mode="linear", align_corners=True)[0].t()
    return out.reshape(t_new, *w.shape[1:]) * (t_old / t_new)


def _overlap(dst: torch.Tensor, src: torch.Tensor) -> None:
    """Copy the overlapping corner of `src` into `dst` (in place)."""
    sl = tuple(slice(0, min(a, b)) for a, b in zip(dst.shape, src.shape))
    dst[sl] = src[sl]


def _widen_dpot(name: str, dst: torch.Tensor, src: torch.Tensor, src_cfg, dst_cfg) -> bool:
    """Channel widening of DPOT's patch embedding and output head; True if `name` was handled."""
    if name == "patch_embed.proj.0.weight":  # (E1, C + nd + 1, *P): data channels, then coordinates
        c_old, c_new, e = src_cfg.in_channels, dst_cfg.in_channels, min(dst.shape[0], src.shape[0])
        dst[:e].zero_()
        dst[:e, c_new:] = src[:e, c_old:]
        dst[:e, : min(c_old, c_new)] = src[:e, : min(c_old, c_new)]
        return True
    if name == "patch_embed.proj.2.weight":  # (D, E1, 1...): new hidden units start silent
        dst.zero_()
        _overlap(dst, src)
        return True
    if name in ("patch_embed.proj.0.bias", "patch_embed.mask_proj"):
        _overlap(dst, src)
        return True
    if name in ("out_layer.4.weight", "out_layer.4.bias"):  # rows ordered (T_out, C_out)
        t = dst_cfg.out_timesteps
        d = dst.view(t, dst_cfg.out_channels, *dst.shape[1:])
        s = src.view(src_cfg.out_timesteps, src_cfg.out_channels, *src.shape[1:])
        _overlap(d, s)
        return True
    return False


def transfer_weights(
    src: nn.Module, dst: nn.Module, channels: str = "auto", time_agg: str = "interpolate"
) -> list[str]:
    """Copy what fits from `src` into `dst` (in place) by the module docstring's rules; `channels` is `auto`,
    `widen` or `reinit`, `time_agg` is `interpolate` or `reinit`. Returns one line per decision."""
    s_state, d_state = src.state_dict(), dst.state_dict()
    s_cfg, d_cfg = src.config, dst.config
    fresh_parts = ("patch_embed.", "out_layer.", "cls_head.") if channels == "reinit" else ()
    log: list[str] = []
    copied: list[str] = []
    new: list[str] = []
    with torch.no_grad():
        for name, d in d_state.items():
            s = s_state.get(name)
            if s is None or name.startswith(fresh_parts):
                new.append(name)
            elif s.shape == d.shape:
                d.copy_(s)
                copied.append(name)
            elif name == "pos_embed" and s.dim() == d.dim():
                mode = ("linear", "bilinear", "trilinear")[d.dim() - 3]
                d.copy_(F.interpolate(s, size=tuple(d.shape[2:]), mode=mode, align_corners=False))
                log.append(f"pos_embed: interpolated {list(s.shape[2:])} -> {list(d.shape[2:])}")
            elif name == "time_agg_layer.w" and s.shape[1:] == d.shape[1:]:
                if time_agg == "interpolate":
                    d.copy_(_resample_time(s, d.shape[0]))
                    log.append(f"time aggregation: resampled T_in {s.shape[0]} -> {d.shape[0]}")
                else:
                    new.append(name)
            elif d.numel() == s.numel() and d.shape[: s.dim()] == s.shape and all(k == 1 for k in d.shape[s.dim() :]):
                d.copy_(s.reshape(d.shape))
                copied.append(name)
            elif (
                channels == "widen"
                and getattr(dst, "architecture", "") == "dpot"
                and _widen_dpot(name, d, s, s_cfg, d_cfg)
            ):
                log.append(f"{name}: widened {list(s.shape)} -> {list(d.shape)}")
            else:
                new.append(name)
    dst.load_state_dict(d_state)
    n_copied = sum(d_state[n].numel() for n in copied)
    total = sum(v.numel() for v in d_state.values())
    groups = sorted({re.sub(r"\.\d+.*$|\.(weight|bias|w|gamma)$", "", n) for n in new})
    log.insert(0, f"transferred {len(copied)} tensors as is ({n_copied:,} of {total:,} values)")
    if new:
        log.append(f"new (random init): {', '.join(groups)}")
    return log


@torch.no_grad()
def inflate_2d_to_3d(model: DPOT, **overrides: Any) -> DPOT:
    """A new 3D DPOT (config = the 2D one with ndim=3 and `overrides`) initialised from 2D `model`."""
    src = model.config
    if src.ndim != 2:
        raise ValueError(f"inflate_2d_to_3d needs a 2D model, got ndim={src.ndim}")
    cfg = src.replace(ndim=3, **overrides)
    for name in ("embed_dim", "depth", "n_blocks", "mlp_hidden"):
        if getattr(cfg, name) != getattr(src, name):
            raise ValueError(
                f"2D->3D transfer keeps the trunk: {name} must stay {getattr(src, name)}, got {getattr(cfg, name)}"
            )
    new = DPOT(cfg).to(model.pos_embed.device)
    s2, s3 = model.state_dict(), new.state_dict()
    p, p3 = src.patch_size, cfg.patch_size

    # Fourier blocks (reference rule) and the layers whose shapes do not depend on the dimension.
    for key, value in s2.items():
        if key.startswith("blocks."):
            s3[key].copy_(value.reshape(s3[key].shape))
        elif key.startswith(("time_agg_layer.", "cls_head.")) and s3[key].shape == value.shape:
            s3[key].copy_(value)

    # Patch embedding: inflate data kernels along z (/P), map coordinates (x, y, t) -> (x, y, z=0, t).
    w2 = s2["patch_embed.proj.0.weight"]  # [E1, C + 3, P, P]
    w3 = s3["patch_embed.proj.0.weight"]  # [E1', C' + 4, P', P', P']
    if p == p3:
        c2, c3 = src.in_channels, cfg.in_channels
        e = min(w2.shape[0], w3.shape[0])
        inflated = w2.unsqueeze(-1).expand(*w2.shape, p3) / p3
        c = min(c2, c3)
        w3[:e, :c] = inflated[:e, :c]
        w3[:e, c3 : c3 + 2] = inflated[:e, c2 : c2 + 2]  # x, y
        w3[:e, c3 + 2] = 0.0  # z starts neutral
        w3[:e, c3 + 3] = inflated[:e, c2 + 2]  # t
        s3["patch_embed.proj.0.bias"][:e] = s2["patch_embed.proj.0.bias"][:e]
        v2, v3 = s2["patch_embed.proj.2.weight"], s3["patch_embed.proj.2.weight"]  # [D, E1, 1, 1(, 1)]
        v3.zero_()
        v3[:, :e] = v2[:, :e].unsqueeze(-1)
        s3["patch_embed.proj.2.bias"].copy_(s2["patch_embed.proj.2.bias"])

    # Positional embedding: resize in (x, y), replicate along z.
    pe2 = s2["pos_embed"]
    lx, ly, lz = cfg.latent_size
    pe = F.interpolate(pe2, size=(lx, ly), mode="bilinear", align_corners=False) if pe2.shape[2:] != (lx, ly) else pe2
    s3["pos_embed"].copy_(pe.unsqueeze(-1).expand(-1, -1, -1, -1, lz))

    # Output head: replicate the ConvTranspose kernel along z; copy the pointwise convs.
    if p == p3 and src.out_layer_dim == cfg.out_layer_dim:
        s3["out_layer.0.weight"].copy_(s2["out_layer.0.weight"].unsqueeze(-1).expand_as(s3["out_layer.0.weight"]))
        s3["out_layer.0.bias"].copy_(s2["out_layer.0.bias"])
        s3["out_layer.2.weight"].copy_(s2["out_layer.2.weight"].unsqueeze(-1))
        s3["out_layer.2.bias"].copy_(s2["out_layer.2.bias"])
        c2, c3 = src.out_channels, cfg.out_channels  # output channel index is t * C_out + c
        for t in range(min(src.out_timesteps, cfg.out_timesteps)):
            _overlap(
                s3["out_layer.4.weight"][t * c3 : (t + 1) * c3],
                s2["out_layer.4.weight"][t * c2 : (t + 1) * c2].unsqueeze(-1),
            )
            _overlap(s3["out_layer.4.bias"][t * c3 : (t + 1) * c3], s2["out_layer.4.bias"][t * c2 : (t + 1) * c2])
    if "patch_embed.mask_proj" in s2 and "patch_embed.mask_proj" in s3:
        _overlap(s3["patch_embed.mask_proj"], s2["patch_embed.mask_proj"])
    new.load_state_dict(s3)
    return new
