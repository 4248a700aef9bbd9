"""`dpot demo`: the main job end to end on the embedded default corpus, within a wall-clock budget.

1. generate the default corpus if absent (`dpot.solvers.generate`, what `dpot generate default` runs);
2. pre-train a small DPOT on every family except the held-out one (steps sized by a measured step time);
3. fine-tune it on a few trajectories of the held-out family; train a from-scratch DPOT and the
   neuraloperator FNO on the same trajectories for the same number of steps, batch and learning rate;
4. evaluate the pre-trained DPOT zero-shot on the pre-training datasets (next to repeating the last frame);
5. evaluate all models on the held-out test split and write `report.md` with tables and plots.

The plan is `DemoPlan`; the budgeted training phases are in `dpot.workflows.budget`, the report in
`dpot.evaluation.demo_report`.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from dpot.errors import DpotError
from dpot.models.config import FNOSize
from dpot.workflows.budget import HOLDOUT_RUNS, holdout_phase, pretrain_phase, say

PHASE_DIRS = (
    "pretrain",
    *(folder for folder, _ in HOLDOUT_RUNS.values()),
    "calibrate",
    "eval_zero_shot",
    "eval_holdout",
)


@dataclass
class DemoPlan:
    """What the demo runs. Step counts left at null are sized from measured step times to fit the budget."""

    preset: str = "default"  # corpus generated when the data folder has none
    holdout: str = "shallow_water_2d"  # fine-tuning dataset; its whole family (same `pde`) is held out
    pretrain_config: str = "demo"  # a packaged pretrain preset name, or a path to a YAML file
    pretrain_overrides: list[str] = field(default_factory=list)  # extra key=value for pre-training
    budget_seconds: float = 840.0  # the whole demo, generation included (15 minutes with a margin)
    pretrain_share: float = 0.6  # of the training time left after generation; the three fine-tuning runs share the rest
    eval_reserve_seconds: float = 90.0  # kept after training for the evaluations and the report
    pretrain_steps: int | None = None  # null = from the budget
    finetune_steps: int | None = None  # null = from the budget (the same for all three models)
    min_steps: int = 20
    calibration_steps: int = 8  # throw-away steps timed before each training phase (first two ignored)
    n_trajectories: int = 8  # few-shot fine-tuning set
    finetune_batch: int = 8
    finetune_lr: float = 3e-3  # the FNO-gap study's choice on validation (docs/fno-gap.md)
    finetune_noise: float = 0.02  # input noise kappa (rms mode) for all three models, as in pre-training
    finetune_normalize: bool = True  # standardise the held-out channels (scored in physical units): the study's
    # biggest single gain
    finetune_overrides: list[str] = field(default_factory=list)  # extra key=value for all three runs
    fno: FNOSize = field(default_factory=FNOSize)  # the FNO contender (fno.modes, fno.width, fno.n_layers)
    eval_trajectories: int | None = None  # per dataset on the test split; null = all
    rollout: int | None = None  # null = every frame after T_in
    progress: bool = True


def generate_corpus(preset: str, data_root: Path) -> None:
    """Generate a solver preset into `data_root` as `dpot generate PRESET --out DIR` does."""
    from dpot.solvers.generate import generate
    from dpot.solvers.presets import PRESETS

    if preset not in PRESETS:
        raise DpotError(f"demo: preset={preset!r} is not a corpus preset ({', '.join(PRESETS)})")
    p = PRESETS[preset]
    generate(list(p.datasets), data_root, workers=0, part_size=p.part_size, preset=p.name, log=True)


def split_family(data_root: Path, holdout: str) -> tuple[Path, list[str], list[str]]:
    """The held-out dataset folder, the datasets of its family (same `pde`), and the pre-training ones."""
    from dpot.data.format import dataset_dirs, open_split

    found = {p.name: p for p in dataset_dirs(data_root)}
    if holdout not in found:
        raise DpotError(f"demo: holdout={holdout!r} is not a dataset under {data_root} (found: {', '.join(found)})")
    metas = {n: open_split(p, "train").meta for n, p in found.items()}
    pde = metas[holdout].pde
    family = [n for n, m in metas.items() if m.pde == pde]
    ndim = metas[holdout].ndim
    pretrain = [n for n, m in metas.items() if m.pde != pde and not m.steady and m.ndim == ndim]
    if not pretrain:
        raise DpotError(f"demo: no {ndim}D time-dependent dataset outside the {pde!r} family to pre-train on")
    return found[holdout], family, pretrain


def evaluate_all(models: dict[str, nn.Module], dirs: list[Path], plan: DemoPlan, ckpts: dict[str, Path]):
    """Every model on the test split of every dataset folder: (results[label][dataset], snapshots); a model
    with a checkpoint in `ckpts` sees the data standardised as that checkpoint says."""
    from dpot.evaluation.evaluate import evaluate_model, normalizer_for
    from dpot.models.baselines import LastFrame

    results: dict[str, dict[str, dict]] = {}
    snaps: dict[str, dict[str, Any]] = {}
    for label, model in models.items():
        for d in dirs:
            res, snap = evaluate_model(
                model,
                d,
                split="test",
                rollout=plan.rollout,
                n_trajectories=plan.eval_trajectories,
                normalizer=normalizer_for(ckpts[label], d) if label in ckpts else None,
            )
            results.setdefault(label, {})[d.name] = res
            if not isinstance(model, LastFrame):  # its snapshots would only repeat the input
                snaps.setdefault(label, {})[d.name] = snap
    return results, snaps


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run_demo(
    out: str | os.PathLike = "demo_out",
    data: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    overrides: list[str] | tuple = (),
) -> Path:
    """Run the demo into `out` and return the path of `report.md`."""
    from dpot.config import load_config, to_dict
    from dpot.evaluation.demo_report import brief, demo_markdown
    from dpot.evaluation.evaluate import write_evaluation
    from dpot.io import write_json, write_text
    from dpot.machine import machine_info
    from dpot.models import load_model
    from dpot.models.baselines import LastFrame
    from dpot.training.config import FinetuneDataConfig
    from dpot.training.finetune import task_shape

    t_start = time.perf_counter()
    plan = load_config(DemoPlan, config, overrides)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_root = Path(data) if data is not None else out / "data"
    timings: dict[str, float] = {}

    # 1. the corpus
    t0 = time.perf_counter()
    generated = not (data_root / "manifest.json").is_file()
    if generated:
        say(f"generating the {plan.preset!r} corpus into {data_root} (dpot generate {plan.preset})")
        generate_corpus(plan.preset, data_root)
    timings["generate"] = time.perf_counter() - t0
    holdout_dir, family, pretrain_sets = split_family(data_root, plan.holdout)
    for name in PHASE_DIRS:  # the demo's own outputs from an earlier run
        if (out / name).exists():
            shutil.rmtree(out / name)

    # budget: a deadline for training (the evaluations get `eval_reserve_seconds` after it); each phase sizes
    # its steps from measured times, so an overrun of one phase is taken out of the next
    deadline = t_start + plan.budget_seconds - plan.eval_reserve_seconds
    if deadline <= time.perf_counter():
        say(f"the {plan.budget_seconds:.0f} s budget is already spent; training min_steps={plan.min_steps} steps")

    # 2. pre-training
    say(f"pre-training on {', '.join(pretrain_sets)} (held out: {', '.join(family)})")
    t0 = time.perf_counter()
    ckpt, pre_info = pretrain_phase(plan, data_root, family, pretrain_sets, out, (deadline - t0) * plan.pretrain_share)
    timings["pretrain"] = time.perf_counter() - t0
    pretrained = load_model(ckpt)

    # 3. fine-tuning, from scratch, FNO: the rest of the training time
    t0 = time.perf_counter()
    ckpts, ft_info = holdout_phase(plan, ckpt, holdout_dir, out, deadline - t0)
    timings["finetune_all"] = time.perf_counter() - t0

    # 4. zero-shot on the pre-training datasets, and on the held-out one when its channels fit
    t0 = time.perf_counter()
    zs_dirs = [data_root / n for n in pretrain_sets]
    holdout_channels = task_shape(holdout_dir, FinetuneDataConfig(), pretrained.config.in_timesteps).channels
    zero_shot_holdout = holdout_channels <= pretrained.config.in_channels
    if zero_shot_holdout:
        zs_dirs.append(holdout_dir)
    say("zero-shot evaluation")
    zero_shot = {"DPOT pre-trained": pretrained, "repeat last frame": LastFrame(pretrained.config)}
    zs_results, zs_snaps = evaluate_all(zero_shot, zs_dirs, plan, {"DPOT pre-trained": ckpt})
    write_evaluation(
        out / "eval_zero_shot",
        zs_results,
        zs_snaps,
        {"DPOT pre-trained": str(ckpt)},
        title="Zero-shot evaluation of the pre-trained DPOT",
    )
    timings["zero_shot_eval"] = time.perf_counter() - t0

    # 5. held-out evaluation
    t0 = time.perf_counter()
    models = {label: load_model(p) for label, p in ckpts.items()}
    sources = dict(ckpts)
    if zero_shot_holdout:
        models["DPOT zero-shot"] = pretrained
        sources["DPOT zero-shot"] = ckpt
    models["repeat last frame"] = LastFrame(models["DPOT fine-tuned"].config)
    say(f"evaluating on the held-out {holdout_dir.name} test split")
    ho_results, ho_snaps = evaluate_all(models, [holdout_dir], plan, sources)
    write_evaluation(
        out / "eval_holdout",
        ho_results,
        ho_snaps,
        {k: str(v) for k, v in ckpts.items()},
        title=f"Held-out family: {holdout_dir.name}",
    )
    timings["holdout_eval"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start

    params = {label: _count(m) for label, m in models.items() if _count(m)}
    params["DPOT pre-trained"] = _count(pretrained)
    summary = {
        "plan": to_dict(plan),
        "generated": generated,
        "data": str(data_root),
        "holdout": holdout_dir.name,
        "family": family,
        "pretrain": pre_info,
        "finetune": ft_info,
        "parameters": params,
        "timings_s": timings,
        "zero_shot": {lab: {n: brief(m) for n, m in per.items()} for lab, per in zs_results.items()},
        "holdout_results": {lab: brief(per[holdout_dir.name]) for lab, per in ho_results.items()},
        "machine": machine_info(),
    }
    write_json(out / "demo.json", summary)
    report = out / "report.md"
    write_text(report, demo_markdown(summary, zs_results, ho_results, holdout_dir.name))
    say(f"done in {timings['total']:.0f} s; report: {report}")
    return report
