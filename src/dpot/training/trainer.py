"""The training loop of pre-training and fine-tuning: auto-regressive denoising with a relative-L2 loss.

One `Trainer` = one run directory. Each optimiser step draws `grad_accum` micro-batches of windows from the
balanced sampler, noises the inputs, rolls the model out `t_ar` steps (optionally pushforward), and updates
with clipping. It logs to `metrics.jsonl` and TensorBoard, evaluates short rollouts on held-out trajectories,
and writes atomic checkpoints that resume bit-for-bit (same weights as an uninterrupted run).
Around the loop: `state` saves and restores the run's state, `heldout` evaluates, `engine` builds what the
step calls (torch.compile with an eager fallback), `distributed` wraps the model for DDP/FSDP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dpot.config import dump_yaml
from dpot.data.checks import check_finite
from dpot.data.mixture import BalancedSampler, Mixture
from dpot.errors import DpotError
from dpot.evaluation.metrics import relative_l2_loss
from dpot.training import distributed as D
from dpot.training.checkpoint import find_checkpoint, load_weights
from dpot.training.config import OptimConfig, TrainConfig
from dpot.training.diagnose import blame_config, describe_bad_samples
from dpot.training.engine import compile_engine, loader_workers, tf32_policy
from dpot.training.heldout import heldout_l2re
from dpot.training.logs import IntervalStats, RunLog, step_seconds
from dpot.training.noise import add_noise
from dpot.training.optim import apply_schedule, build_optimizer
from dpot.training.state import restore_run, save_run


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

    def __init__(
        self,
        model: nn.Module,
        mixture: Mixture,
        train: TrainConfig,
        optim: OptimConfig,
        run_dir: str | os.PathLike,
        *,
        config: dict[str, Any] | None = None,
        param_groups: Sequence[dict[str, Any]] | None = None,
        eval_sets: Sequence[Dataset] = (),
        extra: dict[str, Any] | None = None,
        balanced: bool = True,
        num_workers: int | None = None,
    ):
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
        self._request: str | None = None  # why this rank wants to stop (a signal, the time budget)
        self._stop: str | None = None  # why the run stops: set when every rank knows (see `_settle`)

    # ------------------------------------------------------------------------------------------------ setup
    def _setup(self, resume: bool) -> None:
        cfg = self.cfg
        self.env = D.setup(cfg.device)
        dev = self.env.device
        self.autocast = (cfg.precision == "bf16") or (cfg.precision == "auto" and dev.type == "cuda")
        self.model.to(dev)
        ckpt = find_checkpoint(self.run_dir) if resume else None
        if resume and ckpt is None:
            raise DpotError(f"{self.run_dir}: no checkpoint to resume from (expected {self.run_dir}/checkpoint)")
        self.fsdp = self.env.distributed and cfg.strategy == "fsdp"
        if ckpt is not None and not self.fsdp:
            load_weights(self.model, ckpt)
        trainable = [n for n, p in self.model.named_parameters() if p.requires_grad]
        cls_head = getattr(self.model, "cls_head", None)
        if cfg.cls_weight == 0 and cls_head is not None:  # no class loss: the head takes no part (and no sync)
            cls_head.requires_grad_(False)
        self.wrapped = D.wrap(self.model, self.env, cfg.strategy, bf16=self.autocast)
        self.engine: Any = self.wrapped  # what the step calls (a compiled version of `wrapped` with compile)
        self.optimizer = build_optimizer(self._groups(trainable), self.ocfg)
        self._pending: list[tuple[int, torch.Tensor, Any, list]] = []  # step flags on their way to the host
        self.noise_gen = torch.Generator(device=dev)
        self.noise_gen.manual_seed(cfg.seed * 7919 + self.env.rank)
        self.sampler = BalancedSampler(
            self.mixture,
            seed=cfg.seed,
            balanced=self.balanced,
            rank=self.env.rank,
            world_size=self.env.world_size,
            group=cfg.batch_size,
        )
        self.skipped: list[int] = []  # steps skipped for a non-finite loss or gradient (kept in checkpoints)
        self.bad_run = 0  # skipped steps in a row (see `_count_bad`)
        if ckpt is not None:
            restore_run(self, ckpt)
        self.consumed = self.sampler.position  # samples this rank has trained on
        self.loader = DataLoader(
            self.mixture,
            batch_size=cfg.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=loader_workers(self.num_workers, dev),
            pin_memory=dev.type == "cuda",
        )
        if cfg.compile:
            self._compile()

    def _groups(self, trainable: list[str]) -> list[dict[str, Any]]:
        """The optimizer's groups; by default the parameters in `trainable` (those that required a gradient
        before a frozen class head: it stays in the optimizer, without state, so checkpoints keep one layout)."""
        named = dict(self.model.named_parameters())
        if self.param_groups is None:
            return [{"params": [named[n] for n in trainable]}]
        groups = []
        for g in self.param_groups:
            params = [named[p] if isinstance(p, str) else p for p in g["params"]]
            groups.append({**g, "params": params})
        return groups

    def _compile(self) -> None:
        """Run the step through torch.compile, falling back to eager mode on a failure (`engine.compile_engine`)."""
        self.engine = compile_engine(
            self.wrapped,
            self.mixture[0],
            self.cfg.batch_size,
            self.env.device,
            self._autocast,
            self.cfg.cls_weight > 0,
            self.say,
        )
        self.optimizer.zero_grad(set_to_none=True)

    def _autocast(self):
        return torch.autocast(self.env.device.type, dtype=torch.bfloat16, enabled=self.autocast)

    # ------------------------------------------------------------------------------------------ checkpoints
    def save(self) -> Path:
        """Write `RUN/checkpoint/` (atomically; every rank must call this; see `training.state`)."""
        return save_run(self)

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
        # the class head, when it trains, classifies the first window with a gradient (the last under pushforward)
        cls_at = (cfg.t_ar - 1 if cfg.pushforward else 0) if cfg.cls_weight > 0 else -1
        total = x.new_zeros(x.shape[0])
        cls_loss = None
        diverged = torch.zeros((), dtype=torch.bool, device=dev)
        inp = x
        for k in range(cfg.t_ar):
            last = k == cfg.t_ar - 1
            grad = last or not cfg.pushforward
            with torch.set_grad_enabled(grad and torch.is_grad_enabled()), self._autocast():
                noisy = add_noise(inp, cfg.noise, cfg.noise_mode, self.noise_gen)
                out = self.engine(noisy, channel_mask=mask, return_logits=k == cls_at)
            pred, logits = out if isinstance(out, tuple) else (out, None)
            pred = pred.float()
            if logits is not None:
                cls_loss = F.cross_entropy(logits.float(), batch["dataset"].to(dev))
            if grad:
                total = total + relative_l2_loss(pred, y[..., k * step_t : (k + 1) * step_t, :], tmask, "none")
            if not last:  # a rollout that diverged on the way counts as NaN (flagged on the device, not read)
                diverged = diverged | ~torch.isfinite(pred).all()
                nxt = (pred.detach() if cfg.pushforward else pred) * keep
                inp = torch.cat([inp[..., step_t:, :], nxt.to(inp.dtype)], dim=-2)
        if cfg.t_ar > 1:
            total = torch.where(diverged, torch.full_like(total, float("nan")), total)
        return total, cls_loss

    def _train_step(self, batches, stats: IntervalStats) -> torch.Tensor:
        """One optimiser step over `grad_accum` micro-batches (losses go to `stats`), without a host read.

        A non-finite loss (on any rank) or gradient skips the step on the device: the fused optimizer gets
        `found_inf` and leaves weights, moments and step counters as they were. Returns the step's flags, a
        device vector for `_settle`: [ranks with a non-finite loss, ranks asking to stop, gradient non-finite,
        this rank's bad samples per dataset...]."""
        cfg, dev = self.cfg, self.env.device
        stats.begin_step()
        step_batches = []  # (batch, per-sample loss) of this step, to name the culprits of a skipped step
        self.optimizer.zero_grad(set_to_none=True)
        for micro in range(cfg.grad_accum):
            batch = next(batches)
            check_finite(batch, "training batch")  # on the host copy: no device sync
            self.consumed += cfg.batch_size
            # gradients are reduced across ranks once per optimiser step, in the last micro-batch's backward
            sync = micro == cfg.grad_accum - 1
            with contextlib.nullcontext() if sync else D.no_sync(self.wrapped):
                per_sample, cls_loss = self._losses(batch)
                loss = per_sample.mean()
                if cls_loss is not None:
                    loss = loss + cfg.cls_weight * cls_loss
                (loss / cfg.grad_accum).backward()
            stats.add_batch(per_sample, batch["dataset"], loss)
            step_batches.append((batch, per_sample.detach()))
        # one all-reduce tells every rank whether any rank's loss diverged or asked to stop
        ask = torch.full((), float(self._request is not None), dtype=torch.float64, device=dev)
        flags = D.all_reduce_sum(torch.stack([(~torch.isfinite(stats.step_loss_sum())).double(), ask]))
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        max_norm = self.ocfg.clip_grad if self.ocfg.clip_grad is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        grad_bad = ~torch.isfinite(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # FSDP: a DTensor
        ok = (flags[0] == 0) & ~grad_bad
        if self.optimizer.defaults["fused"]:
            self.optimizer.found_inf = (~ok).float()
            self.optimizer.step()
        elif bool(ok):  # complex parameters, no fused optimizer: the skip costs one host read per step
            self.optimizer.step()
        stats.end_step(ok, cfg.grad_accum, cfg.batch_size * cfg.grad_accum * self.env.world_size)
        return torch.cat([flags, grad_bad.double().view(1)]), step_batches

    def _queue(self, flags: torch.Tensor, step_batches: list) -> None:
        """Start copying this step's flags to the host without waiting for them (pinned memory and an event on
        a GPU; on a CPU they are there already); the step's batches wait with them, to name a bad step's
        culprits."""
        if flags.device.type != "cuda":
            self._pending.append((self.step, flags, None, step_batches))
            return
        host = torch.empty(flags.shape, dtype=flags.dtype, pin_memory=True)
        host.copy_(flags, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        self._pending.append((self.step, host, done, step_batches))

    def _settle(self, everything: bool) -> None:
        """Act on queued step flags: skipped steps (message, bad-step count, stop after `max_bad_steps`) and
        stop requests (then `_stop` is set on every rank alike). `everything` (log, eval and checkpoint steps):
        all of them, waiting for the newest; else all but the newest step's, whose copy can still be in flight:
        one small read per step that does not stall a GPU, which by then works on the next step."""
        ready = self._pending if everything else self._pending[:-1]
        self._pending = [] if everything else self._pending[-1:]
        for step, host, done, step_batches in ready:
            if done is not None:
                done.synchronize()
            loss_bad, stop, grad_bad = host.tolist()
            if loss_bad or grad_bad:  # rare: reading the step's losses to name the culprits is fine then
                grad_blame = f"the gradient: {blame_config(self.cfg, self.ocfg)}"
                self._count_bad(step, self._blame(step_batches) if loss_bad else grad_blame)
            else:
                self.bad_run = 0
            if stop and self._stop is None:
                self._stop = self._request or "stop request on another rank"

    def _blame(self, step_batches) -> str:
        """The samples of a skipped step whose loss is not finite: dataset, file, trajectory, window and cause."""
        where = []
        for batch, per_sample in step_batches:
            bad = ~torch.isfinite(per_sample.cpu())
            where += describe_bad_samples(batch, bad, self.mixture.datasets, self.cfg, self.ocfg)
        return "; ".join(where) or "another rank's batch"

    def _count_bad(self, step: int, where: str) -> None:
        """The one place that tracks skipped steps: record that 1-based `step` was skipped (`where` = the
        culprit samples or the gradient) and stop the run after `max_bad_steps` in a row."""
        self.skipped.append(step)
        self.bad_run += 1
        self.say(f"step {step}: non-finite loss on {where}; step skipped")
        if self.bad_run >= self.cfg.max_bad_steps:
            raise DpotError(
                f"training diverged: NaN/Inf loss at step {step} on dataset(s) "
                f"{where} ({self.bad_run} bad steps in a row); lower optim.lr, raise the "
                "warm-up or check the data, then resume from the last checkpoint"
            )

    # ----------------------------------------------------------------------------------------------- eval
    def evaluate(self) -> dict[str, float]:
        """Per-dataset L2RE, in physical units, of a `train.eval_steps`-step rollout from the first T_in frames of
        each held-out trajectory (no noise), under the run's TF32 policy. Every rank computes it (FSDP needs all
        ranks in each forward). It runs the eager model, whatever `train.compile` says."""
        with tf32_policy(self.cfg.tf32):
            return heldout_l2re(
                self.model,
                self.eval_sets,
                self.cfg.batch_size,
                self.cfg.eval_steps,
                self.env.device,
                self._autocast,
                self.fsdp,
            )

    # ---------------------------------------------------------------------------------------------- logging
    def say(self, msg: str) -> None:
        """Print `dpot: msg` on the main rank (through tqdm, so a progress bar stays intact)."""
        if getattr(self, "env", None) is None or self.env.is_main:
            from tqdm import tqdm

            tqdm.write(f"dpot: {msg}", file=sys.stderr)

    def _on_signal(self, signum, frame) -> None:
        self._request = signal.Signals(signum).name

    def _catch_signals(self) -> dict:
        """SIGTERM/SIGINT ask to stop (the run then checkpoints and ends); returns the old handlers."""
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
        record = {
            "step": self.step,
            "loss": interval["loss"],
            "loss_per_dataset": interval["loss_per_dataset"],
            "lr": lr,
            "samples_per_s": interval["samples_per_s"],
        }
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
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
            disable=not (cfg.progress and main),
        )
        result = FitResult(self.run_dir, self.step, None)
        stats = IntervalStats(self.names, self.env.device)
        self._step_rates: list[tuple[int, float]] = []
        batches = iter(self.loader)
        self.model.train()
        precision = contextlib.ExitStack()
        precision.enter_context(tf32_policy(cfg.tf32))  # the whole run, its evaluations included
        try:
            while self.step < cfg.max_steps:
                if stop_at is not None and self._request is None and time.perf_counter() >= stop_at:
                    self._request = "time budget"  # asked before the step, whose all-reduce tells every rank
                lr = apply_schedule(self.optimizer, self.ocfg, self.step, self.total)
                flags, step_batches = self._train_step(batches, stats)
                self.step += 1
                self._queue(flags, step_batches)
                bar.update(1)
                last = self.step == cfg.max_steps
                do_eval = bool(self.eval_sets) and ((cfg.eval_every and self.step % cfg.eval_every == 0) or last)
                log = self.step % cfg.log_every == 0 or do_eval or last
                self._settle(everything=log or self.step % cfg.checkpoint_every == 0)
                if self._stop:  # learnt from the previous step's flags: take in this step's too
                    self._settle(everything=True)
                if log or self._stop:
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
            precision.close()
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
        result.step_seconds = step_seconds(self._step_rates)
        return result
