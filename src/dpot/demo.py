"""`dpot demo`: the main job end to end on the embedded default corpus, within a wall-clock budget.

1. generate the default corpus if absent (`dpot generate default`);
2. pre-train a small DPOT on every family except the held-out one (steps sized by a measured step time);
3. fine-tune it on a few trajectories of the held-out family; train a from-scratch DPOT and the
   neuraloperator FNO on the same trajectories for the same number of steps, batch and learning rate;
4. evaluate the pre-trained DPOT zero-shot on the pre-training datasets (next to repeating the last frame);
5. evaluate all models on the held-out test split and write `report.md` with tables and plots.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpot.errors import DpotError

PHASE_DIRS = ("pretrain", "finetune", "scratch", "fno", "calibrate", "eval_zero_shot", "eval_holdout")


@dataclass
class DemoPlan:
    """What the demo runs. Step counts left at null are sized from measured step times to fit the budget."""

    preset: str = "default"  # corpus generated when the data folder has none
    holdout: str = "shallow_water_2d"  # fine-tuning dataset; its whole family (same `pde`) is held out
    pretrain_config: str = "demo"  # configs/pretrain/<name>.yaml, or a path to a YAML file
    pretrain_overrides: list[str] = field(default_factory=list)  # extra key=value for pre-training
    budget_seconds: float = 840.0  # the whole demo, generation included (DESIGN: 15 minutes)
    pretrain_share: float = 0.6  # of the training time left after generation; the three fine-tuning runs share the rest
    eval_reserve_seconds: float = 90.0  # kept after training for the evaluations and the report
    pretrain_steps: int | None = None  # null = from the budget
    finetune_steps: int | None = None  # null = from the budget (the same for all three models)
    min_steps: int = 20
    calibration_steps: int = 8  # throw-away steps timed before each training phase (first two ignored)
    n_trajectories: int = 8  # few-shot fine-tuning set
    finetune_batch: int = 8
    finetune_lr: float = 1e-3
    finetune_noise: float = 0.02  # input noise kappa (rms mode) for all three models, as in pre-training
    finetune_overrides: list[str] = field(default_factory=list)  # extra key=value for all three runs
    fno_modes: int = 12
    fno_width: int = 32
    fno_layers: int = 4
    eval_trajectories: int | None = None  # per dataset on the test split; null = all
    rollout: int | None = None  # null = every frame after T_in
    progress: bool = True


def _say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _config_path(name: str) -> Path:
    """`demo` -> configs/pretrain/demo.yaml (in the working folder or the source checkout); a path as is."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise DpotError(f"demo: pretrain_config {name}: no such file")
        return p
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        cand = root / "configs" / "pretrain" / f"{name}.yaml"
        if cand.is_file():
            return cand
    raise DpotError(
        f"demo: configs/pretrain/{name}.yaml not found; run from the dpot source folder or pass "
        "pretrain_config=PATH.yaml"
    )


