"""Transfer a 2D DPOT to a 3D one: the reference's block transfer plus inflation of the other layers.

Rule (documented in docs/model.md):
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

from typing import Any

import torch
import torch.nn.functional as F

from dpot.models.dpot import DPOT


def _copy_overlap(dst: torch.Tensor, src: torch.Tensor) -> None:
    """Copy the leading overlapping block of `src` into `dst` (all axes)."""
    index = tuple(slice(0, min(a, b)) for a, b in zip(dst.shape, src.shape))
    dst[index] = src[index]


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
                f"2D->3D transfer keeps the trunk: {name} must stay {getattr(src, name)}, "
                f"got {getattr(cfg, name)}"
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
    pe = (
        F.interpolate(pe2, size=(lx, ly), mode="bilinear", align_corners=False)
        if pe2.shape[2:] != (lx, ly)
        else pe2
    )
    s3["pos_embed"].copy_(pe.unsqueeze(-1).expand(-1, -1, -1, -1, lz))

    # Output head: replicate the ConvTranspose kernel along z; copy the pointwise convs.
    if p == p3 and src.out_layer_dim == cfg.out_layer_dim:
        s3["out_layer.0.weight"].copy_(
            s2["out_layer.0.weight"].unsqueeze(-1).expand_as(s3["out_layer.0.weight"])
        )
        s3["out_layer.0.bias"].copy_(s2["out_layer.0.bias"])
        s3["out_layer.2.weight"].copy_(s2["out_layer.2.weight"].unsqueeze(-1))
        s3["out_layer.2.bias"].copy_(s2["out_layer.2.bias"])
        c2, c3 = src.out_channels, cfg.out_channels  # output channel index is t * C_out + c
        for t in range(min(src.out_timesteps, cfg.out_timesteps)):
            _copy_overlap(
                s3["out_layer.4.weight"][t * c3 : (t + 1) * c3],
                s2["out_layer.4.weight"][t * c2 : (t + 1) * c2].unsqueeze(-1),
            )
            _copy_overlap(
                s3["out_layer.4.bias"][t * c3 : (t + 1) * c3], s2["out_layer.4.bias"][t * c2 : (t + 1) * c2]
            )
    if "patch_embed.mask_proj" in s2 and "patch_embed.mask_proj" in s3:
        _copy_overlap(s3["patch_embed.mask_proj"], s2["patch_embed.mask_proj"])
    new.load_state_dict(s3)
    return new
