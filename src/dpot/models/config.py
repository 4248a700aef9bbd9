"""`DPOTConfig`: every size and option of a DPOT network, saved inside each checkpoint as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from dpot.errors import DpotError

TIME_AGG_TYPES = ("exp_mlp", "mlp")
C = TypeVar("C")


def require_positive(config: Any, names: tuple[str, ...]) -> None:
    """ValueError naming the first of `names` whose value on `config` is below 1."""
    for name in names:
        if int(getattr(config, name)) < 1:
            raise ValueError(f"{type(config).__name__}.{name} must be >= 1, got {getattr(config, name)}")


def config_from_dict(cls: type[C], d: dict[str, Any], kind: str) -> C:
    """Model config `cls` from a checkpoint's dict; unknown keys (a newer or foreign checkpoint) name themselves."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise DpotError(f"unknown {kind} config keys {unknown}; known keys: {sorted(known)}")
    return cls(**d)


@dataclass
class DPOTConfig:
    """Sizes and options of a DPOT network. The defaults are DPOT-Ti in the reference ("faithful") mode.

    Faithful mode = every option below `time_agg` at its default (off); then the network equals the reference
    `DPOTNet` layer by layer and released checkpoints load and give the same outputs.
    """

    ndim: int = 2  # spatial dimensions: 1, 2 or 3 (one code path)
    img_size: int | tuple[int, ...] = 128  # grid size per axis the positional embedding is built for
    patch_size: int = 8
    in_channels: int = 4
    out_channels: int = 4
    in_timesteps: int = 10
    out_timesteps: int = 1
    embed_dim: int = 512
    depth: int = 4
    n_blocks: int = 4  # "heads": blocks of the block-diagonal spectral MLP
    mlp_ratio: float = 1.0  # channel-MLP hidden width = round(embed_dim * mlp_ratio)
    out_layer_dim: int = 32
    n_cls: int = 12
    modes: int | None = 32  # Fourier modes kept per axis; None keeps all
    patch_hidden: int | None = None  # patch-embedding hidden width; None = faithful out_channels*P + ndim + 1
    time_agg: str = "exp_mlp"  # "exp_mlp" (cosine temporal basis, reference default) or "mlp"
    # Options beyond the reference, all off in faithful mode.
    interpolate_pos_embed: bool = False  # accept any grid divisible by patch_size; pos_embed resized (linear)
    symmetric_modes: bool = False  # keep |k| < modes on full-FFT axes instead of the reference's k < modes
    channel_mask: bool = False  # padded channels: zeroed and signalled by a learned mask embedding (not 1.0)
    grad_checkpoint: bool = False  # activation checkpointing per Fourier block while training

    def __post_init__(self) -> None:
        if self.ndim not in (1, 2, 3):
            raise ValueError(f"DPOTConfig.ndim must be 1, 2 or 3, got {self.ndim}")
        size = self.img_size
        size = (int(size),) * self.ndim if isinstance(size, int) else tuple(int(s) for s in size)
        if len(size) != self.ndim:
            raise ValueError(
                f"DPOTConfig.img_size {list(size)} must have ndim={self.ndim} entries (or be one int)"
            )
        self.img_size = size
        require_positive(self, ("patch_size", "in_channels", "out_channels", "in_timesteps", "out_timesteps",
                                "embed_dim", "depth", "n_blocks", "out_layer_dim", "n_cls"))
        if any(s % self.patch_size for s in size):
            raise ValueError(
                f"DPOTConfig.img_size {list(size)} must be divisible by patch_size={self.patch_size}"
            )
        if self.embed_dim % 8:
            raise ValueError(
                f"DPOTConfig.embed_dim={self.embed_dim} must be divisible by 8 (GroupNorm(8) groups)"
            )
        if self.embed_dim % self.n_blocks:
            raise ValueError(
                f"DPOTConfig.embed_dim={self.embed_dim} must be divisible by n_blocks={self.n_blocks}"
            )
        if self.mlp_hidden < 1:
            raise ValueError(f"DPOTConfig.mlp_ratio={self.mlp_ratio} gives an empty channel MLP")
        if self.modes is not None and self.modes < 1:
            raise ValueError(f"DPOTConfig.modes must be >= 1 or None (keep all), got {self.modes}")
        if self.patch_hidden is not None and self.patch_hidden < 1:
            raise ValueError(f"DPOTConfig.patch_hidden must be >= 1 or None, got {self.patch_hidden}")
        if self.time_agg not in TIME_AGG_TYPES:
            raise ValueError(f"DPOTConfig.time_agg must be one of {TIME_AGG_TYPES}, got {self.time_agg!r}")

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
        """Inverse of `to_dict`; unknown keys are an error naming them."""
        return config_from_dict(cls, d, "DPOT")

    def replace(self, **overrides: Any) -> DPOTConfig:
        """Copy with some fields changed (validated like a new config)."""
        d = self.to_dict()
        if "ndim" in overrides and "img_size" not in overrides and len(set(self.img_size)) == 1:
            d["img_size"] = self.img_size[0]  # a cubic grid stays cubic when ndim changes
        d.update(overrides)
        return DPOTConfig.from_dict(d)
