"""What the training step runs on: the compiled-or-eager model call (`EagerFallback`, `compile_engine`), the
TF32 policy and the DataLoader's worker count. The DDP/FSDP wrap itself is `distributed.wrap`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn


class EagerFallback:
    """Calls a torch.compile'd module; if a call fails (at the first call, or when a new graph is compiled
    later, e.g. a no-grad one), warns once and calls the eager module from then on. An error that eager mode
    raises too is a real one and propagates."""

    def __init__(self, compiled: Callable, eager: Callable, say: Callable[[str], None]):
        self.compiled: Callable | None = compiled
        self.eager, self.say = eager, say

    def __call__(self, *args, **kwargs):
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as exc:  # compilation errors come in many types
                self.disable(exc)
        return self.eager(*args, **kwargs)

    def disable(self, exc: Exception) -> None:
        """Use eager mode from now on, saying why (once)."""
        if self.compiled is not None:
            self.compiled = None
            self.say(
                f"torch.compile failed ({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}); "
                "training in eager mode"
            )


def compile_engine(
    wrapped: nn.Module,
    item: dict[str, Any],
    batch_size: int,
    device: torch.device,
    autocast: Callable[[], Any],
    with_logits: bool,
    say: Callable[[str], None],
) -> EagerFallback:
    """torch.compile the training forward, warmed up with one forward and backward on `batch_size` copies of
    the sample `item` (the class head included when it trains, `with_logits`: DDP needs every trainable
    parameter's gradient); on a failure, there or at any later compiled call (e.g. a new no-grad graph), the
    step runs in eager mode. The caller zeroes the warm-up's gradients."""
    engine = EagerFallback(torch.compile(wrapped), wrapped, say)
    x = item["x"][None].to(device).repeat(batch_size, *([1] * item["x"].dim()))
    mask = item["mask"][None].to(device).repeat(batch_size, 1)
    try:
        with autocast():
            out = engine(x, channel_mask=mask, return_logits=with_logits)
        pred, logits = out if isinstance(out, tuple) else (out, None)
        loss = pred.float().mean() + (logits.float().mean() if logits is not None else 0)
        loss.backward()
    except Exception as exc:  # the backward's compilation (the forward's is caught by EagerFallback)
        engine.disable(exc)
    return engine


@contextlib.contextmanager
def tf32_policy(enabled: bool) -> Iterator[None]:
    """fp32 matmuls and cuDNN convolutions on TF32 tensor cores (`train.tf32`) or in true fp32, for the block;
    torch's previous switches come back afterwards. No effect on CPUs."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def loader_workers(num_workers: int | None, device: torch.device) -> int:
    """DataLoader worker processes: as configured, or by default 2 on a GPU (the training process mostly waits
    for the device, so loading in workers overlaps compute) and 0 on a CPU (where the training process's own
    threads already use the cores; workers measured slower there, docs/training.md)."""
    if num_workers is not None:
        return num_workers
    return 2 if device.type == "cuda" else 0
