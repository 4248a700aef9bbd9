"""The training loop of pre-training and fine-tuning: auto-regressive denoising with a relative-L2 loss.

One `Trainer` = one run directory. Each optimiser step draws `grad_accum` micro-batches of windows from the
balanced sampler, noises the inputs, rolls the model out `t_ar` steps (optionally pushforward), and updates
with clipping. It logs to `metrics.jsonl` and TensorBoard, evaluates short rollouts on held-out trajectories,
and writes atomic checkpoints that resume bit-for-bit (same weights as an uninterrupted run).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dpot.config import dump_yaml
from dpot.data.mixture import BalancedSampler, Mixture
from dpot.errors import DpotError
from dpot.evaluation.metrics import l2re, relative_l2_loss
from dpot.training import distributed as D
from dpot.training.checkpoint import find_checkpoint, load_training_state, load_weights, save_checkpoint
from dpot.training.config import OptimConfig, TrainConfig
from dpot.training.noise import add_noise
from dpot.training.optim import apply_schedule, build_optimizer


@dataclass
class FitResult:
    """What `Trainer.fit` did."""

    run_dir: Path
    step: int  # optimiser steps completed
    loss: float | None  # mean training loss over the last logging interval
    eval: dict[str, float] = field(default_factory=dict)  # last per-dataset rollout L2RE
    eval_step: int | None = None  # the step `eval` was measured at
    skipped_steps: list[int] = field(default_factory=list)  # steps dropped for NaN/Inf loss or gradient
    interrupted: str | None = None  # "SIGTERM"/"SIGINT" if a signal stopped the run (after a checkpoint)


class Trainer:
    """Train `model` on windows of `mixture` into `run_dir` (see the module docstring).

    `param_groups`: optional optimiser groups, each a dict with `params` (parameters or their names) and
    optionally its own peak `lr` (layer-wise LR); parameters not listed are not trained. `eval_sets`:
    `TrajectoryDataset`s evaluated every `train.eval_every` steps and at the end. `config`: the full resolved
    config, saved as `RUN/config.yaml` and in every checkpoint; `extra`: more entries for the checkpoint's
    `config.json` (data manifest, normalisation statistics).
    """

    def __init__(self, model: nn.Module, mixture: Mixture, train: TrainConfig, optim: OptimConfig,
                 run_dir: str | os.PathLike, *, config: dict[str, Any] | None = None,
                 param_groups: Sequence[dict[str, Any]] | None = None, eval_sets: Sequence[Dataset] = (),
                 extra: dict[str, Any] | None = None, balanced: bool = True, num_workers: int = 0):
        self.model, self.mixture, self.cfg, self.ocfg = model, mixture, train, optim
        self.run_dir = Path(run_dir)
        self.config = dict(config or {})
        self.param_groups = param_groups
        self.eval_sets = list(eval_sets)
        self.extra = dict(extra or {})
        self.balanced, self.num_workers = balanced, num_workers
        self.names = [str(getattr(d, "name", k)) for k, d in enumerate(mixture.datasets)]
        self.total = optim.schedule_steps or train.max_steps  # schedule length (fixed at the first run)
        self.step = 0
        self._stop: str | None = None

    # ------------------------------------------------------------------------------------------------ setup
    def _setup(self, resume: bool) -> None:
        cfg = self.cfg
        self.env = D.setup(cfg.device)
        dev = self.env.device
        self.autocast = (cfg.precision == "bf16") or (cfg.precision == "auto" and dev.type == "cuda")
        self.model.to(dev)
        ckpt = find_checkpoint(self.run_dir) if resume else None
        if resume and ckpt is None:
            raise DpotError(f"{self.run_dir}: no checkpoint to resume from (expected "
                            f"{self.run_dir}/checkpoint)")
        fsdp = self.env.distributed and cfg.strategy == "fsdp"
        if ckpt is not None and not fsdp:
            load_weights(self.model, ckpt)
        self.engine = D.wrap(self.model, self.env, cfg.strategy, find_unused=cfg.cls_weight == 0)
        self.optimizer = build_optimizer(self._groups(), self.ocfg)
        self.noise_gen = torch.Generator(device=dev)
        self.noise_gen.manual_seed(cfg.seed * 7919 + self.env.rank)
        self.sampler = BalancedSampler(self.mixture, seed=cfg.seed, balanced=self.balanced,
                                       rank=self.env.rank, world_size=self.env.world_size,
                                       group=cfg.batch_size)
        self.skipped: list[int] = []
        if ckpt is not None:
            self._restore(ckpt, fsdp)
        self.consumed = self.sampler.position  # samples this rank has trained on
        self.loader = DataLoader(self.mixture, batch_size=cfg.batch_size, sampler=self.sampler,
                                 drop_last=True, num_workers=self.num_workers, pin_memory=dev.type == "cuda")
        if cfg.compile:
            self._compile()

    def _groups(self) -> list[dict[str, Any]]:
        named = dict(self.model.named_parameters())
        if self.param_groups is None:
            return [{"params": [p for p in named.values() if p.requires_grad]}]
        groups = []
        for g in self.param_groups:
            params = [named[p] if isinstance(p, str) else p for p in g["params"]]
            groups.append({**g, "params": params})
        return groups

    def _compile(self) -> None:
        """torch.compile the training forward; on any failure (e.g. no C++ compiler) keep eager mode."""
        compiled = torch.compile(self.engine)
        item = self.mixture[0]
        x = item["x"][None].to(self.env.device).repeat(self.cfg.batch_size, *([1] * item["x"].dim()))
        mask = item["mask"][None].to(self.env.device).repeat(self.cfg.batch_size, 1)
        try:
            with self._autocast():
                out = compiled(x, channel_mask=mask, return_logits=self.cfg.cls_weight > 0)
            pred = out[0] if isinstance(out, tuple) else out
            pred.float().mean().backward()
            self.engine = compiled
        except Exception as exc:  # compilation errors come in many types
            self._say(f"torch.compile failed ({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}); "
                      "training in eager mode")
        self.optimizer.zero_grad(set_to_none=True)

    def _autocast(self):
        return torch.autocast(self.env.device.type, dtype=torch.bfloat16, enabled=self.autocast)

    # ------------------------------------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        """Everything besides the weights that a bit-exact resume needs (gathered from all ranks)."""
        rng = {"noise": self.noise_gen.get_state(), "torch": torch.get_rng_state()}
        if self.env.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.env.device)
        per_rank = D.gather_objects({"sampler": self.sampler.state_dict(position=self.consumed), "rng": rng})
        if self.env.distributed and self.cfg.strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

            opt = get_optimizer_state_dict(self.model, self.optimizer,
                                           options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        else:
            opt = self.optimizer.state_dict()
        return {"step": self.step, "optimizer": opt, "sampler": [r["sampler"] for r in per_rank],
                "rng": [r["rng"] for r in per_rank], "skipped_steps": list(self.skipped),
                "world_size": self.env.world_size}

    def save(self) -> Path:
        """Write `RUN/checkpoint/` (atomically; every rank must call this)."""
        state = self._state()
        model = self.model
        if self.env.distributed and self.cfg.strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            full = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True,
                                                                             cpu_offload=True))
            if self.env.is_main:
                model = type(self.model)(self.model.config)
                model.load_state_dict(full)
        path = self.run_dir / "checkpoint"
        if self.env.is_main:
            extra = {**self.extra, "train_config": self.config, "step": self.step}
            save_checkpoint(path, model, extra, state)
        D.barrier()
        return path

    def _restore(self, ckpt: Path, fsdp: bool) -> None:
        state = load_training_state(ckpt)
        if fsdp:
            from safetensors.torch import load_file
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_model_state_dict,
                set_optimizer_state_dict,
            )

            weights = load_file(str(ckpt / "model.safetensors"))
            set_model_state_dict(self.model, weights, options=StateDictOptions(full_state_dict=True))
            # parameters that never had a gradient (an unused class head) have no optimizer state
            set_optimizer_state_dict(self.model, self.optimizer, state["optimizer"],
                                     options=StateDictOptions(full_state_dict=True, strict=False))
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.skipped = list(state.get("skipped_steps", []))
        rank = self.env.rank
        if int(state.get("world_size", 1)) != self.env.world_size:
            self._say(f"checkpoint was written with {state.get('world_size')} ranks, resuming with "
                      f"{self.env.world_size}: the data order will differ from an uninterrupted run")
            sampler = dict(state["sampler"][0], rank=rank, world_size=self.env.world_size)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.sampler.load_state_dict(sampler)
            return
        self.sampler.load_state_dict(state["sampler"][rank])
        rng = state["rng"][rank]
        self.noise_gen.set_state(rng["noise"])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.env.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.env.device)

    # --------------------------------------------------------------------------------------------- the step
    def _losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-sample relative L2 summed over the `t_ar` auto-regressive steps `(B,)`, and the class loss."""
        cfg, dev = self.cfg, self.env.device
        x = batch["x"].to(dev, non_blocking=True)
        y = batch["y"].to(dev, non_blocking=True)
        mask = batch["mask"].to(dev, non_blocking=True)
        tmask = batch.get("target_mask", batch["mask"]).to(dev, non_blocking=True)
        step_t = getattr(getattr(self.model, "config", None), "out_timesteps", 1)
        keep = mask.view(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[-1]).to(x.dtype)
        want_logits = cfg.cls_weight > 0
        total = x.new_zeros(x.shape[0])
        cls_loss = None
        inp = x
        for k in range(cfg.t_ar):
            last = k == cfg.t_ar - 1
            grad = last or not cfg.pushforward
            with torch.set_grad_enabled(grad and torch.is_grad_enabled()), self._autocast():
                noisy = add_noise(inp, cfg.noise, cfg.noise_mode, self.noise_gen)
                out = self.engine(noisy, channel_mask=mask, return_logits=want_logits and k == 0)
            pred, logits = out if isinstance(out, tuple) else (out, None)
            pred = pred.float()
            if logits is not None:
                cls_loss = F.cross_entropy(logits.float(), batch["dataset"].to(dev))
            if grad:
                total = total + relative_l2_loss(pred, y[..., k * step_t:(k + 1) * step_t, :], tmask, "none")
            if not last:
                if not bool(torch.isfinite(pred).all()):  # a diverged rollout: report this step as NaN
                    return total + float("nan"), cls_loss
                nxt = (pred.detach() if cfg.pushforward else pred) * keep
                inp = torch.cat([inp[..., step_t:, :], nxt.to(inp.dtype)], dim=-2)
        return total, cls_loss

    def _train_step(self, batches) -> tuple[float, torch.Tensor, torch.Tensor, bool]:
        """One optimiser step over `grad_accum` micro-batches. Returns (mean loss, per-dataset loss sums,
        per-dataset counts, whether the step was applied)."""
        cfg = self.cfg
        k = len(self.names)
        sums = torch.zeros(k, dtype=torch.float64)
        counts = torch.zeros(k, dtype=torch.float64)
        bad_sets: set[str] = set()
        loss_sum = 0.0
        self.optimizer.zero_grad(set_to_none=True)
        for micro in range(cfg.grad_accum):
            batch = next(batches)
            self.consumed += cfg.batch_size
            ddp = isinstance(self.engine, nn.parallel.DistributedDataParallel)
            sync = micro == cfg.grad_accum - 1 or not ddp
            with contextlib.nullcontext() if sync else self.engine.no_sync():
                per_sample, cls_loss = self._losses(batch)
                loss = per_sample.mean()
                if cls_loss is not None:
                    loss = loss + cfg.cls_weight * cls_loss
                (loss / cfg.grad_accum).backward()
            ps = per_sample.detach().double().cpu()
            ids = batch["dataset"].cpu()
            finite = torch.isfinite(ps)
            bad_sets.update(self.names[int(i)] for i in ids[~finite])
            sums.index_add_(0, ids[finite], ps[finite])
            counts.index_add_(0, ids[finite], torch.ones(int(finite.sum()), dtype=torch.float64))
            loss_sum += float(loss.detach())
        flags = torch.tensor([float(not math.isfinite(loss_sum)), float(self._stop is not None)],
                             device=self.env.device)
        D.all_reduce_sum(flags)
        if flags[1] > 0 and self._stop is None:
            self._stop = "signal on another rank"
        ok = bool(flags[0] == 0)
        if ok:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            max_norm = self.ocfg.clip_grad if self.ocfg.clip_grad is not None else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            ok = bool(torch.isfinite(norm))
            if not ok:
                bad_sets.add("(gradient)")
        if ok:
            self.optimizer.step()
            self.bad_run = 0
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped.append(self.step + 1)
            self.bad_run += 1
            where = ", ".join(sorted(bad_sets)) or "another rank's batch"
            self._say(f"step {self.step + 1}: non-finite loss on {where}; step skipped")
            if self.bad_run >= cfg.max_bad_steps:
                raise DpotError(f"training diverged: NaN/Inf loss at step {self.step + 1} on dataset(s) "
                                f"{where} ({self.bad_run} bad steps in a row); lower optim.lr, raise the "
                                "warm-up or check the data, then resume from the last checkpoint")
        return loss_sum / cfg.grad_accum, sums, counts, ok

    # ----------------------------------------------------------------------------------------------- eval
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Per-dataset L2RE of a `train.eval_steps`-step rollout from the first T_in frames of each held-out
        trajectory (no noise). Every rank computes it (FSDP needs all ranks in each forward)."""
        from dpot.models import rollout

        results = {}
        was_training = self.model.training
        self.model.eval()
        for ds in self.eval_sets:
            total, n = 0.0, 0
            for batch in DataLoader(ds, batch_size=self.cfg.batch_size):
                hist = batch["history"].to(self.env.device)
                target = batch["target"].to(self.env.device)
                steps = min(self.cfg.eval_steps, target.shape[-2])
                with self._autocast():
                    pred = rollout(self.model, hist, steps, channel_mask=batch["mask"].to(self.env.device))
                err = l2re(pred.float(), target[..., :steps, :].float(),
                           batch.get("target_mask", batch["mask"]).to(self.env.device))
                total += float(err.sum())
                n += err.shape[0]
            results[str(getattr(ds, "name", len(results)))] = total / max(n, 1)
        self.model.train(was_training)
        if self.env.distributed and self.cfg.strategy == "fsdp":  # forward without backward: reshard
            from torch.distributed.fsdp import FSDPModule

            for module in self.model.modules():
                if isinstance(module, FSDPModule):
                    module.reshard()
        return results

    # ---------------------------------------------------------------------------------------------- logging
    def _say(self, msg: str) -> None:
        if getattr(self, "env", None) is None or self.env.is_main:
            from tqdm import tqdm

            tqdm.write(f"dpot: {msg}", file=sys.stderr)

    def _open_logs(self, resume: bool):
        """metrics.jsonl (entries after the resumed step dropped) and a TensorBoard writer (purged too)."""
        from torch.utils.tensorboard import SummaryWriter

        path = self.run_dir / "metrics.jsonl"
        if resume and path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= self.step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill
            from dpot.io import write_text

            write_text(path, "".join(f"{line}\n" for line in kept))
        elif not resume:
            path.unlink(missing_ok=True)
        tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step + 1 if resume else None)
        return open(path, "a"), tb

    def _log(self, record: dict[str, Any]) -> None:
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()
        step = record["step"]
        for key, value in record.items():
            if isinstance(value, dict):
                for name, v in value.items():
                    self.tb.add_scalar(f"{key}/{name}", v, step)
            elif isinstance(value, (int, float)) and key != "step" and value is not None:
                self.tb.add_scalar(key, value, step)

    # --------------------------------------------------------------------------------------------- the loop
    def _on_signal(self, signum, frame) -> None:
        self._stop = signal.Signals(signum).name

    def fit(self, resume: bool = False, stop_at: float | None = None) -> FitResult:
        """Train up to `train.max_steps` (continuing from `RUN/checkpoint` if `resume`).

        `stop_at` (a `time.perf_counter()` value) is a time limit: the run then stops as on SIGTERM, after the
        current step, with a checkpoint, and can be resumed."""
        cfg = self.cfg
        self._setup(resume)
        main = self.env.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.config:
                dump_yaml(self.config, self.run_dir / "config.yaml")
            self.metrics_file, self.tb = self._open_logs(resume)
        handlers = {}
        if hasattr(signal, "SIGTERM"):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                for sig in (signal.SIGTERM, signal.SIGINT):
                    handlers[sig] = signal.signal(sig, self._on_signal)
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr,
                   disable=not (cfg.progress and main))
        result = FitResult(self.run_dir, self.step, None)
        self.bad_run = 0
        k = len(self.names)
        acc_sums, acc_counts = torch.zeros(k, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
        acc_loss, acc_n = 0.0, 0
        batches = iter(self.loader)
        self.model.train()
        t0, samples0 = time.perf_counter(), 0
        try:
            while self.step < cfg.max_steps:
                if stop_at is not None and self._stop is None and time.perf_counter() >= stop_at:
                    self._stop = "time budget"  # set before the step, whose all-reduce tells every rank
                lr = apply_schedule(self.optimizer, self.ocfg, self.step, self.total)
                loss, sums, counts, ok = self._train_step(batches)
                self.step += 1
                samples0 += cfg.batch_size * cfg.grad_accum * self.env.world_size
                if ok:
                    acc_loss, acc_n = acc_loss + loss, acc_n + 1
                    acc_sums += sums
                    acc_counts += counts
                bar.update(1)
                do_eval = bool(self.eval_sets) and ((cfg.eval_every and self.step % cfg.eval_every == 0)
                                                    or self.step == cfg.max_steps)
                if self.step % cfg.log_every == 0 or do_eval or self.step == cfg.max_steps or self._stop:
                    tail = torch.tensor([acc_loss, acc_n], dtype=torch.float64)
                    stats = D.all_reduce_sum(torch.cat([acc_sums, acc_counts, tail]))
                    mean = float(stats[-2] / stats[-1]) if stats[-1] > 0 else float("nan")
                    per = {self.names[i]: float(stats[i] / stats[k + i])
                           for i in range(k) if stats[k + i] > 0}
                    dt = time.perf_counter() - t0
                    record = {"step": self.step, "loss": mean if stats[-1] > 0 else None,
                              "loss_per_dataset": per, "lr": lr, "samples_per_s": samples0 / max(dt, 1e-9)}
                    if self.skipped and self.skipped[-1] > self.step - cfg.log_every:
                        record["skipped_steps"] = [s for s in self.skipped if s > self.step - cfg.log_every]
                    if do_eval:
                        result.eval, result.eval_step = self.evaluate(), self.step
                        record["eval_l2re"] = result.eval
                    result.loss = record["loss"]
                    if main:
                        self._log(record)
                        bar.set_postfix(loss=f"{mean:.4g}", samples_s=f"{record['samples_per_s']:.1f}")
                    acc_sums.zero_()
                    acc_counts.zero_()
                    acc_loss, acc_n = 0.0, 0
                    t0, samples0 = time.perf_counter(), 0
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps or self._stop:
                    self.save()
                    t0 = time.perf_counter()
                if self._stop:
                    result.interrupted = self._stop
                    self._say(f"{self._stop}: stopped at step {self.step}, checkpoint saved; continue with "
                              f"`dpot pretrain --resume {self.run_dir}`")
                    break
            D.barrier()  # leave together: a rank that exits while another still talks to it can abort
        finally:
            bar.close()
            for sig, old in handlers.items():
                signal.signal(sig, old)
            del batches
            if main:
                self.metrics_file.close()
                self.tb.close()
            if self.env.owns_group:  # every rank passed the barrier at the end of the last save
                D.teardown()
        result.step = self.step
        result.skipped_steps = list(self.skipped)
        return result
