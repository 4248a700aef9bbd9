"""Checkpoint directories and the model-type registry: `config.json` (model type + config + extras) and
`model.safetensors`, one format and one save/load for every model type.

Every model class derives from `PretrainedModel` and names its `model_type` and its `config_class` (as in
transformers). `MODEL_TYPES` maps each `model_type` to its class as a lazy `"module:Class"` string, so
registering a type never imports heavy optional dependencies; `load_model(dir)` dispatches through it.
"""

from __future__ import annotations

import importlib
import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from dpot.errors import DpotError
from dpot.io import atomic_path, read_safetensors, read_text_file, safetensors_shapes, write_json, write_safetensors

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

MODEL_TYPES: dict[str, Any] = {
    "dpot": "dpot.models.dpot:DPOT",
    "fno": "dpot.models.fno_baseline:FNOBaseline",
    "dpot-lora": "dpot.models.lora:LoraDPOT",  # a LoRA adapter folder: loads its base checkpoint + the adapter
}


def model_class(model_type: str) -> type[PretrainedModel]:
    """The class registered for `model_type` (imported on first use)."""
    entry = MODEL_TYPES.get(model_type)
    if entry is None:
        raise DpotError(f"unknown model_type {model_type!r}; known types: {', '.join(sorted(MODEL_TYPES))}")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        MODEL_TYPES[model_type] = entry
    return entry


class PretrainedModel(nn.Module):
    """Base of every dpot model type: a `config` of type `config_class`, and one checkpoint format."""

    model_type: ClassVar[str]
    config_class: ClassVar[type]

    @property
    def architecture(self) -> str:
        """The network family the weights belong to (a LoRA-wrapped DPOT is still a "dpot")."""
        return self.model_type

    def reset_buffers(self) -> None:
        """(Re)build non-persistent buffers after weights were loaded into a model built on `meta` (none here)."""

    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write `config.json` and `model.safetensors` into `directory` (each file atomically)."""
        return write_checkpoint(directory, self.model_type, self.config.to_dict(), self.state_dict(), extra)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu", **overrides: Any):
        """Load a checkpoint directory written by `save_pretrained` (strict: every tensor must match).

        `overrides` change config options that keep every weight's shape (e.g. `interpolate_pos_embed=True`);
        one that would change a weight is a DpotError naming it."""
        return load_pretrained(cls, directory, map_location, **overrides)


def read_checkpoint_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed `config.json` of a checkpoint directory (one-line DpotError if it is not one)."""
    directory = Path(directory)
    path = directory / CONFIG_FILE if directory.is_dir() else directory
    if path.suffix in (".pth", ".pt") and path.is_file():
        raise DpotError(
            f"{path} is a PyTorch file, not a dpot checkpoint folder; convert a DPOT reference "
            f"checkpoint first: dpot import-checkpoint {path} --out DIR"
        )
    if not path.is_file():
        raise DpotError(f"{directory}: not a checkpoint directory ({CONFIG_FILE} missing)")
    try:
        meta = json.loads(read_text_file(path))
    except json.JSONDecodeError as exc:
        raise DpotError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(meta, dict) or "model_type" not in meta or "model" not in meta:
        raise DpotError(f"{path}: not a dpot checkpoint config (needs 'model_type' and 'model')")
    return meta


def _config(cls: type[PretrainedModel], values: dict[str, Any], where: str | os.PathLike) -> Any:
    """`cls.config_class` from a dict; an invalid value is a one-line DpotError."""
    try:
        return cls.config_class.from_dict(values)
    except ValueError as exc:
        raise DpotError(f"{where}: {exc}") from None


def load_model_config(directory: str | os.PathLike, **overrides: Any) -> Any:
    """The model config stored in a checkpoint (its type's `config_class`), with `overrides`; reads no weights."""
    meta = read_checkpoint_config(directory)
    return _config(model_class(meta["model_type"]), {**meta["model"], **overrides}, directory)


def write_checkpoint(
    directory: str | os.PathLike,
    model_type: str,
    config: dict[str, Any],
    state: dict[str, torch.Tensor],
    extra: dict | None = None,
) -> Path:
    """Write `model.safetensors` then `config.json` (each atomic; config last = complete)."""

    from dpot import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        write_safetensors(tensors, tmp, {"format": "pt"}, str(directory / WEIGHTS_FILE))
    meta = {"model_type": model_type, "model": config, "dpot_version": __version__, **(extra or {})}
    write_json(directory / CONFIG_FILE, meta)
    return directory


def _shapes(cls: type[PretrainedModel], config: Any) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in cls(config).state_dict().items()}