class LastFrame(nn.Module):
    """The persistence baseline: every predicted frame repeats the last input frame."""

    model_type = "persistence"

    def __init__(self, config: Any):
        super().__init__()
        self.config = config

    def forward(self, x: torch.Tensor, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        return x[..., -1:, :].expand(*x.shape[:-2], self.config.out_timesteps, x.shape[-1])


def _calibration(run_dir: Path, wall: float) -> tuple[float, float]:
    """(seconds per optimiser step, fixed seconds per run) from a calibration run's metrics.jsonl and wall time.

    The step time is the median over the steps after the first two (warm-up); the rest of the wall time (data
    set-up, warm-up, the final evaluation, the checkpoint) is the per-run overhead."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    cfg = json.loads((run_dir / "checkpoint" / "config.json").read_text())["train_config"]["train"]
    per_step = cfg["batch_size"] * cfg["grad_accum"]
    rates = [r["samples_per_s"] for r in rows if r["step"] > 2 and r.get("samples_per_s")]
    if not rates:
        rates = [r["samples_per_s"] for r in rows if r.get("samples_per_s")]
    step_s = per_step / statistics.median(rates)
    n = max(r["step"] for r in rows)
    return step_s, max(0.0, wall - n * step_s)


def _steps_for(plan: DemoPlan, seconds: float, step_s: float, overhead: float) -> int:
    """Steps that fit `seconds` (5 % kept as a margin for jitter), at least `min_steps`."""
    return max(plan.min_steps, int(0.95 * (seconds - overhead) / step_s))


def _family(data_root: Path, holdout: str) -> tuple[Path, list[str], list[str]]:
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


def _pretrain(
    plan: DemoPlan,
    data_root: Path,
    exclude: list[str],
    pretrain_sets: list[str],
    out: Path,
    steps: int | None,
    seconds: float,
) -> tuple[Path, dict[str, Any]]:
    """Calibrate (unless `steps` is given), then pre-train into `out/pretrain`; returns (checkpoint, info)."""
    from dpot.training.pretrain import load_pretrain_config, run_pretrain

    path = _config_path(plan.pretrain_config)
    base = [
        f"data.root={data_root}",
        f"data.datasets=[{','.join(pretrain_sets)}]",
        f"train.progress={'true' if plan.progress else 'false'}",
        "train.eval_every=0",
        "train.eval_trajectories=2",
        "train.eval_steps=2",
        *plan.pretrain_overrides,
    ]
    info: dict[str, Any] = {"config": str(path), "datasets": pretrain_sets, "excluded": exclude}
    calibrated = steps is None
    if calibrated:
        calib = out / "calibrate" / "pretrain"
        cfg = load_pretrain_config(
            path,
            [
                *base,
                f"train.max_steps={plan.calibration_steps}",
                "train.log_every=1",
                "train.progress=false",
                f"train.checkpoint_every={plan.calibration_steps}",
            ],
        )
        t0 = time.perf_counter()
        run_pretrain(replace(cfg, out=str(calib)))
        wall = time.perf_counter() - t0
        step_s, overhead = _calibration(calib, wall)
        seconds -= wall
        steps = _steps_for(plan, seconds, step_s, overhead)
        info.update(measured_step_seconds=step_s, measured_overhead_seconds=overhead)
        _say(
            f"pre-training: {step_s:.3f} s/step + {overhead:.0f} s per run measured -> {steps} steps for "
            f"{seconds:.0f} s"
        )
    cfg = load_pretrain_config(
        path,
        [
            *base,
            f"train.max_steps={steps}",
            f"optim.schedule_steps={steps}",
            f"train.checkpoint_every={max(steps // 4, 1)}",
        ],
    )
    t0 = time.perf_counter()
    # a calibrated step count fits the budget; the time limit holds it if the machine slows down afterwards
    # (a spent budget still trains min_steps: the later phases need a pre-trained model)
    stop_at = t0 + seconds if calibrated and steps > plan.min_steps else None
    result = run_pretrain(replace(cfg, out=str(out / "pretrain")), stop_at=stop_at)
    info.update(
        steps=result.step,
        seconds=time.perf_counter() - t0,
        final_loss=result.loss,
        batch_size=cfg.train.batch_size,
        t_in=cfg.data.t_in,
    )
    return out / "pretrain" / "checkpoint", info


def _finetune_cfg(
    plan: DemoPlan, ckpt: Path, holdout_dir: Path, run: Path, model: str, steps: int, extra: list[str] = ()
):
    from dpot.training.finetune import load_finetune_config

    over = [
        f"model={model}",
        f"train.max_steps={steps}",
        f"optim.schedule_steps={steps}",
        f"train.n_trajectories={plan.n_trajectories}",
        f"train.batch_size={plan.finetune_batch}",
        f"optim.lr={plan.finetune_lr}",
        f"train.noise={plan.finetune_noise}",
        "train.noise_mode=rms",
        "finetune.channels=widen",
        f"fno.modes={plan.fno_modes}",
        f"fno.width={plan.fno_width}",
        f"fno.n_layers={plan.fno_layers}",
        f"train.checkpoint_every={max(steps, 1)}",
        f"train.progress={'true' if plan.progress else 'false'}",
        "train.eval_trajectories=2",
        "train.eval_steps=2",
        *plan.finetune_overrides,
        *extra,
    ]
    cfg = load_finetune_config(None, over)
    return replace(cfg, init=str(ckpt), out=str(run), data=replace(cfg.data, path=str(holdout_dir)))


def _finetune_all(
    plan: DemoPlan, ckpt: Path, holdout_dir: Path, out: Path, steps: int | None, seconds: float
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Fine-tune DPOT; train DPOT from scratch and the FNO on the same trajectories with the same budget.

    Budgeting by time (`steps` None), each model gets the same wall-clock share: its step count comes from its
    own measured step time (so every run completes its learning-rate schedule), with a hard limit as a safety
    net. With fixed `steps`, all three train exactly that many steps."""
    from dpot.training.finetune import run_finetune

    runs = {
        "DPOT fine-tuned": ("finetune", "pretrained"),
        "DPOT from scratch": ("scratch", "scratch"),
        "FNO": ("fno", "fno"),
    }
    info: dict[str, Any] = {}
    end = time.perf_counter() + seconds if steps is None else None  # a hard limit only when budgeting by time
    planned = {label: steps for label in runs}
    if steps is None:
        t0 = time.perf_counter()
        measured = {}
        for label, (folder, model) in runs.items():
            calib = out / "calibrate" / folder
            cfg = _finetune_cfg(plan, ckpt, holdout_dir, calib, model, plan.calibration_steps, ["train.log_every=1"])
            c0 = time.perf_counter()
            run_finetune(cfg)
            measured[label] = _calibration(calib, time.perf_counter() - c0)
        per_run = (seconds - (time.perf_counter() - t0)) / len(runs)
        planned = {lab: _steps_for(plan, per_run, *measured[lab]) for lab in runs}
        info["measured_step_seconds"] = {lab: m[0] for lab, m in measured.items()}
        info["measured_overhead_seconds"] = {lab: m[1] for lab, m in measured.items()}
        info["seconds_per_model"] = per_run
        _say(
            f"fine-tuning: {per_run:.0f} s per model; measured s/step "
            + ", ".join(f"{lab} {m[0]:.3f} -> {planned[lab]} steps" for lab, m in measured.items())
        )
    ckpts: dict[str, Path] = {}
    for i, (label, (folder, model)) in enumerate(runs.items()):
        n = planned[label]
        _say(f"training {label} ({n} steps, {plan.n_trajectories} trajectories)")
        t0 = time.perf_counter()
        stop_at = None if end is None else t0 + max(end - t0, 0.0) / (len(runs) - i)  # this run's share
        result = run_finetune(_finetune_cfg(plan, ckpt, holdout_dir, out / folder, model, n), stop_at=stop_at)
        if result.interrupted:
            _say(f"{label}: stopped by the time budget at step {result.step} of {n}")
        info[label] = {
            "steps": result.step,
            "planned_steps": n,
            "seconds": time.perf_counter() - t0,
            "final_loss": result.loss,
            "run": str(out / folder),
            "stopped_by_budget": bool(result.interrupted),
        }
        ckpts[label] = out / folder / "checkpoint"
    info["budget"] = "time" if steps is None else "steps"
    return ckpts, info


def _evaluate(models: dict[str, nn.Module], dirs: list[Path], plan: DemoPlan, normalize: dict[str, bool]):
    from dpot.evaluation.evaluate import evaluate_model

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
                normalize=normalize.get(label, False),
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
    from dpot.config import load_config
    from dpot.evaluation.evaluate import trained_with_normalization, write_evaluation
    from dpot.models import load_model
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
        _say(f"generating the {plan.preset!r} corpus into {data_root} (dpot generate {plan.preset})")
        from dpot.cli import main

        if main(["generate", plan.preset, "--out", str(data_root)]) != 0:
            raise DpotError(f"demo: `dpot generate {plan.preset} --out {data_root}` failed (message above)")
    timings["generate"] = time.perf_counter() - t0
    holdout_dir, family, pretrain_sets = _family(data_root, plan.holdout)
    for name in PHASE_DIRS:  # the demo's own outputs from an earlier run
        if (out / name).exists():
            shutil.rmtree(out / name)

    # budget: a deadline for training (the evaluations get `eval_reserve_seconds` after it); each phase sizes
    # its steps from measured times, so an overrun of one phase is taken out of the next
    deadline = t_start + plan.budget_seconds - plan.eval_reserve_seconds
    if deadline <= time.perf_counter():
        _say(f"the {plan.budget_seconds:.0f} s budget is already spent; training min_steps={plan.min_steps} steps")

    # 2. pre-training
    _say(f"pre-training on {', '.join(pretrain_sets)} (held out: {', '.join(family)})")
    t0 = time.perf_counter()
    pre_s = (deadline - t0) * plan.pretrain_share
    ckpt, pre_info = _pretrain(plan, data_root, family, pretrain_sets, out, plan.pretrain_steps, pre_s)
    timings["pretrain"] = time.perf_counter() - t0
    pretrained = load_model(ckpt)
    pre_norm = trained_with_normalization(ckpt)

    # 3. fine-tuning, from scratch, FNO: the rest of the training time
    t0 = time.perf_counter()
    ckpts, ft_info = _finetune_all(plan, ckpt, holdout_dir, out, plan.finetune_steps, deadline - t0)
    timings["finetune_all"] = time.perf_counter() - t0

    # 4. zero-shot on the pre-training datasets, and on the held-out one when its channels fit
    t0 = time.perf_counter()
    zs_dirs = [data_root / n for n in pretrain_sets]
    holdout_channels = task_shape(holdout_dir, _task_data(), pretrained.config.in_timesteps).channels
    zero_shot_holdout = holdout_channels <= pretrained.config.in_channels
    if zero_shot_holdout:
        zs_dirs.append(holdout_dir)
    persistence = LastFrame(pretrained.config)
    _say("zero-shot evaluation")
    zs_results, zs_snaps = _evaluate(
        {"DPOT pre-trained": pretrained, "repeat last frame": persistence},
        zs_dirs,
        plan,
        {"DPOT pre-trained": pre_norm},
    )
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
    norms = {label: trained_with_normalization(p) for label, p in ckpts.items()}
    if zero_shot_holdout:
        models["DPOT zero-shot"] = pretrained
        norms["DPOT zero-shot"] = pre_norm
    models["repeat last frame"] = LastFrame(models["DPOT fine-tuned"].config)
    _say(f"evaluating on the held-out {holdout_dir.name} test split")
    ho_results, ho_snaps = _evaluate(models, [holdout_dir], plan, norms)
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
        "plan": _plain(plan),
        "generated": generated,
        "data": str(data_root),
        "holdout": holdout_dir.name,
        "family": family,
        "pretrain": pre_info,
        "finetune": ft_info,
        "parameters": params,
        "timings_s": timings,
        "zero_shot": {lab: {n: _brief(m) for n, m in per.items()} for lab, per in zs_results.items()},
        "holdout_results": {lab: _brief(per[holdout_dir.name]) for lab, per in ho_results.items()},
        "machine": _machine(),
    }
    from dpot.io import write_json, write_text

    write_json(out / "demo.json", summary)
    report = out / "report.md"
    write_text(report, demo_markdown(summary, zs_results, ho_results, holdout_dir.name))
    _say(f"done in {timings['total']:.0f} s; report: {report}")
    return report


