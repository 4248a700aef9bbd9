"""Import the released reference checkpoints (`model_Ti.pth` ... `model_H.pth`) into dpot checkpoint folders.

A reference file is a `torch.save` dict `{'args': argparse.Namespace, 'model': state_dict, 'optimizer': ...}`.
It is read with `torch.load(weights_only=True)` allowing only `argparse.Namespace`, so no pickled code runs.
Every dimension is read from the tensor shapes (the README is wrong for L and H); the optimizer is dropped.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import torch

from dpot.errors import DpotError
from dpot.models.config import DPOTConfig

# Tensors the configuration is read from.
REQUIRED = (
    "pos_embed",
    "patch_embed.proj.0.weight",
    "blocks.0.filter.w1",
    "blocks.0.mlp.0.weight",
    "out_layer.0.weight",
    "out_layer.4.weight",
    "time_agg_layer.w",
    "cls_head.4.weight",
)


def _one_line(exc: BaseException) -> str:
    """The reason in torch.load's error, without its advice to load with `weights_only=False` (which would
    run whatever code the file pickles)."""
    text = str(exc).strip()
    match = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", text, flags=re.IGNORECASE)
    if match:  # weights_only refused a pickled class or function
        return f"unsupported global {match.group(1)}: refused for safety"
    if "Weights only load failed" in text:
        reasons = [
            line.split("error:")[-1].strip()
            for line in text.splitlines()
            if line.strip() and not re.search(r"weights_only|torch\.load|trust", line)
        ]
        reason = next((r for r in reasons if r), "unknown content")
        return f"not a tensor-only PyTorch file: {reason.rstrip('.')}"
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def load_reference_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any], list[str]]:
    """Safely read a reference `.pth`: `(state dict without 'module.', args dict, dropped entry names)`."""
    path = Path(path)
    if not path.is_file():
        raise DpotError(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for foreign files
        raise DpotError(
            f"{path}: not a loadable DPOT reference checkpoint ({_one_line(exc)}); only "
            "plain tensors and argparse.Namespace are allowed"
        ) from None
    if not isinstance(obj, dict):
        raise DpotError(f"{path}: expected a dict with a 'model' state dict, found a {type(obj).__name__}")
    args = obj.get("args")
    state = obj.get("model", obj if all(isinstance(v, torch.Tensor) for v in obj.values()) else None)
    if not isinstance(state, dict) or not state:
        raise DpotError(f"{path}: no 'model' state dict inside (keys: {sorted(map(str, obj))[:6]})")
    clean: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise DpotError(f"{path}: state-dict entry {key!r} is a {type(value).__name__}, not a tensor")
        name = str(key)
        while name.startswith("module."):
            name = name[len("module.") :]
        clean[name] = value
    args_dict = (
        {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None)))}
        if isinstance(args, argparse.Namespace)
        else {}
    )
    dropped = sorted(str(k) for k in obj if k != "model") if "model" in obj else []
    return clean, args_dict, dropped


def config_from_state_dict(state: dict[str, torch.Tensor]) -> DPOTConfig:
    """Infer a faithful `DPOTConfig` from reference tensor shapes alone."""
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise DpotError(f"not a DPOT reference state dict: missing tensor(s) {', '.join(missing)}")
    if any(k.startswith("scale_feats_") for k in state):
        raise DpotError(
            "checkpoint was trained with normalize=True (AdaIN scale_feats_*), which dpot does "
            "not support; the released models use normalize=False"
        )
    pos = state["pos_embed"]
    ndim = pos.dim() - 2
    if ndim not in (1, 2, 3):
        raise DpotError(f"pos_embed has shape {list(pos.shape)}; expected (1, D, *latent), 1-3 latent axes")
    d, latent = pos.shape[1], tuple(pos.shape[2:])
    up = state["out_layer.0.weight"]  # [D, O, *P]
    p = up.shape[-1]
    conv0 = state["patch_embed.proj.0.weight"]  # [E1, C + nd + 1, *P]
    e1, c_in = conv0.shape[0], conv0.shape[1] - (ndim + 1)
    ct = state["out_layer.4.weight"].shape[0]
    c_out, patch_hidden = None, None
    if (e1 - ndim - 1) % p == 0 and (e1 - ndim - 1) // p >= 1 and ct % ((e1 - ndim - 1) // p) == 0:
        c_out = (e1 - ndim - 1) // p  # the reference always sets E1 = C_out * P + nd + 1
    else:
        c_out = c_in if ct % c_in == 0 else ct
        patch_hidden = e1
    depth = len({int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))})
    return DPOTConfig(
        ndim=ndim,
        img_size=tuple(n * p for n in latent),
        patch_size=p,
        in_channels=c_in,
        out_channels=c_out,
        in_timesteps=state["time_agg_layer.w"].shape[0],
        out_timesteps=ct // c_out,
        embed_dim=d,
        depth=depth,
        n_blocks=state["blocks.0.filter.w1"].shape[1],
        mlp_ratio=state["blocks.0.mlp.0.weight"].shape[0] / d,
        out_layer_dim=up.shape[1],
        n_cls=state["cls_head.4.weight"].shape[0],
        modes=None,
        patch_hidden=patch_hidden,
        time_agg="exp_mlp" if "time_agg_layer.gamma" in state else "mlp",
    )


def check_state_dict(config: DPOTConfig, state: dict[str, torch.Tensor]) -> None:
    """Raise DpotError unless `state` has exactly the tensors (names and shapes) of `DPOT(config)`."""
    from dpot.models.dpot import DPOT

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in DPOT(config).state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {list(state[k].shape)} (expected {list(s)})"
        for k, s in expected.items()
        if k in state and tuple(state[k].shape) != s
    ]
    if missing or unexpected or wrong:
        parts = [
            f"missing {missing[:4]}" if missing else "",
            f"unexpected {unexpected[:4]}" if unexpected else "",
            f"wrong shape {wrong[:2]}" if wrong else "",
        ]
        raise DpotError("state dict does not match the DPOT layout: " + "; ".join(p for p in parts if p))
    bad = [k for k, v in state.items() if not v.is_floating_point()]
    if bad:
        raise DpotError(f"non-floating-point tensors in state dict: {bad[:4]}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_reference_checkpoint(path: str | os.PathLike, out: str | os.PathLike, origin: dict | None = None) -> Path:
    """Convert a reference `.pth` into a dpot checkpoint folder `out` (written atomically as a whole);
    `origin` adds where the file came from (e.g. its Hugging Face repo and commit) to the `source` record."""
    from dpot.io import atomic_path
    from dpot.models.checkpoint import write_checkpoint

    path = Path(path)
    state, args, dropped = load_reference_file(path)
    config = config_from_state_dict(state)
    check_state_dict(config, state)
    state = {k: v.float() for k, v in state.items()}
    source = {
        "format": "dpot-reference-pth",
        "file": path.name,
        "sha256": _sha256(path),
        "dropped": dropped,
        "reference_args": args,
        **(origin or {}),
    }
    with atomic_path(out) as tmp:
        write_checkpoint(tmp, "dpot", config.to_dict(), state, extra={"source": source})
    return Path(out)