def _check_overrides(
    cls: type[PretrainedModel], values: dict[str, Any], overrides: dict[str, Any], where: Path
) -> None:
    """DpotError naming the first override that would add, drop or reshape a weight."""
    base = _shapes(cls, _config(cls, values, where))
    for key, value in overrides.items():
        changed = _shapes(cls, _config(cls, {**values, key: value}, where))
        if changed != base:
            diff = sorted(set(base) ^ set(changed)) or [k for k in base if base[k] != changed[k]]
            raise DpotError(
                f"{where}: override {key}={value!r} changes the weights ({diff[0]}); only options that keep "
                "every weight's shape can be overridden at load time"
            )


def load_pretrained(
    cls: type[PretrainedModel], directory: str | os.PathLike, map_location: str | torch.device = "cpu", **overrides: Any
):
    """Build `cls` from `config.json` (plus shape-preserving `overrides`) and load `model.safetensors` strictly."""

    directory = Path(directory)
    meta = read_checkpoint_config(directory)
    if meta["model_type"] != cls.model_type:
        raise DpotError(
            f"{directory}: model_type is {meta['model_type']!r}, not {cls.model_type!r}; "
            "use dpot.models.load_model to load any type"
        )
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise DpotError(f"{directory}: {WEIGHTS_FILE} missing")
    if overrides:
        _check_overrides(cls, meta["model"], overrides, directory)
    config = _config(cls, {**meta["model"], **overrides}, directory)
    with torch.device("meta"):  # no random init and no second copy of the weights (matters for L and H)
        model = cls(config)
    state = read_safetensors(weights, map_location)
    try:
        result = model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as exc:  # shape mismatch
        raise DpotError(f"{weights}: weights do not match config.json ({str(exc).splitlines()[-1].strip()})") from None
    if result.missing_keys or result.unexpected_keys:
        raise DpotError(
            f"{weights}: weights do not match config.json (missing {result.missing_keys[:3]}, "
            f"unexpected {result.unexpected_keys[:3]})"
        )
    model.reset_buffers()
    return model.to(map_location)


def load_model(
    directory: str | os.PathLike, map_location: str | torch.device = "cpu", **overrides: Any
) -> PretrainedModel:
    """Load any dpot checkpoint directory, dispatching on its `model_type` through `MODEL_TYPES`; `overrides`
    as in `PretrainedModel.from_pretrained`."""
    meta = read_checkpoint_config(directory)
    return model_class(meta["model_type"]).from_pretrained(directory, map_location=map_location, **overrides)


def parse_overrides(directory: str | os.PathLike, items: list[str] | tuple = ()) -> dict[str, Any]:
    """`KEY=VALUE` strings (`--set`) -> load-time overrides for `load_model(directory, **overrides)`, each key
    and value checked against the checkpoint's model config class (unknown key or bad value: one line)."""
    from dpot.config import apply_overrides

    if not items:
        return {}
    meta = read_checkpoint_config(directory)
    return apply_overrides(model_class(meta["model_type"]).config_class, {}, items)


def checkpoint_summary(path: str | os.PathLike) -> str:
    """Multi-line description of a checkpoint directory: type, architecture, parameter count, files, extras.

    Reads only `config.json` and the safetensors header, so it is instant even for DPOT-H.
    """
    from dpot.models.dpot import describe

    directory = Path(path)
    meta = read_checkpoint_config(directory)
    if directory.is_file():
        directory = directory.parent
    weights = directory / WEIGHTS_FILE
    n_params = n_tensors = None
    if weights.is_file():
        shapes = safetensors_shapes(weights)
        n_tensors = len(shapes)
        n_params = sum(math.prod(s) for s in shapes.values())
    lines = [f"checkpoint {directory} (model_type {meta['model_type']}, dpot {meta.get('dpot_version', '?')})"]
    if meta["model_type"] == "dpot":
        lines.append(describe(load_model_config(directory), n_params))
    else:
        lines.append("  model: " + ", ".join(f"{k}={v}" for k, v in meta["model"].items()))
        if n_params is not None:
            lines.append(f"  parameters: {n_params:,} ({n_params / 1e6:.2f}M)")
    if weights.is_file():
        lines.append(f"  weights: {WEIGHTS_FILE}, {n_tensors} tensors, {weights.stat().st_size / 1e6:.1f} MB")
    else:
        lines.append(f"  weights: {WEIGHTS_FILE} MISSING")
    for name in sorted(p.name for p in directory.iterdir() if p.name not in (CONFIG_FILE, WEIGHTS_FILE)):
        lines.append(f"  also: {name}")
    for key, value in meta.items():
        if key not in ("model_type", "model", "dpot_version"):
            text = json.dumps(value, sort_keys=True)
            lines.append(f"  {key}: {text if len(text) <= 100 else text[:97] + '...'}")
    return "\n".join(lines)
