"""LoRA for DPOT: trainable low-rank updates of chosen weights, saved as a small adapter beside a base checkpoint.

Why not the `peft` library: DPOT's weights are not `nn.Linear`/`nn.Conv*` modules (peft refuses `ConvWeight`),
they are 4-D conv-layout tensors (peft's `target_parameters` takes 2-D/3-D only) and the forward pass reads
several of them directly inside fused matmuls (`DPOT.embed`, `DPOT.decode`), where a wrapped module's forward
is never called. So the update is attached to the weight itself, as a `torch.nn.utils.parametrize`
parametrization: every read of `module.weight` returns `W + scale * delta`, whichever code path reads it.

Three kinds of update (`scale = alpha / rank`, the second factor starts at zero so training starts at the base):
- a weight matrix, conv kernels flattened to `(out, in*k^d)` (or `(in, out*k^d)` transposed): `B @ A`;
- the complex spectral weights `(2, h, b, b)` of a Fourier block: per block h a complex rank-r product
  `U_h V_h` (real and imaginary parts of both factors trained), which no real low-rank layer expresses;
- the temporal aggregation `(T, D, D)`: one rank-r product per input frame.

Frozen tensors become non-persistent buffers, so `state_dict()` (what a checkpoint saves) is exactly the
adapter: the low-rank factors plus any tensor that trains in full (those the task adaptation created or
changed, and `finetune.lora.full`: biases and norms by default). `LoraDPOT.from_pretrained` rebuilds base +
adapter; `merged()` folds the updates into a plain `DPOT`.
"""

from __future__ import annotations

import fnmatch
import math
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from dpot.errors import DpotError
from dpot.models.config import LoraConfig
from dpot.models.dpot import DPOT
from dpot.models.reference import _sha256 as file_sha256  # the checkpoint importer's file hash

MODEL_TYPE = "dpot-lora"
SPECTRAL = ("blocks.*.filter.w1", "blocks.*.filter.w2")


class LowRankDelta(nn.Module):
    """Parametrization `W -> W + scale * delta(W's kind)` (see the module docstring for the three kinds)."""

    def __init__(self, shape: tuple[int, ...], kind: str, rank: int, scale: float, transposed: bool = False):
        super().__init__()
        self.shape, self.kind, self.scale, self.transposed = tuple(shape), kind, scale, transposed
        if kind == "matrix":  # a: (r, n) random, b: (m, r) zero; delta = b @ a of shape (m, n) = W.flatten(1)
            m, n = shape[0], math.prod(shape[1:])
            a, b = torch.empty(rank, n), torch.zeros(m, rank)
        elif kind == "spectral":  # (2, h, i, o): a (2, h, i, r) random, b (2, h, r, o) zero, complex product
            _, h, i, o = shape
            a, b = torch.empty(2, h, i, rank), torch.zeros(2, h, rank, o)
        else:  # batched (T, i, o): a (T, i, r), b (T, r, o)
            t, i, o = shape
            a, b = torch.empty(t, i, rank), torch.zeros(t, rank, o)
        fan_in = a.shape[-1] if kind == "matrix" else a.shape[-2]  # the input side of the product
        nn.init.uniform_(a, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))  # LoRA's default for A
        self.a, self.b = nn.Parameter(a), nn.Parameter(b)

    def delta(self) -> torch.Tensor:
        """The update `scale * delta` in the weight's own shape."""
        a, b = self.a, self.b
        if self.kind == "matrix":
            d = b @ a
        elif self.kind == "spectral":
            re = a[0] @ b[0] - a[1] @ b[1]
            im = a[0] @ b[1] + a[1] @ b[0]
            d = torch.stack([re, im])
        else:
            d = torch.bmm(a, b)
        return self.scale * d.reshape(self.shape)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + self.delta().to(w.dtype)


def _kind(name: str, shape: tuple[int, ...]) -> str | None:
    """The update kind for a parameter, or None if it is not a weight matrix (biases, norms, pos_embed)."""
    if any(fnmatch.fnmatchcase(name, p) for p in SPECTRAL):
        return "spectral"
    if name == "time_agg_layer.w":
        return "batched"
    if len(shape) >= 2 and shape[0] > 1 and not name.startswith("pos_embed"):
        return "matrix"
    return None


