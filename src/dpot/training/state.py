"""A run's resumable state: gathering it from every rank into `RUN/checkpoint/` and restoring it, so that a
resumed run trains bit-for-bit like an uninterrupted one (optimizer, sampler position, RNG, skipped steps)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dpot.training import distributed as D
from dpot.training.checkpoint import load_training_state, save_checkpoint

if TYPE_CHECKING:
    from dpot.training.trainer import Trainer


def training_state(t: Trainer) -> dict[str, Any]:
    """Everything besides the weights that a bit-exact resume needs (gathered from all ranks)."""
    rng = {"noise": t.noise_gen.get_state(), "torch": torch.get_rng_state()}
    if t.env.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(t.env.device)
    per_rank = D.gather_objects({"sampler": t.sampler.state_dict(position=t.consumed), "rng": rng})
    if t.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        opt = get_optimizer_state_dict(
            t.model, t.optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
    else:
        opt = t.optimizer.state_dict()
    return {
        "step": t.step,
        "optimizer": opt,
        "sampler": [r["sampler"] for r in per_rank],
        "rng": [r["rng"] for r in per_rank],
        "skipped_steps": list(t.skipped),
        "world_size": t.env.world_size,
    }


def save_run(t: Trainer) -> Path:
    """Write `RUN/checkpoint/` (atomically; every rank must call this)."""
    state = training_state(t)
    model = t.model
    if t.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(t.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if t.env.is_main:
            model = type(t.model)(t.model.config)
            model.load_state_dict(full)
    path = t.run_dir / "checkpoint"
    if t.env.is_main:
        extra = {**t.extra, "train_config": t.config, "step": t.step}
        save_checkpoint(path, model, extra, state)
    D.barrier()
    return path


def restore_run(t: Trainer, ckpt: Path) -> None:
    """Load the optimizer, step, skipped steps, sampler position and RNG of `ckpt` into the set-up trainer
    (under FSDP the weights too, sharded). A different world size keeps the position but not the data order."""
    state = load_training_state(ckpt)
    if t.fsdp:
        from safetensors.torch import load_file
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        weights = load_file(str(ckpt / "model.safetensors"))
        set_model_state_dict(t.model, weights, options=StateDictOptions(full_state_dict=True))
        # parameters that never had a gradient (an unused class head) have no optimizer state
        set_optimizer_state_dict(
            t.model, t.optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True, strict=False)
        )
    else:
        t.optimizer.load_state_dict(state["optimizer"])
    t.step = int(state["step"])
    t.skipped = list(state.get("skipped_steps", []))
    rank = t.env.rank
    if int(state.get("world_size", 1)) != t.env.world_size:
        t.say(
            f"checkpoint was written with {state.get('world_size')} ranks, resuming with "
            f"{t.env.world_size}: the data order will differ from an uninterrupted run"
        )
        sampler = dict(state["sampler"][0], rank=rank, world_size=t.env.world_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t.sampler.load_state_dict(sampler)
        return
    t.sampler.load_state_dict(state["sampler"][rank])
    rng = state["rng"][rank]
    t.noise_gen.set_state(rng["noise"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and t.env.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], t.env.device)
