"""The DPOT network (Hao et al., ICML 2024): the reference `DPOTNet` layer by layer, for 1D, 2D and 3D grids.

Forward pass, channels last throughout (`x`: `(B, *space, T_in, C_in)`):
coordinates -> patch embedding (P-strided conv, GELU, 1x1 conv) -> + pos_embed -> cosine temporal aggregation
-> `depth` Fourier-attention blocks -> output head (ConvTranspose, GELU, 1x1, GELU, 1x1) and class head.

Exact algebraic rewrites (same function, less work): the conv over the appended coordinate channels is a
batch-independent term computed once per call; and because the 1x1 conv, the positional embedding and the
temporal aggregation are all linear, they are folded into ONE `(T*E1, D)` matmul after the patch GELU
instead of a `(T*D, D)` contraction on every token (15x fewer flops there for Ti).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from dpot.errors import DpotError
from dpot.models.checkpoint import PretrainedModel
from dpot.models.config import DPOTConfig
from dpot.models.layers import (
    Block,
    ConvWeight,
    TimeAggregator,
    coordinate_field,
    fp32,
    patchify,
    unpatchify,
)


class PatchEmbed(nn.Module):
    """Per-frame patch embedding: Conv(k=P, s=P) -> GELU -> Conv1x1 (keys `proj.0`, `proj.2` as reference);
    with the `channel_mask` option also `mask_proj`, a learned embedding of which channels are real."""

    def __init__(self, cfg: DPOTConfig):
        super().__init__()
        e1, nd = cfg.patch_hidden_dim, cfg.ndim
        self.proj = nn.Sequential(
            ConvWeight(cfg.in_channels + nd + 1, e1, cfg.patch_size, nd),
            nn.GELU(),
            ConvWeight(e1, cfg.embed_dim, 1, nd),
        )
        if cfg.channel_mask:
            self.mask_proj = nn.Parameter(torch.zeros(cfg.in_channels, e1))


class DPOT(PretrainedModel):
    """DPOT network. `model(x)` maps `(B, *space, T_in, C_in)` to `(B, *space, T_out, C_out)`.

    Checkpoints: `save_pretrained(dir)`, `DPOT.from_pretrained(dir, **overrides)` (from `PretrainedModel`)."""

    model_type = "dpot"
    config_class = DPOTConfig

    def __init__(self, config: DPOTConfig):
        super().__init__()
        self.config = cfg = config
        d, nd = cfg.embed_dim, cfg.ndim
        self.patch_embed = PatchEmbed(cfg)
        self.pos_embed = nn.Parameter(torch.empty(1, d, *cfg.latent_size))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(
            Block(d, cfg.n_blocks, cfg.mlp_hidden, nd, cfg.modes, cfg.symmetric_modes) for _ in range(cfg.depth)
        )
        self.cls_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d), nn.GELU(), nn.Linear(d, cfg.n_cls))
        self.time_agg_layer = TimeAggregator(d, cfg.in_timesteps, cfg.time_agg)
        o = cfg.out_layer_dim
        self.out_layer = nn.Sequential(
            ConvWeight(d, o, cfg.patch_size, nd, transposed=True),
            nn.GELU(),
            ConvWeight(o, o, 1, nd),
            nn.GELU(),
            ConvWeight(o, cfg.out_channels * cfg.out_timesteps, 1, nd),
        )
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """(Re)build the non-persistent buffers, e.g. after loading weights into a model built on `meta`."""
        device = self.pos_embed.device if not self.pos_embed.is_meta else None
        # Cached coordinate channels of the native grid, already cut into patches: (*latent, T, P^d*(nd+1)).
        coords = self._coord_patches(self.config.img_size)
        self.register_buffer("coord_patches", coords.to(device) if device else coords, persistent=False)
        self._coord_cache: dict[tuple, torch.Tensor] = {}  # off-grid coordinate patches, see `_coords`

    # -- presets
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> DPOT:
        """Build a preset size (`Ti`, `S`, `M`, `L`, `H`, `demo`) with optional config overrides."""
        from dpot.models.presets import preset_config

        return cls(preset_config(name, **overrides))

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu", **overrides: Any
    ) -> DPOT:
        """A checkpoint folder (see `PretrainedModel.from_pretrained`), or a released reference checkpoint by
        name, `hf://hzk17/DPOT/model_Ti.pth[@REVISION]` (needs `dpot[hub]`)."""
        from dpot.models.hub import is_hub_uri, model_from_hub

        if is_hub_uri(directory):
            if overrides:
                raise DpotError(
                    f"{directory}: load-time overrides need a local checkpoint; run "
                    f"`dpot import-checkpoint {directory} --out DIR`, then from_pretrained(DIR, ...)"
                )
            return model_from_hub(str(directory), map_location=map_location)
        return super().from_pretrained(directory, map_location, **overrides)

    def num_parameters(self) -> int:
        """Number of parameters (works on the meta device)."""
        return sum(p.numel() for p in self.parameters())

    # -- forward
    def _coord_patches(
        self, space: tuple[int, ...], device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        cfg = self.config
        coords = coordinate_field(tuple(space), cfg.in_timesteps, device, dtype).unsqueeze(0)
        return patchify(coords, cfg.patch_size, cfg.ndim)[0]

    def _coords(self, space: tuple[int, ...], x: torch.Tensor) -> torch.Tensor:
        """Coordinate patches of `space` on x's device: the native grid's buffer, else built in fp32 on the
        device once per (grid, device) and kept in a small cache (no per-call host copy)."""
        if space == self.config.img_size:
            return self.coord_patches
        if torch.compiler.is_compiling():  # traced into the graph: built by device kernels, no cache needed
            return self._coord_patches(space, x.device, torch.float32)
        key = (space, x.device)
        coords = self._coord_cache.get(key)
        if coords is None:
            if len(self._coord_cache) >= 8:
                self._coord_cache.pop(next(iter(self._coord_cache)))
            coords = self._coord_cache[key] = self._coord_patches(space, x.device, torch.float32)
        return coords

    def expected_shape(self, space: tuple[int, ...] | None = None) -> str:
        """Human-readable input shape, for error messages."""
        cfg = self.config
        sp = ", ".join(str(s) for s in (space or cfg.img_size))
        return f"(B, {sp}, T_in={cfg.in_timesteps}, C={cfg.in_channels})"

    def check_input(self, x: torch.Tensor, channel_mask: torch.Tensor | None = None) -> None:
        """Raise ValueError naming the expected shape if `x` (or `channel_mask`) does not fit this model."""
        cfg = self.config
        if x.dim() != cfg.ndim + 3:
            raise ValueError(f"DPOT input must be {cfg.ndim + 3}-D {self.expected_shape()}, got shape {tuple(x.shape)}")
        space, t, c = tuple(x.shape[1 : 1 + cfg.ndim]), x.shape[-2], x.shape[-1]
        if cfg.interpolate_pos_embed:
            if any(s % cfg.patch_size or s == 0 for s in space) or t != cfg.in_timesteps or c != cfg.in_channels:
                raise ValueError(
                    f"DPOT input must have shape {self.expected_shape()} with every spatial size "
                    f"divisible by patch_size={cfg.patch_size}, got {tuple(x.shape)}"
                )
        elif space != cfg.img_size or t != cfg.in_timesteps or c != cfg.in_channels:
            raise ValueError(
                f"DPOT input must have shape {self.expected_shape()}, got {tuple(x.shape)} "
                "(other grids need interpolate_pos_embed=True)"
            )
        if not x.is_floating_point():
            raise ValueError(f"DPOT input must be a floating-point tensor, got {x.dtype}")
        if channel_mask is not None and tuple(channel_mask.shape) != (x.shape[0], cfg.in_channels):
            raise ValueError(
                f"channel_mask must have shape (B={x.shape[0]}, C={cfg.in_channels}), got {tuple(channel_mask.shape)}"
            )

    def _pos_embed(self, grid: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """Positional embedding on `grid` as `(N, D)` in `dtype`; linearly interpolated when the grid is not
        native."""
        pe = self.pos_embed.to(dtype)
        if tuple(grid) != tuple(pe.shape[2:]):
            mode = ("linear", "bilinear", "trilinear")[self.config.ndim - 1]
            pe = F.interpolate(pe, size=tuple(grid), mode=mode, align_corners=False)
        return pe.flatten(2)[0].transpose(0, 1)

    def embed(self, x: torch.Tensor, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Steps 1-6 of the reference (coordinates, patch embedding, pos_embed, temporal aggregation):
        `(B, *space, T_in, C_in)` -> latent `(B, *grid, D)`."""
        cfg = self.config
        nd, p = cfg.ndim, cfg.patch_size
        b, space, t = x.shape[0], tuple(x.shape[1 : 1 + nd]), x.shape[-2]
        grid = tuple(s // p for s in space)
        x = x.to(self.pos_embed.dtype)
        if channel_mask is not None:
            keep = channel_mask.to(torch.bool).view(b, *([1] * (nd + 1)), cfg.in_channels)
            x = torch.where(keep, x, 0.0 if cfg.channel_mask else 1.0)  # reference pads with 1.0
        conv0, conv1 = self.patch_embed.proj[0], self.patch_embed.proj[2]
        wd = torch.promote_types(self.pos_embed.dtype, torch.float32)  # fp32 (fp64 for a double model)
        with fp32(x.device):  # the small batch-independent terms and the weight folding: never in bf16
            w0 = conv0.matrix().to(wd)  # (P^d * (C + nd + 1), E1), rows ordered (patch pixel, channel)
            e1 = w0.shape[1]
            w0 = w0.reshape(p**nd, cfg.in_channels + nd + 1, e1)
            w_data = w0[:, : cfg.in_channels].reshape(-1, e1)
            w_coord = w0[:, cfg.in_channels :].reshape(-1, e1)
            coord_term = self._coords(space, x).to(wd) @ w_coord + conv0.bias.to(wd)  # (*grid, T, E1)
            # Fold 1x1 conv, pos_embed and temporal aggregation (all linear) into one matmul.
            # Scaling the small (E1, D) matrix by the cosine basis avoids a (T, D, D) temporary.
            basis, w_time = self.time_agg_layer.basis().to(wd), self.time_agg_layer.w.to(wd)  # (T,D), (T,D,D)
            scaled = conv1.weight.flatten(1).t().unsqueeze(0).to(wd) * basis.unsqueeze(1)  # (T, E1, D)
            w_fused = torch.bmm(scaled, w_time).reshape(t * e1, -1)  # (T*E1, D)
            pe = self._pos_embed(grid, wd) + conv1.bias.to(wd)
            # sum_t basis[t, i] w_time[t, i, j] as one batched matmul over i (an einsum made 2*D tiny copies)
            agg = torch.bmm(basis.t().contiguous().unsqueeze(1), w_time.transpose(0, 1)).squeeze(1)  # (D, D)
            const = pe @ agg  # (N, D)
        hidden = patchify(x, p, nd) @ w_data.to(x.dtype) + coord_term.to(x.dtype)  # (B, *grid, T, E1)
        if cfg.channel_mask:
            mask = (
                torch.ones(b, cfg.in_channels, device=x.device, dtype=x.dtype)
                if channel_mask is None
                else channel_mask.to(x.dtype)
            )
            hidden = hidden + (mask @ self.patch_embed.mask_proj).view(b, *([1] * (nd + 1)), e1)
        hidden = F.gelu(hidden)
        w_fused, const = w_fused.to(x.dtype), const.to(x.dtype)
        z = hidden.reshape(b, -1, t * e1) @ w_fused + const
        return z.reshape(b, *grid, -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Output head: latent `(B, *grid, D)` -> `(B, *grid*P, T_out, C_out)`."""
        cfg = self.config
        up, mid, last = self.out_layer[0], self.out_layer[2], self.out_layer[4]
        k = cfg.patch_size**cfg.ndim
        # ConvTranspose with kernel == stride: one matmul to (B, *grid, P^d * O), bias fused into the GEMM.
        h = torch.addmm(up.bias.repeat(k), z.reshape(-1, z.shape[-1]), up.matrix())
        h = F.gelu(h.reshape(*z.shape[:-1], k, -1))
        h = last(F.gelu(mid(h)))
        return unpatchify(h, cfg.patch_size, cfg.ndim, cfg.out_timesteps, cfg.out_channels)

    def forward(self, x: torch.Tensor, channel_mask: torch.Tensor | None = None, return_logits: bool = False):
        """`x` `(B, *space, T_in, C_in)` -> `(B, *space, T_out, C_out)`; with `return_logits` also the
        class logits `(B, n_cls)`. `channel_mask` `(B, C_in)`: 1 = real channel, 0 = padding."""
        self.check_input(x, channel_mask)
        z = self.embed(x, channel_mask)
        for blk in self.blocks:
            if self.config.grad_checkpoint and self.training and torch.is_grad_enabled():
                z = checkpoint(blk, z, use_reentrant=False)
            else:
                z = blk(z)
        pred = self.decode(z)
        if not return_logits:
            return pred
        return pred, self.cls_head(z.mean(dim=tuple(range(1, 1 + self.config.ndim))))

    def extra_repr(self) -> str:
        cfg = self.config
        return (
            f"ndim={cfg.ndim}, img_size={list(cfg.img_size)}, patch={cfg.patch_size}, D={cfg.embed_dim}, "
            f"depth={cfg.depth}, heads={cfg.n_blocks}, mlp={cfg.mlp_hidden}, params={self.num_parameters():,}"
        )


def describe(config: DPOTConfig, n_params: int | None = None) -> str:
    """Multi-line architecture summary of a DPOT config (used by `dpot info`)."""
    c = config
    lines = [
        f"DPOT {c.ndim}D: grid {'x'.join(map(str, c.img_size))}, patch {c.patch_size} -> latent "
        f"{'x'.join(map(str, c.latent_size))}",
        f"  in: T_in={c.in_timesteps} x C={c.in_channels}  out: T_out={c.out_timesteps} x C={c.out_channels}",
        f"  embed_dim={c.embed_dim} depth={c.depth} heads={c.n_blocks} mlp_hidden={c.mlp_hidden} "
        f"out_layer_dim={c.out_layer_dim} patch_hidden={c.patch_hidden_dim} n_cls={c.n_cls}",
        f"  modes={'all' if c.modes is None else c.modes} time_agg={c.time_agg}",
        "  options: "
        + (
            ", ".join(
                name
                for name in ("interpolate_pos_embed", "symmetric_modes", "channel_mask", "grad_checkpoint")
                if getattr(c, name)
            )
            or "none (faithful)"
        ),
    ]
    if n_params is not None:
        lines.append(f"  parameters: {n_params:,} ({n_params / 1e6:.2f}M)")
    return "\n".join(lines)


def count_parameters(config: DPOTConfig) -> int:
    """Exact parameter count of a config, built on the meta device (instant even for H)."""
    with torch.device("meta"):
        return DPOT(config).num_parameters()