def _task_data():
    from dpot.training.finetune import FinetuneDataConfig

    return FinetuneDataConfig()


def _plain(obj: Any) -> Any:
    from dpot.config import to_dict

    return to_dict(obj)


def _brief(m: dict[str, Any]) -> dict[str, Any]:
    """The numbers the report quotes from one evaluation."""
    steps = m["l2re_per_step"]
    return {
        "l2re": m["l2re"],
        "nrmse": m["nrmse"],
        "vrmse": m["vrmse"],
        "l2re_step1": steps[0],
        "l2re_last": steps[-1],
        "steps": m["steps"],
        "n_trajectories": m["n_trajectories"],
    }


def _machine() -> str:
    import platform

    return (
        f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} logical CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads)"
    ).replace("  ", " ")


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def demo_markdown(
    s: dict[str, Any], zs: dict[str, dict[str, dict]], ho: dict[str, dict[str, dict]], holdout: str
) -> str:
    """The demo report: setup, zero-shot table, held-out comparison, plain conclusions, links to plots."""
    from dpot.evaluation.plots import safe_name
    from dpot.evaluation.report import table

    pre, ft, t = s["pretrain"], s["finetune"], s["timings_s"]
    gen_note = "" if s["generated"] else ", corpus already present"
    lines = [
        "# dpot demo report",
        "",
        f"Machine: {s['machine']}. Total wall time: {t['total']:.0f} s "
        f"(generation {t['generate']:.0f} s{gen_note}, pre-training {t['pretrain']:.0f} s, fine-tuning runs "
        f"{t['finetune_all']:.0f} s, evaluations {t['zero_shot_eval'] + t['holdout_eval']:.0f} s).",
        "",
        "## Setup",
        "",
        f"- Corpus: `{s['data']}`. Held-out family: {', '.join(s['family'])} (fine-tuned on `{holdout}`).",
        f"- Pre-training: {', '.join(pre['datasets'])}; {pre['steps']} steps of batch {pre['batch_size']}, "
        f"T_in={pre['t_in']}, config `{pre['config']}`"
        + (f", {pre['measured_step_seconds']:.3f} s/step measured" if "measured_step_seconds" in pre else "")
        + f"; {s['parameters']['DPOT pre-trained']:,} parameters.",
        (
            f"- Fine-tuning budget: the same wall-clock time for each of the three (~{ft['seconds_per_model']:.0f} s;"
            " steps sized per model from its measured step time, see the table)"
            if ft["budget"] == "time"
            else f"- Fine-tuning budget: the same {ft['DPOT fine-tuned']['planned_steps']} steps for each of the three"
        )
        + f", batch {s['plan']['finetune_batch']}, the first {s['plan']['n_trajectories']} training trajectories "
        f"of `{holdout}`, lr {s['plan']['finetune_lr']}, input noise κ={s['plan']['finetune_noise']} (rms).",
        "- Evaluation: auto-regressive rollout from the first T_in frames of every test trajectory, at the "
        "native grid; L2RE = the paper's relative L2 over the whole rollout (per channel, averaged).",
        "",
    ]
    rows = [
        [
            lab,
            f"{s['parameters'].get(lab, 0):,}" if s["parameters"].get(lab) else "–",
            (f"{ft[lab]['steps']}" + (" (time budget)" if ft[lab].get("stopped_by_budget") else ""))
            if lab in ft
            else "–",
            f"{ft[lab]['seconds']:.0f}" if lab in ft else "–",
        ]
        for lab in ho
    ]
    lines += ["## Models", "", table(["model", "parameters", "steps (held-out task)", "training s"], rows), ""]
    names = list(dict.fromkeys(n for per in zs.values() for n in per))
    labs = list(zs)
    rows = [[n, *[_fmt(zs[lab].get(n, {}).get("l2re")) for lab in labs]] for n in names]
    lines += [
        "## Zero-shot: pre-trained DPOT on the test splits (L2RE, full rollout)",
        "",
        table(["dataset", *labs], rows),
        "",
        "Plots: [zero-shot report](eval_zero_shot/report.md).",
        "",
    ]
    rows = []
    for lab, per in ho.items():
        m = per[holdout]
        rows.append(
            [
                lab,
                _fmt(m["l2re"]),
                _fmt(m["nrmse"]),
                _fmt(m["vrmse"]),
                _fmt(m["l2re_per_step"][0]),
                _fmt(m["l2re_per_step"][-1]),
                f"{m['frames_per_s']:.0f}",
            ]
        )
    lines += [
        f"## Held-out family: `{holdout}` ({ho[next(iter(ho))][holdout]['steps']}-step rollout, "
        f"{ho[next(iter(ho))][holdout]['n_trajectories']} test trajectories)",
        "",
        table(["model", "L2RE", "nRMSE", "VRMSE", "L2RE step 1", "L2RE last step", "rollout frames/s"], rows),
        "",
        f"![error vs step](eval_holdout/error_{safe_name(holdout)}.png)",
        "",
    ]
    for lab in ("DPOT fine-tuned", "FNO"):
        if lab in ho:
            lines += [f"![{lab}](eval_holdout/snapshots_{safe_name(lab)}_{safe_name(holdout)}.png)", ""]
    lines += ["## What this shows", ""] + [f"- {c}" for c in conclusions(s, zs, ho, holdout)] + [""]
    lines += [
        "Numbers are from one run with one seed on a CPU-sized model and budget; they show the pipeline "
        "working end to end, not the paper's accuracy (see docs/downstream.md for the paper's numbers).",
        "",
    ]
    return "\n".join(lines)


