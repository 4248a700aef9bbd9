"""Process-group set-up for `torchrun` (DDP by default, FSDP for large models) and small collective helpers.

Without torchrun (no WORLD_SIZE in the environment) everything runs in one process and these are no-ops.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistEnv:
    """Where this process sits: rank, world size and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # this call created the process group (so its caller should destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str = "auto", n_gpus: int | None = None) -> torch.device:
    """This process's device for `train.device`: under torchrun (WORLD_SIZE > 1) a GPU device, with or without
    an index (`cuda`, `cuda:0`), means the GPU of this rank's LOCAL_RANK (modulo the GPUs visible), so that ranks
    never share one GPU; in one process `cuda` is GPU 0 and `cuda:N` is GPU N. `n_gpus`: GPUs visible (default:
    torch's count)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type != "cuda":
        return dev
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        n = torch.cuda.device_count() if n_gpus is None else n_gpus
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % max(n, 1))
    return torch.device("cuda", dev.index or 0)


def setup(device: str = "auto") -> DistEnv:
    """Join the torchrun process group if there is one (nccl on GPUs, gloo on CPUs) and pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    from dpot.evaluation.evaluate import pick_device

    dev = resolve_device(str(pick_device(device, "train.device")))  # checked, then this rank's GPU
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = world > 1 and not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank, world, local, dev, owns)


def teardown() -> None:
    """Leave the process group (if this process joined one)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks in place (no-op in one process); CPU tensors work under nccl too."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        if dist.get_backend() == "nccl" and t.device.type != "cuda":
            on_gpu = t.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(on_gpu, op=dist.ReduceOp.SUM)
            t.copy_(on_gpu)
        else:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (a one-element list in one process)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def wrap(model: nn.Module, env: DistEnv, strategy: str, bf16: bool = False) -> nn.Module:
    """The model as the training loop calls it: itself, DDP, or FSDP (fully_shard per block, then the root).

    Every trainable parameter must get a gradient in every backward (DDP runs without
    `find_unused_parameters`, which would walk the graph each step): freeze (`requires_grad=False`) what a run
    does not train. `bf16` (FSDP): the blocks' parameters are all-gathered and computed in bf16 and their
    gradients reduced in fp32, while the sharded master weights and the optimizer stay fp32; the root's own
    parameters (embeddings, time aggregation, heads) stay fp32, as autocast keeps their precision-sensitive
    parts."""
    if not env.distributed:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
        for block in getattr(model, "blocks", []):
            fully_shard(block, **({"mp_policy": mp} if mp else {}))
        fully_shard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [env.device.index] if env.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)


@contextlib.contextmanager
def no_sync(wrapped: nn.Module) -> Iterator[None]:
    """Accumulate gradients locally, without the gradient all-reduce / reduce-scatter (DDP `no_sync`, FSDP2
    `set_requires_gradient_sync(False)`); `wrapped` is what `wrap` returned (not a torch.compile wrapper of
    it). A plain module: nothing to skip."""
    from torch.distributed.fsdp import FSDPModule
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(wrapped, DistributedDataParallel):
        with wrapped.no_sync():
            yield
    elif isinstance(wrapped, FSDPModule):
        wrapped.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            wrapped.set_requires_gradient_sync(True)
    else:
        yield
