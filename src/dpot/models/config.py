"""The model configs, saved inside each checkpoint as JSON: `DPOTConfig` (every size and option of a DPOT
network) and `FNOConfig` (the FNO baseline; its size part `FNOSize` is also the `fno` section of
`dpot finetune`). Built through `dpot.config.from_dict`: typed, strict, ranges checked, `DpotError`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dpot.config import check_fields, from_dict, num
from dpot.errors import DpotError

TIME_AGG_TYPES = ("exp_mlp", "mlp")


def _check_ndim(config: Any) -> None:
    if config.ndim not in (1, 2, 3):
        raise DpotError(f"{type(config).__name__}.ndim must be 1, 2 or 3, got {config.ndim}")


@dataclass
class DPOTConfig:
    """Sizes and options of a DPOT network. The defaults are DPOT-Ti in the reference ("faithful") mode.

    Faithful mode = every option below `time_agg` at its default (off); then the network equals the reference
    `DPOTNet` layer by layer and released checkpoints load and give the same outputs.
    """

    ndim: int = 2  # spatial dimensions: 1, 2 or 3 (one code path)
    img_size: int | tuple[int, ...] = 128  # grid size per axis the positional embedding is built for
    patch_size: int = num(8, ge=1)
    in_channels: int = num(4, ge=1)
    out_channels: int = num(4, ge=1)
    in_timesteps: int = num(10, ge=1)
    out_timesteps: int = num(1, ge=1)
    embed_dim: int = num(512, ge=1)
    depth: int = num(4, ge=1)
    n_blocks: int = num(4, ge=1)  # "heads": blocks of the block-diagonal spectral MLP
    mlp_ratio: float = num(1.0, gt=0)  # channel-MLP hidden width = round(embed_dim * mlp_ratio)
    out_layer_dim: int = num(32, ge=1)
    n_cls: int = num(12, ge=1)
    modes: int | None = num(32, ge=1, null="keep all")  # Fourier modes kept per axis
    # patch-embedding hidden width; None = the reference's out_channels*P + ndim + 1
    patch_hidden: int | None = num(None, ge=1, null="faithful out_channels*P + ndim + 1")
    time_agg: str = "exp_mlp"  # "exp_mlp" (cosine temporal basis, reference default) or "mlp"
    # Options beyond the reference, all off in faithful mode.
    interpolate_pos_embed: bool = False  # accept any grid divisible by patch_size; pos_embed resized (linear)
    symmetric_modes: bool = False  # keep |k| < modes on full-FFT axes instead of the reference's k < modes
    channel_mask: bool = False  # padded channels: zeroed and signalled by a learned mask embedding (not 1.0)
    grad_checkpoint: bool = False  # activation checkpointing per Fourier block while training

    def __post_init__(self) -> None:
        _check_ndim(self)
        check_fields(self)
        size = self.img_size
        size = (int(size),) * self.ndim if isinstance(size, int) else tuple(int(s) for s in size)
        if len(size) != self.ndim:
            raise DpotError(f"DPOTConfig.img_size {list(size)} must have ndim={self.ndim} entries (or be one int)")
        self.img_size = size
        if any(s % self.patch_size for s in size):
            raise DpotError(f"DPOTConfig.img_size {list(size)} must be divisible by patch_size={self.patch_size}")
        if self.embed_dim % 8:
            raise DpotError(f"DPOTConfig.embed_dim={self.embed_dim} must be divisible by 8 (GroupNorm(8) groups)")
        if self.embed_dim % self.n_blocks:
            raise DpotError(f"DPOTConfig.embed_dim={self.embed_dim} must be divisible by n_blocks={self.n_blocks}")
        if self.mlp_hidden < 1:
            raise DpotError(f"DPOTConfig.mlp_ratio={self.mlp_ratio} gives an empty channel MLP")
        if self.time_agg not in TIME_AGG_TYPES:
            raise DpotError(f"DPOTConfig.time_agg must be one of {TIME_AGG_TYPES}, got {self.time_agg!r}")

    @property
    def mlp_hidden(self) -> int:
        """Hidden width of the channel MLP inside each block."""
        return round(self.embed_dim * self.mlp_ratio)

    @property
    def patch_hidden_dim(self) -> int:
        """Hidden width of the patch embedding (reference: out_channels * patch_size + ndim + 1)."""
        if self.patch_hidden is not None:
            return self.patch_hidden
        return self.out_channels * self.patch_size + self.ndim + 1

    @property
    def latent_size(self) -> tuple[int, ...]:
        """Latent grid (img_size / patch_size per axis) that `pos_embed` is stored at."""
        return tuple(s // self.patch_size for s in self.img_size)

    @property
    def faithful(self) -> bool:
        """True when no option beyond the reference network is switched on."""
        return not (
            self.interpolate_pos_embed
            or self.symmetric_modes
            or self.channel_mask
            or self.patch_hidden not in (None, self.out_channels * self.patch_size + self.ndim + 1)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["img_size"] = list(self.img_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DPOTConfig:
        """Inverse of `to_dict`, through the typed strict loader (unknown keys: did-you-mean)."""
        return from_dict(cls, d)

    def replace(self, **overrides: Any) -> DPOTConfig:
        """Copy with some fields changed (validated like a new config)."""
        d = self.to_dict()
        if "ndim" in overrides and "img_size" not in overrides and len(set(self.img_size)) == 1:
            d["img_size"] = self.img_size[0]  # a cubic grid stays cubic when ndim changes
        d.update(overrides)
        return DPOTConfig.from_dict(d)


@dataclass
class FNOSize:
    """Size of the neuraloperator FNO baseline: the `fno` section of `dpot finetune` and part of `FNOConfig`."""

    modes: int = num(12, ge=1)  # Fourier modes per axis, clipped to what the grid can hold at run time
    width: int = num(32, ge=1)
    n_layers: int = num(4, ge=1)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class FNOConfig(FNOSize):
    """The FNO baseline network: its `FNOSize` plus the data shape it maps and the lifting/projection widths."""

    ndim: int = 2
    in_channels: int = num(4, ge=1)
    out_channels: int = num(4, ge=1)
    in_timesteps: int = num(10, ge=1)
    out_timesteps: int = num(1, ge=1)
    lifting_ratio: float = num(2.0, gt=0)
    projection_ratio: float = num(2.0, gt=0)

    def __post_init__(self) -> None:
        _check_ndim(self)
        check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FNOConfig:
        """Inverse of `to_dict`, through the typed strict loader."""
        return from_dict(cls, d)


@dataclass
class LoraConfig:
    """`finetune.lora.*`: rank, scale, which weights get a low-rank update (and whether the spectral ones do),
    which small tensors train in full, and the factors' learning-rate multiplier."""

    rank: int = num(8, ge=1)
    alpha: float | None = num(None, gt=0, null="scale 1")  # update scale = alpha / rank; null = rank (scale 1)
    targets: list[str] = field(
        default_factory=lambda: [
            "blocks.*.mlp.*.weight",
            "patch_embed.proj.*.weight",
            "out_layer.*.weight",
            "time_agg_layer.w",
        ]
    )  # parameter-name globs (1-D matches such as biases are skipped)
    spectral: bool = True  # also blocks.*.filter.w1/w2 (complex low-rank per block)
    full: list[str] = field(
        default_factory=lambda: [
            "patch_embed.*.bias",
            "blocks.*.bias",
            "blocks.*.filter.b1",
            "blocks.*.filter.b2",
            "blocks.*.norm*.weight",
            "out_layer.*.bias",
        ]
    )  # globs of tensors trained in full and stored in the adapter (default: biases and norms, 0.3 % of Ti)
    lr_scale: float = num(4.0, gt=0)  # the low-rank factors train at optim.lr x this (the full tensors at optim.lr)

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def scale(self) -> float:
        """The update's scale, alpha / rank."""
        return (self.rank if self.alpha is None else float(self.alpha)) / self.rank