def target_names(model: nn.Module, cfg: LoraConfig) -> list[str]:
    """Names of the parameters `cfg` adapts (its globs, plus the spectral weights if `cfg.spectral`)."""
    params = dict(model.named_parameters())
    patterns = list(cfg.targets) + (list(SPECTRAL) if cfg.spectral else [])
    names: list[str] = []
    for pattern in patterns:
        hits = [n for n in params if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise DpotError(
                f"finetune.lora.targets: {pattern!r} matches no parameter (e.g. blocks.*.mlp.*.weight, "
                "patch_embed.proj.*.weight, out_layer.*.weight, time_agg_layer.w)"
            )
        names += [n for n in hits if _kind(n, tuple(params[n].shape)) and n not in names]
    if not names:
        raise DpotError(f"finetune.lora.targets {list(cfg.targets)} select no weight matrix (only biases or norms)")
    return names


def full_names(model: nn.Module, cfg: LoraConfig) -> list[str]:
    """Names of the parameters `cfg.full` trains in full (biases and norms by default)."""
    params = [n for n, _ in model.named_parameters()]
    names: list[str] = []
    for pattern in cfg.full:
        hits = [n for n in params if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise DpotError(
                f"finetune.lora.full: {pattern!r} matches no parameter (e.g. blocks.*.bias, "
                "blocks.*.norm*.weight, time_agg_layer.gamma; [] trains only the low-rank factors)"
            )
        names += [n for n in hits if n not in names]
    return names


def _split(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, leaf = name.rpartition(".")
    return (model.get_submodule(module_name) if module_name else model), leaf


class LoraDPOT(DPOT):
    """A `DPOT` whose chosen weights carry low-rank updates; `state_dict()` is the adapter only.

    Built by `inject` (from a plain DPOT) or `from_pretrained` (base checkpoint + adapter folder). It trains,
    rolls out and evaluates like the DPOT it wraps; `save_pretrained` writes the adapter and a pointer to the
    base checkpoint (path, sha256 of its weights, its training step)."""

    model_type = MODEL_TYPE
    architecture = "dpot"

    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write `config.json` (model_type `dpot-lora`, the adapted network's config, `lora` record) and
        `model.safetensors` holding only the adapter tensors."""
        from dpot.models.checkpoint import write_checkpoint

        return write_checkpoint(
            directory, MODEL_TYPE, self.config.to_dict(), self.state_dict(), {**(extra or {}), "lora": self.lora_record}
        )

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu", **overrides: Any
    ) -> LoraDPOT:
        """Load the base checkpoint the adapter folder points to (checking its sha256), then the adapter."""
        from dpot.io import read_safetensors

        if overrides:
            raise DpotError(
                f"{directory}: load-time overrides are not supported for a LoRA adapter; write a plain "
                "checkpoint with `dpot export --merge` and load that"
            )
        from dpot.models.checkpoint import WEIGHTS_FILE, read_checkpoint_config
        from dpot.models.config import DPOTConfig

        directory = Path(directory)
        meta = read_checkpoint_config(directory)
        if meta["model_type"] != MODEL_TYPE or "lora" not in meta:
            raise DpotError(f"{directory}: not a LoRA adapter folder (model_type {meta['model_type']!r})")
        record = meta["lora"]
        base_dir = Path(record["base"]["path"])
        base_file = base_dir / WEIGHTS_FILE
        if read_checkpoint_config(base_dir)["model_type"] != "dpot" or not base_file.is_file():
            raise DpotError(f"{directory}: its base {base_dir} is not a plain DPOT checkpoint")
        if file_sha256(base_file) != record["base"]["sha256"]:
            raise DpotError(
                f"{directory}: base checkpoint {base_dir} changed since the adapter was trained (sha256 differs); "
                "restore that checkpoint or fine-tune again"
            )
        adapter = read_safetensors(directory / WEIGHTS_FILE)
        base = read_safetensors(base_file)
        full = set(record["full"])
        with torch.device("meta"):
            plain = DPOT(DPOTConfig.from_dict(meta["model"]))
        state = {k: adapter[k] if k in full else base.get(k) for k in plain.state_dict()}
        missing = [k for k, v in state.items() if v is None]
        if missing:
            raise DpotError(f"{directory}: tensors {missing[:3]} are neither in the adapter nor in the base")
        try:
            plain.load_state_dict(state, assign=True)
        except RuntimeError as exc:
            raise DpotError(f"{directory}: adapter and base do not fit ({str(exc).splitlines()[-1].strip()})") from None
        plain.reset_buffers()
        model = inject(plain, LoraConfig(**record["config"]), train=full, base=record["base"])
        result = model.load_state_dict(adapter, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise DpotError(
                f"{directory}: adapter does not match its config (missing {result.missing_keys[:3]}, "
                f"unexpected {result.unexpected_keys[:3]})"
            )
        return model.to(map_location)

    def merged_state_dict(self) -> dict[str, torch.Tensor]:
        """The plain DPOT state dict with every low-rank update folded into its weight."""
        with torch.device("meta"):
            names = list(DPOT(self.config).state_dict())
        with torch.no_grad():
            return {n: getattr(*_split(self, n)).detach().clone() for n in names}

    def merged(self) -> DPOT:
        """A plain `DPOT` computing the same function (no parametrizations, no adapter)."""
        model = DPOT(self.config)
        model.load_state_dict(self.merged_state_dict())
        return model.to(self.pos_embed.device)


def inject(model: DPOT, cfg: LoraConfig, train: Iterable[str] = (), base: dict[str, Any] | None = None) -> LoraDPOT:
    """A `LoraDPOT` over `model`'s weights: `cfg`'s targets get low-rank updates, the tensors named in `train`
    or matched by `cfg.full` stay trainable in full, everything else is frozen (a non-persistent buffer). `base`
    is the pointer record."""
    if type(model) is not DPOT:
        raise DpotError("finetune.method=lora adapts a plain DPOT network (not the FNO baseline or an adapter)")
    with torch.device("meta"):
        lora = LoraDPOT(model.config)
    lora.load_state_dict(model.state_dict(), assign=True)
    lora.reset_buffers()
    train = set(train) | set(full_names(lora, cfg))
    targets = [n for n in target_names(lora, cfg) if n not in train]  # a fully trained tensor needs no update
    for name, p in list(lora.named_parameters()):
        if name in train:
            continue
        module, leaf = _split(lora, name)
        del module._parameters[leaf]
        module.register_buffer(leaf, p.detach(), persistent=False)
    for name in targets:
        module, leaf = _split(lora, name)
        w = getattr(module, leaf)
        kind = _kind(name, tuple(w.shape))
        delta = LowRankDelta(tuple(w.shape), kind, cfg.rank, cfg.scale).to(w.device)
        parametrize.register_parametrization(module, leaf, delta)
        plist = module.parametrizations[leaf]  # the frozen base weight is not part of the adapter:
        plist.register_buffer("original", plist.original, persistent=False)
    lora.lora_record = {"config": asdict(cfg), "targets": targets, "full": sorted(train), "base": base or {}}
    return lora


def changed_tensors(model: nn.Module, base: nn.Module) -> list[str]:
    """Names of `model`'s tensors that `base` lacks or holds with another shape or value (what the task
    adaptation created or changed: these train in full and are stored in the adapter)."""
    src = base.state_dict()
    return [
        n
        for n, v in model.state_dict().items()
        if n not in src or src[n].shape != v.shape or not torch.equal(src[n].to(v), v)
    ]


def attach(model: DPOT, base: DPOT | None, base_dir: str | os.PathLike, cfg: LoraConfig) -> LoraDPOT:
    """The fine-tuning entry point: LoRA over the adapted `model`, pointing at checkpoint `base_dir` (the
    pre-trained `base` it was adapted from)."""
    from dpot.models.checkpoint import WEIGHTS_FILE, read_checkpoint_config

    if base is None or not base_dir:
        raise DpotError("finetune.method=lora adapts a pre-trained checkpoint: pass --from CKPT with model=pretrained")

    base_dir = Path(base_dir).resolve()
    meta = read_checkpoint_config(base_dir)
    if meta["model_type"] != "dpot":
        raise DpotError(f"finetune.method=lora needs a plain DPOT checkpoint as --from, not {meta['model_type']!r}")
    pointer = {"path": str(base_dir), "sha256": file_sha256(base_dir / WEIGHTS_FILE), "step": meta.get("step")}
    return inject(model, cfg, train=changed_tensors(model, base), base=pointer)


def count_trainable(model: nn.Module) -> int:
    """Number of parameters with `requires_grad`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def export_merged(adapter_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write a plain DPOT checkpoint folder `out` (atomically): base + adapter merged, the adapter's other
    records (normalisation, data, fine-tuning log) kept, plus `merged_from` naming the adapter and base."""
    from dpot.io import atomic_path
    from dpot.models.checkpoint import read_checkpoint_config

    meta = read_checkpoint_config(adapter_dir)
    model = LoraDPOT.from_pretrained(adapter_dir)
    record = meta["lora"]
    extra = {k: v for k, v in meta.items() if k not in ("model_type", "model", "dpot_version", "lora")}
    extra["merged_from"] = {
        "adapter": str(Path(adapter_dir).resolve()),
        "base": record["base"],
        "lora": record["config"],
    }
    with atomic_path(out) as tmp:
        model.merged().save_pretrained(tmp, extra=extra)
    return Path(out)
