"""Preset sizes: the released DPOT models (Ti/S/M/L/H, reference dims) and a tiny `demo` size for CPUs."""

from __future__ import annotations

from typing import Any

from dpot.errors import DpotError
from dpot.models.config import DPOTConfig

# Reference sizes at C=4, T_in=10, P=8, 128x128, 12 classes. L needs out_layer_dim=128 and 16 heads, H an MLP
# of 8192 and out_layer_dim=128 to match the released parameter counts (see docs/model.md).
PRESETS: dict[str, dict[str, Any]] = {
    "Ti": dict(embed_dim=512, depth=4, n_blocks=4, mlp_ratio=1, out_layer_dim=32),
    "S": dict(embed_dim=1024, depth=6, n_blocks=8, mlp_ratio=1, out_layer_dim=32),
    "M": dict(embed_dim=1024, depth=12, n_blocks=8, mlp_ratio=4, out_layer_dim=32),
    "L": dict(embed_dim=1536, depth=24, n_blocks=16, mlp_ratio=4, out_layer_dim=128),
    "H": dict(embed_dim=2048, depth=27, n_blocks=8, mlp_ratio=4, out_layer_dim=128),
    # Pre-trains on 2 CPU cores in minutes: 64x64 grid, patch 4 -> 16x16 latent like the paper's.
    "demo": dict(img_size=64, patch_size=4, embed_dim=64, depth=3, n_blocks=4, mlp_ratio=2, out_layer_dim=32),
}

# Exact parameter counts of the reference network for the released sizes (checked by the tests).
REFERENCE_PARAMS = {"Ti": 7_534_643, "S": 30_801_459, "M": 122_125_875, "L": 509_018_739, "H": 1_031_082_099}


def preset_config(name: str, **overrides: Any) -> DPOTConfig:
    """Config of preset `name` (case-insensitive) with keyword overrides of any `DPOTConfig` field."""
    key = {k.lower(): k for k in PRESETS}.get(str(name).lower())
    if key is None:
        raise DpotError(f"unknown DPOT preset {name!r}; choose one of {', '.join(PRESETS)}")
    return DPOTConfig.from_dict({**PRESETS[key], **overrides})
