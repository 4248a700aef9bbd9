"""What the training loop records: the training-loss statistics of each logging interval (kept on the device,
read once per log) and the run's log (`metrics.jsonl` and TensorBoard)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from dpot.training import distributed as D


class IntervalStats:
    """Per-dataset training losses of one optimiser step and of the current logging interval.

    Everything stays on the training device: micro-batches add to the step's sums, an applied step adds to the
    interval's, and `read()` sums the interval over ranks and brings it to the host once per log."""

    def __init__(self, names: list[str], device: torch.device):
        self.names = names
        k = len(names)
        f64 = {"dtype": torch.float64, "device": device}
        self._step = torch.zeros(2, k, **f64)  # this step: loss sums, finite counts
        self._step_loss = torch.zeros((), **f64)  # this step: sum of the micro-batch losses
        self._interval = torch.zeros(2 * k + 2, **f64)  # sums, counts, sum of step losses, applied steps
        self.samples = self.steps = 0  # samples (all ranks) and steps since the last read
        self.restart_clock()

    def restart_clock(self) -> None:
        """Start timing the throughput anew (after a log, and after a checkpoint that took its own time)."""
        self.t0 = time.perf_counter()

    def begin_step(self) -> None:
        self._step.zero_()
        self._step_loss.zero_()

    def add_batch(self, per_sample: torch.Tensor, dataset_ids: torch.Tensor, loss: torch.Tensor) -> None:
        """One micro-batch: per-sample losses `(B,)`, their dataset indices `(B,)`, the batch's loss."""
        ps = per_sample.detach().double()
        ids = dataset_ids.to(ps.device)
        finite = torch.isfinite(ps)
        self._step[0].index_add_(0, ids, torch.where(finite, ps, torch.zeros_like(ps)))
        self._step[1].index_add_(0, ids, finite.double())
        self._step_loss += loss.detach().double()

    def step_loss_sum(self) -> torch.Tensor:
        """Sum of this step's micro-batch losses (a device scalar; non-finite when any batch diverged)."""
        return self._step_loss

    def end_step(self, applied: torch.Tensor, grad_accum: int, samples: int) -> None:
        """Count the step's samples; an applied step's losses join the interval (a skipped one's do not).

        `applied`: a boolean device scalar, used without reading it (no host sync)."""
        self.samples += samples
        self.steps += 1
        step = torch.cat(
            [self._step[0], self._step[1], (self._step_loss / grad_accum).view(1), self._step_loss.new_ones(1)]
        )
        self._interval += torch.where(applied, step, torch.zeros_like(step))

    def read(self) -> dict[str, Any]:
        """The interval over all ranks (`loss` None when no step was applied; `steps_per_s` for timing), then
        start a new interval (the clock restarts separately, after the log's own work)."""
        k = len(self.names)
        stats = D.all_reduce_sum(self._interval.clone()).cpu()
        per = {self.names[i]: float(stats[i] / stats[k + i]) for i in range(k) if stats[k + i] > 0}
        dt = time.perf_counter() - self.t0
        out = {
            "loss": float(stats[-2] / stats[-1]) if stats[-1] > 0 else None,
            "loss_per_dataset": per,
            "samples_per_s": self.samples / max(dt, 1e-9),
            "steps_per_s": self.steps / max(dt, 1e-9),
        }
        self._interval.zero_()
        self.samples = self.steps = 0
        return out


class RunLog:
    """`RUN/metrics.jsonl` (one JSON record per log) and TensorBoard scalars under `RUN/tb`.

    On resume, records after the resumed step are dropped from both, so the log reads as one run."""

    def __init__(self, run_dir: Path, step: int, resume: bool):
        from torch.utils.tensorboard import SummaryWriter

        path = run_dir / "metrics.jsonl"
        if resume and path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill
            from dpot.io import write_text

            write_text(path, "".join(f"{line}\n" for line in kept))
        elif not resume:
            path.unlink(missing_ok=True)
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=step + 1 if resume else None)
        self.file = open(path, "a")

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        step = record["step"]
        for key, value in record.items():
            if isinstance(value, dict):
                for name, v in value.items():
                    self.tb.add_scalar(f"{key}/{name}", v, step)
            elif isinstance(value, (int, float)) and key != "step" and value is not None:
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self.file.close()
        self.tb.close()


def step_seconds(rates: list[tuple[int, float]]) -> float | None:
    """Seconds per optimiser step: 1 / the median step rate of the logging intervals after step 2 (warm-up)."""
    warm = [r for step, r in rates if step > 2 and r > 0] or [r for _, r in rates if r > 0]
    return 1.0 / statistics.median(warm) if warm else None
