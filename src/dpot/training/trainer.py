"""The training loop of pre-training and fine-tuning: auto-regressive denoising with a relative-L2 loss.

One `Trainer` = one run directory. Each optimiser step draws `grad_accum` micro-batches of windows from the
balanced sampler, noises the inputs, rolls the model out `t_ar` steps (optionally pushforward), and updates
with clipping. It logs to `metrics.jsonl` and TensorBoard, evaluates short rollouts on held-out trajectories,
and writes atomic checkpoints that resume bit-for-bit (same weights as an uninterrupted run).
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
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
from dpot.training.diagnose import blame_config, describe_bad_samples
from dpot.training.logs import IntervalStats, RunLog
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
    step_seconds: float | None = None  # measured seconds per optimiser step (median after two warm-up steps)


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
        self.skipped: list[int] = []  # steps skipped for a non-finite loss or gradient (kept in checkpoints)
        self.bad_run = 0  # skipped steps in a row (see `_count_bad`)
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
            self.say(f"torch.compile failed ({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}); "
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
            self.say(f"checkpoint was written with {state.get('world_size')} ranks, resuming with "
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

    def _train_step(self, batches, stats: IntervalStats) -> bool:
        """One optimiser step over `grad_accum` micro-batches (losses go to `stats`); whether it was applied.

        A non-finite loss (on any rank) or gradient skips the step; `max_bad_steps` in a row stop the run."""
        cfg = self.cfg
        stats.begin_step()
        step_batches = []  # (batch, per-sample loss) of this step, to name the culprits of a skipped step
        self.optimizer.zero_grad(set_to_none=True)
        ddp = isinstance(self.engine, nn.parallel.DistributedDataParallel)
        for micro in range(cfg.grad_accum):
            batch = next(batches)
            self.consumed += cfg.batch_size
            sync = micro == cfg.grad_accum - 1 or not ddp
            with contextlib.nullcontext() if sync else self.engine.no_sync():
                per_sample, cls_loss = self._losses(batch)
                loss = per_sample.mean()
                if cls_loss is not None:
                    loss = loss + cfg.cls_weight * cls_loss
                (loss / cfg.grad_accum).backward()
            stats.add_batch(per_sample, batch["dataset"], loss)
            step_batches.append((batch, per_sample.detach()))
        # one all-reduce tells every rank whether any rank's loss diverged or got a stop signal
        stop = torch.tensor(float(self._stop is not None), dtype=torch.float64, device=self.env.device)
        flags = D.all_reduce_sum(torch.stack([(~torch.isfinite(stats.step_loss_sum())).double(), stop]))
        if flags[1] > 0 and self._stop is None:
            self._stop = "signal on another rank"
        ok = loss_ok = bool(flags[0] == 0)
        if loss_ok:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            max_norm = self.ocfg.clip_grad if self.ocfg.clip_grad is not None else float("inf")
            ok = bool(torch.isfinite(torch.nn.utils.clip_grad_norm_(params, max_norm)))
        if ok:
            self.optimizer.step()
            self._count_bad(None)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            grad_blame = f"the gradient: {blame_config(cfg, self.ocfg)}"
            self._count_bad(self._blame(step_batches) if not loss_ok else grad_blame)
        stats.end_step(ok, cfg.grad_accum, cfg.batch_size * cfg.grad_accum * self.env.world_size)
        return ok

    def _blame(self, step_batches) -> str:
        """The samples of a skipped step whose loss is not finite: dataset, file, trajectory, window and cause."""
        where = []
        for batch, per_sample in step_batches:
            bad = ~torch.isfinite(per_sample.cpu())
            where += describe_bad_samples(batch, bad, self.mixture.datasets, self.cfg, self.ocfg)
        return "; ".join(where) or "another rank's batch"

    def _count_bad(self, where: str | None) -> None:
        """The one place that tracks skipped steps: `where` None = the step was applied; else record the skip
        (`where` = the culprit samples or the gradient) and stop the run after `max_bad_steps` in a row."""
        if where is None:
            self.bad_run = 0
            return
        self.skipped.append(self.step + 1)
        self.bad_run += 1
        self.say(f"step {self.step + 1}: non-finite loss on {where}; step skipped")
        if self.bad_run >= self.cfg.max_bad_steps:
            raise DpotError(f"training diverged: NaN/Inf loss at step {self.step + 1} on dataset(s) "
                            f"{where} ({self.bad_run} bad steps in a row); lower optim.lr, raise the "
                            "warm-up or check the data, then resume from the last checkpoint")

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
    def say(self, msg: str) -> None:
        """Print `dpot: msg` on the main rank (through tqdm, so a progress bar stays intact)."""
        if getattr(self, "env", None) is None or self.env.is_main:
            from tqdm import tqdm

            tqdm.write(f"dpot: {msg}", file=sys.stderr)

    def _on_signal(self, signum, frame) -> None:
        self._stop = signal.Signals(signum).name

    def _catch_signals(self) -> dict:
        """SIGTERM/SIGINT set `_stop` (the run then checkpoints and ends); returns the old handlers."""
        handlers = {}
        if hasattr(signal, "SIGTERM"):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                for sig in (signal.SIGTERM, signal.SIGINT):
                    handlers[sig] = signal.signal(sig, self._on_signal)
        return handlers

    def _log_interval(self, stats: IntervalStats, lr: float, do_eval: bool, result: FitResult, bar) -> None:
        """Read the interval's statistics (all ranks), evaluate if due, and write one metrics record."""
        cfg = self.cfg
        interval = stats.read()
        self._step_rates.append((self.step, interval.pop("steps_per_s")))
        record = {"step": self.step, "loss": interval["loss"], "loss_per_dataset": interval["loss_per_dataset"],
                  "lr": lr, "samples_per_s": interval["samples_per_s"]}
        if self.skipped and self.skipped[-1] > self.step - cfg.log_every:
            record["skipped_steps"] = [s for s in self.skipped if s > self.step - cfg.log_every]
        if do_eval:
            result.eval, result.eval_step = self.evaluate(), self.step
            record["eval_l2re"] = result.eval
        result.loss = record["loss"]
        if self.env.is_main:
            self.log.write(record)
            mean = record["loss"] if record["loss"] is not None else float("nan")
            bar.set_postfix(loss=f"{mean:.4g}", samples_s=f"{record['samples_per_s']:.1f}")

    def fit(self, resume: bool = False, stop_at: float | None = None) -> FitResult:
        """Train up to `train.max_steps` (continuing from `RUN/checkpoint` if `resume`).

        `stop_at` (a `time.perf_counter()` value) is a time limit: the run then stops as on SIGTERM, after the
        current step, with a checkpoint, and can be resumed."""
        from tqdm import tqdm

        cfg = self.cfg
        self._setup(resume)
        main = self.env.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.config:
                dump_yaml(self.config, self.run_dir / "config.yaml")
            self.log = RunLog(self.run_dir, self.step, resume)
        handlers = self._catch_signals()
        bar = tqdm(total=cfg.max_steps, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr,
                   disable=not (cfg.progress and main))
        result = FitResult(self.run_dir, self.step, None)
        stats = IntervalStats(self.names, self.env.device)
        self._step_rates: list[tuple[int, float]] = []
        batches = iter(self.loader)
        self.model.train()
        try:
            while self.step < cfg.max_steps:
                if stop_at is not None and self._stop is None and time.perf_counter() >= stop_at:
                    self._stop = "time budget"  # set before the step, whose all-reduce tells every rank
                lr = apply_schedule(self.optimizer, self.ocfg, self.step, self.total)
                self._train_step(batches, stats)
                self.step += 1
                bar.update(1)
                last = self.step == cfg.max_steps
                do_eval = bool(self.eval_sets) and ((cfg.eval_every and self.step % cfg.eval_every == 0) or last)
                if self.step % cfg.log_every == 0 or do_eval or last or self._stop:
                    self._log_interval(stats, lr, do_eval, result, bar)
                    stats.restart_clock()
                if self.step % cfg.checkpoint_every == 0 or last or self._stop:
                    self.save()
                    stats.restart_clock()
                if self._stop:
                    result.interrupted = self._stop
                    self.say(f"{self._stop}: stopped at step {self.step}, checkpoint saved in {self.run_dir}")
                    break
            D.barrier()  # leave together: a rank that exits while another still talks to it can abort
        finally:
            bar.close()
            for sig, old in handlers.items():
                signal.signal(sig, old)
            del batches
            if main:
                self.log.close()
            if self.env.owns_group:  # every rank passed the barrier at the end of the last save
                D.teardown()
        result.step = self.step
        result.skipped_steps = list(self.skipped)
        result.step_seconds = _step_seconds(self._step_rates)
        return result


def _step_seconds(rates: list[tuple[int, float]]) -> float | None:
    """Seconds per optimiser step: 1 / the median step rate of the logging intervals after step 2 (warm-up)."""
    warm = [r for step, r in rates if step > 2 and r > 0] or [r for _, r in rates if r > 0]
    return 1.0 / statistics.median(warm) if warm else None
