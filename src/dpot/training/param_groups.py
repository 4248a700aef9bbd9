"""Parameter groups for fine-tuning: which parameters train (`finetune.freeze`, `heads_only_steps`) and at
which learning rate (layer-wise decay, `finetune.lr_scale`, `finetune.lora.lr_scale`); the groups go to
`optim.build_optimizer`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dpot.errors import DpotError
from dpot.training.config import AdaptConfig

if TYPE_CHECKING:
    from dpot.training.trainer import Trainer

# Parameter-name aliases (prefixes) understood by `finetune.freeze` and `finetune.lr_scale`, per model type.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "dpot": {
        "backbone": ("blocks.",),
        "embedding": ("patch_embed.", "pos_embed", "time_agg_layer."),
        "head": ("out_layer.", "cls_head."),
    },
    "fno": {"backbone": ("fno.fno_blocks.",), "embedding": ("fno.lifting.",), "head": ("fno.projection.",)},
}
HEADS = ("embedding", "head")  # what `heads_only_steps` trains first


def _prefixes(model: nn.Module, names: list[str] | tuple[str, ...]) -> list[str]:
    """Parameter-name prefixes for `names` (aliases expanded); a name that matches nothing is an error."""
    aliases = ALIASES.get(getattr(model, "architecture", ""), {})
    params = [n for n, _ in model.named_parameters()]
    out = []
    for name in names:
        pre = aliases.get(name, (name,))
        if not any(p.startswith(q) for p in params for q in pre):
            raise DpotError(
                f"finetune: {name!r} matches no parameter; use backbone, embedding, head or a "
                f"name prefix such as {params[0].rsplit('.', 1)[0]!r}"
            )
        out.extend(pre)
    return out


def _matches(name: str, prefixes: list[str]) -> bool:
    return any(name.startswith(p) for p in prefixes)


def param_groups(model: nn.Module, cfg: AdaptConfig, lr: float) -> list[dict[str, Any]]:
    """Optimiser groups: frozen parameters left out; layer-wise decay and `lr_scale` factors applied."""
    frozen = _prefixes(model, cfg.freeze) if cfg.freeze else []
    scales = [(_prefixes(model, [k]), float(v)) for k, v in cfg.lr_scale.items()]
    depth = len(getattr(model, "blocks", [])) if getattr(model, "architecture", "") == "dpot" else 0
    groups: dict[float, list[str]] = {}
    for name, p in model.named_parameters():
        if _matches(name, frozen):
            p.requires_grad_(False)
            continue
        factor = 1.0
        if cfg.layer_decay != 1.0 and depth:
            m = re.match(r"blocks\.(\d+)\.", name)
            if m:
                factor = cfg.layer_decay ** (depth - int(m.group(1)))
            elif _matches(name, list(ALIASES["dpot"]["embedding"])):
                factor = cfg.layer_decay ** (depth + 1)
        for pre, s in scales:
            if _matches(name, pre):
                factor *= s
        if cfg.method == "lora" and ".parametrizations." in name:  # a low-rank factor (models/lora.py)
            factor *= cfg.lora.lr_scale
        groups.setdefault(factor, []).append(name)
    if not groups:
        raise DpotError("finetune.freeze leaves no parameter to train")
    return [{"params": names, "lr": lr * f} for f, names in sorted(groups.items())]


class HeadsFirst:
    """Keep everything except the embedding and output heads fixed for the first N optimiser steps.

    Gradients of the other parameters are dropped right after they are accumulated, so AdamW leaves them (and
    their moments) untouched until step N; from then on all trainable parameters update."""

    def __init__(self, model: nn.Module, trainer: Trainer, steps: int):
        heads = _prefixes(model, list(HEADS))
        self.trainer, self.steps = trainer, steps
        for name, p in model.named_parameters():
            if p.requires_grad and not _matches(name, heads):
                p.register_post_accumulate_grad_hook(self._hook)

    def _hook(self, p: torch.Tensor) -> None:
        if self.trainer.step < self.steps:
            p.grad = None