def _budget(s: dict[str, Any]) -> str:
    ft = s["finetune"]
    return "wall-clock time" if ft["budget"] == "time" else f"{ft['DPOT fine-tuned']['planned_steps']} steps"


def conclusions(
    s: dict[str, Any], zs: dict[str, dict[str, dict]], ho: dict[str, dict[str, dict]], holdout: str
) -> list[str]:
    """Plain statements read off the numbers, including where DPOT loses."""
    out = []
    l2 = {lab: per[holdout]["l2re"] for lab, per in ho.items()}
    ft, sc, fno, rep = (l2.get(k) for k in ("DPOT fine-tuned", "DPOT from scratch", "FNO", "repeat last frame"))
    ranking = sorted(l2, key=l2.get)
    out.append("Held-out ranking by L2RE (best first): " + ", ".join(f"{k} {_fmt(l2[k])}" for k in ranking) + ".")
    if ft is not None and sc is not None:
        if ft < sc:
            out.append(
                f"Pre-training helped: with the same {_budget(s)} and {s['plan']['n_trajectories']} trajectories, "
                f"fine-tuned DPOT's L2RE is {sc / ft:.2f}x lower than DPOT trained from scratch."
            )
        else:
            out.append(
                f"Pre-training did NOT help here: DPOT from scratch ({_fmt(sc)}) matched or beat the "
                f"fine-tuned DPOT ({_fmt(ft)}) at the same budget."
            )
    if ft is not None and fno is not None:
        if ft < fno:
            out.append(f"Fine-tuned DPOT beat the FNO baseline ({_fmt(ft)} vs {_fmt(fno)}).")
        else:
            out.append(f"DPOT loses to the FNO baseline here: FNO {_fmt(fno)} vs fine-tuned DPOT {_fmt(ft)}.")
    if rep is not None:
        worse = [k for k, v in l2.items() if k != "repeat last frame" and v >= rep]
        if worse:
            out.append(f"Not better than repeating the last frame ({_fmt(rep)}): {', '.join(worse)}.")
    steps1 = {lab: per[holdout]["l2re_per_step"][0] for lab, per in ho.items()}
    best1 = min(steps1, key=steps1.get)
    if best1 != ranking[0]:
        out.append(
            f"One-step error and full-rollout error disagree: {best1} is best at step 1 "
            f"({_fmt(steps1[best1])}), {ranking[0]} over the whole rollout."
        )
    if "DPOT pre-trained" in zs and "repeat last frame" in zs:
        beat = [n for n, m in zs["DPOT pre-trained"].items() if m["l2re"] < zs["repeat last frame"][n]["l2re"]]
        lost = [n for n in zs["DPOT pre-trained"] if n not in beat]
        out.append(
            f"Zero-shot, the pre-trained DPOT beats repeating the last frame on {len(beat)} of "
            f"{len(beat) + len(lost)} datasets" + (f"; it loses on {', '.join(lost)}." if lost else ".")
        )
    zero = l2.get("DPOT zero-shot")
    if zero is not None and ft is not None:
        out.append(
            f"Zero-shot on the held-out family (never seen in pre-training) DPOT scores {_fmt(zero)}; "
            f"fine-tuning on {s['plan']['n_trajectories']} trajectories brings it to {_fmt(ft)}."
        )
    return out
