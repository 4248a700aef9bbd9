"""The paper's four claims at CPU scale; regenerates `docs/results.md` and `docs/results/*.png` from scratch.

    python studies/claims.py                 # --scale full: ~1 h on 2 idle cores (the committed docs/results.md)
    python studies/claims.py --scale small   # ~10 min: shorter training, fewer data sizes, no L size
    python studies/claims.py --report-only   # seconds: rebuild the page and plots from docs/results/claims.json

1. Denoising: pre-train with input noise kappa in {0, small, medium, large} (`train.noise_mode=rms`, the
   paper's eps 0 / 5e-5 / 5e-4 / 5e-3 at 128^2 x 10 frames); one-step and full-rollout L2RE per dataset.
2. Pre-training helps: fine-tune the pre-trained model vs the same DPOT from scratch vs neuraloperator's FNO
   on a held-out family (shallow water) at several numbers of training trajectories.
3. Scaling: zero-shot L2RE on the pre-training test sets against model size (>= 3 sizes, same steps).
4. Balanced vs uniform sampling over an unbalanced mixture (one dataset has 8x fewer trajectories).

Everything goes through the library (`dpot.solvers.generate.generate`, `dpot.training.run_pretrain` and
`run_finetune`, `dpot.evaluation.evaluate_model`). Runs go to `--work` (default `runs/claims-<scale>`); a run
whose result file exists with the same settings is reused, so an interrupted study continues (`--fresh` starts
over). Runs execute in `--jobs` processes of one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dpot.machine import machine_info, machine_label

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PRETRAIN_CONFIG = "demo"  # the packaged preset dpot/configs/pretrain/demo.yaml
HOLDOUT = "shallow_water_2d"
SMALL_SET = "diffusion_reaction_2d"  # the under-represented dataset of claim 4
NOISE_NAMES = ("none", "small", "medium", "large")
BASE_NOISE = 0.02  # kappa of every run that is not the noise sweep (the demo config's, ~ the paper's best)
# claim 2's contenders: label -> (`model=`, `finetune.channels=`). `widen` maps the held-out family's channels onto
# the checkpoint's first ones; `reinit` keeps the pre-trained backbone with a fresh patch embedding and head.
FT_MODELS = {
    "pretrained": ("pretrained", "widen"),
    "pretrained_reinit": ("pretrained", "reinit"),
    "scratch": ("scratch", "widen"),
    "fno": ("fno", "widen"),
}
FT_LABELS = {
    "pretrained": "DPOT fine-tuned, widen",
    "pretrained_reinit": "DPOT fine-tuned, reinit",
    "scratch": "DPOT from scratch",
    "fno": "FNO",
}
FT_SHORT = {"pretrained": "widen", "pretrained_reinit": "reinit", "scratch": "scratch", "fno": "FNO"}


@dataclass(frozen=True)
class Scale:
    """Sizes of one study scale: corpus, training steps, seeds and the grids of the four experiments."""

    res: int
    frames: int  # stored frames per trajectory; rollouts run frames - t_in steps
    n_train: int  # training trajectories of the large datasets (and of the held-out one)
    n_train_small: int  # training trajectories of SMALL_SET
    n_test: int
    batch: int
    pretrain_steps: int
    finetune_steps: int
    noise_levels: tuple[float, ...]  # kappa for NOISE_NAMES
    seeds: int  # seeds of claims 1 and 4 (and the base run of claim 3)
    sizes: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]  # (label, DPOTConfig overrides) over `demo`
    shots: tuple[int, ...]  # fine-tuning trajectories (claim 2)
    shot_seeds: int
    t_in: int = 10
    long_finetune_steps: int = 0  # claim 2 again at the largest n with this many steps (0 = not run)


SIZES_SMALL = (
    ("XS", (("embed_dim", 32), ("depth", 2), ("n_blocks", 4))),
    ("demo", ()),
    ("M", (("embed_dim", 128), ("depth", 4), ("n_blocks", 8))),
)
SCALES: dict[str, Scale] = {
    # a plumbing check (a minute or two): every code path, numbers meaningless
    "smoke": Scale(
        res=16,
        frames=13,
        n_train=8,
        n_train_small=2,
        n_test=2,
        batch=4,
        pretrain_steps=3,
        finetune_steps=2,
        noise_levels=(0.0, 0.02, 0.2, 2.0),
        seeds=1,
        sizes=SIZES_SMALL[:3],
        shots=(1, 4),
        shot_seeds=1,
        long_finetune_steps=4,
    ),
    "small": Scale(
        res=32,
        frames=30,
        n_train=32,
        n_train_small=4,
        n_test=8,
        batch=8,
        pretrain_steps=600,
        finetune_steps=300,
        noise_levels=(0.0, 0.02, 0.2, 2.0),
        seeds=3,
        sizes=SIZES_SMALL,
        shots=(2, 8, 32),
        shot_seeds=3,
        long_finetune_steps=900,
    ),
    "full": Scale(
        res=32,
        frames=30,
        n_train=64,
        n_train_small=8,
        n_test=16,
        batch=8,
        pretrain_steps=4000,
        finetune_steps=1500,
        noise_levels=(0.0, 0.02, 0.2, 2.0),
        seeds=3,
        sizes=(*SIZES_SMALL, ("L", (("embed_dim", 256), ("depth", 4), ("n_blocks", 8)))),
        shots=(2, 4, 8, 16, 32, 64),
        shot_seeds=3,
        long_finetune_steps=4500,
    ),
}


# ------------------------------------------------------------------------------------------------- corpus
def corpus_specs(s: Scale) -> list:
    """The study's corpus: two NS viscosities and diffusion-reaction to pre-train on, shallow water held out."""
    from dpot.solvers.presets import DatasetSpec

    return [
        DatasetSpec(
            "ns2d_nu1e-3", "ns2d_vorticity", s.n_train, 0, s.n_test, res=s.res, frames=s.frames, params={"nu": 1e-3}
        ),
        DatasetSpec(
            "ns2d_nu1e-4", "ns2d_vorticity", s.n_train, 0, s.n_test, res=s.res, frames=s.frames, params={"nu": 1e-4}
        ),
        DatasetSpec(
            SMALL_SET,
            "diffusion_reaction_2d",
            s.n_train_small,
            0,
            s.n_test,
            res=s.res,
            frames=s.frames,
            params={"dt": 0.2},
        ),
        DatasetSpec(
            HOLDOUT,
            "shallow_water_2d",
            max(s.n_train, max(s.shots)),
            0,
            s.n_test,
            res=s.res,
            frames=s.frames,
            params={"dt": 0.04},
        ),
    ]


def pretrain_sets() -> list[str]:
    return ["ns2d_nu1e-3", "ns2d_nu1e-4", SMALL_SET]


# --------------------------------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Job:
    """One training run plus its evaluation; `key` names its folder and result file under the work dir."""

    key: str
    kind: str  # "pretrain" or "finetune"
    overrides: tuple[str, ...]
    seed: int
    model: str = ""  # finetune: pretrained / scratch / fno
    init: str = ""  # finetune: key of the pre-training run to start from
    shots: int = 0
    info: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _opts(pairs: Sequence[tuple[str, Any]]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"


def pretrain_job(
    s: Scale, noise: float, seed: int, size: tuple[str, tuple] = SIZES_SMALL[1], balanced: bool = True
) -> Job:
    label, opts = size
    key = f"pre_k{noise:g}_{label}_{'bal' if balanced else 'uni'}_s{seed}"
    over = (
        f"train.noise={noise}",
        "train.noise_mode=rms",
        f"train.seed={seed}",
        f"train.max_steps={s.pretrain_steps}",
        f"train.batch_size={s.batch}",
        f"data.balanced={'true' if balanced else 'false'}",
        f"data.t_in={s.t_in}",
        f"model.options={_opts((('channel_mask', 'true'), ('symmetric_modes', 'true'), *opts))}",
        f"optim.warmup={max(1, s.pretrain_steps // 10)}",
    )
    return Job(key, "pretrain", over, seed, info={"noise": noise, "size": label, "balanced": balanced})


def plan_jobs(s: Scale) -> tuple[list[Job], list[Job]]:
    """(pre-training jobs, fine-tuning jobs) of the four claims; shared runs appear once."""
    pre: dict[str, Job] = {}
    for seed in range(s.seeds):
        for k in s.noise_levels:  # claim 1 (its kappa=BASE_NOISE runs are the base of claims 2-4)
            j = pretrain_job(s, k, seed)
            pre[j.key] = j
        j = pretrain_job(s, BASE_NOISE, seed, balanced=False)  # claim 4
        pre[j.key] = j
    for size in s.sizes:  # claim 3 (seed 0; the demo size is a claim-1 run)
        j = pretrain_job(s, BASE_NOISE, 0, size)
        pre[j.key] = j
    base = pretrain_job(s, BASE_NOISE, 0).key
    ft = []
    for n in s.shots:  # claim 2
        for seed in range(s.shot_seeds):
            for label in FT_MODELS:
                ft.append(finetune_job(s, label, n, seed, base, s.finetune_steps))
    if s.long_finetune_steps:  # is a gap between the contenders a matter of training length?
        for seed in range(s.shot_seeds):
            for label in ("pretrained_reinit", "scratch", "fno"):
                ft.append(finetune_job(s, label, max(s.shots), seed, base, s.long_finetune_steps))
    return list(pre.values()), ft


def finetune_job(s: Scale, label: str, n: int, seed: int, init: str, steps: int) -> Job:
    """Claim 2's run of contender `label` on the first n held-out trajectories; a longer run is tagged `long`."""
    model, channels = FT_MODELS[label]
    over = (
        f"model={model}",
        f"train.max_steps={steps}",
        f"data.n_trajectories={n}",
        f"train.batch_size={s.batch}",
        f"train.seed={seed}",
        f"finetune.channels={channels}",
        f"optim.warmup={max(1, steps // 10)}",
    )
    if steps == s.finetune_steps:
        return Job(f"ft_{label}_n{n}_s{seed}", "finetune", over, seed, label, init, n)
    return Job(f"ft_{label}_n{n}_{steps}steps_s{seed}", "finetune", over, seed, label, init, n, info={"long": True})


def _job_dict(job: Job) -> dict[str, Any]:
    d = asdict(job)
    d["overrides"] = list(d["overrides"])
    return d


def _evaluate(ckpt: Path, datasets: list[Path], n_test: int) -> dict[str, Any]:
    from dpot.evaluation.evaluate import evaluate_model, normalizer_for
    from dpot.models import load_model

    model = load_model(ckpt)
    out = {}
    for d in datasets:
        m, _ = evaluate_model(model, d, split="test", n_trajectories=n_test, normalizer=normalizer_for(ckpt, d))
        steps = m["l2re_per_step"]
        out[d.name] = {
            "rollout": m["l2re"],
            "one_step": steps[0],
            "last_step": steps[-1],
            "steps": m["steps"],
            "per_step": steps,
        }
    return {"eval": out, "params": sum(p.numel() for p in model.parameters())}


def run_job(job: Job, work: Path, s: Scale) -> dict[str, Any]:
    """Train and evaluate one job (in a worker process); writes and returns `work/results/<key>.json`."""
    import torch

    from dpot.io import write_json

    torch.set_num_threads(1)
    run = work / "runs" / job.key
    if run.exists():
        shutil.rmtree(run)
    t0, c0 = time.perf_counter(), time.process_time()
    common = (
        "train.progress=false",
        "train.eval_every=0",
        "train.log_every=10",
        "train.eval_trajectories=2",
        f"train.eval_steps={s.frames - s.t_in}",
        f"train.checkpoint_every={10**6}",
    )
    if job.kind == "pretrain":
        from dpot.training.pretrain import load_pretrain_config, run_pretrain

        cfg = load_pretrain_config(
            PRETRAIN_CONFIG,
            [f"data.root={work / 'data'}", f"data.datasets=[{','.join(pretrain_sets())}]", *common, *job.overrides],
        )
        fit = run_pretrain(replace(cfg, out=str(run)))
        datasets = [work / "data" / n for n in pretrain_sets()]
    else:
        from dpot.training.finetune import load_finetune_config, run_finetune

        cfg = load_finetune_config(None, [*common, *job.overrides])
        cfg = replace(
            cfg,
            init=str(work / "runs" / job.init / "checkpoint"),
            out=str(run),
            data=replace(cfg.data, path=str(work / "data" / HOLDOUT)),
        )
        fit = run_finetune(cfg)
        datasets = [work / "data" / HOLDOUT]
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    result = {
        "job": _job_dict(job),
        "steps": fit.step,
        "final_loss": fit.loss,
        "train_seconds": train_s,
        "train_cpu_seconds": train_cpu,
        **_evaluate(run / "checkpoint", datasets, s.n_test),
    }
    result["cpu_seconds"] = time.process_time() - c0
    write_json(work / "results" / f"{job.key}.json", result)
    return result


def persistence(work: Path, s: Scale) -> dict[str, dict[str, float]]:
    """L2RE of repeating the last input frame (`dpot.models.baselines.LastFrame`) on every test set: the trivial bar."""
    from dpot.evaluation.evaluate import evaluate_model
    from dpot.models import preset_config
    from dpot.models.baselines import LastFrame

    model = LastFrame(preset_config("demo", img_size=s.res, in_channels=3, out_channels=3, in_timesteps=s.t_in))
    out = {}
    for name in [*pretrain_sets(), HOLDOUT]:
        m, _ = evaluate_model(model, work / "data" / name, split="test", n_trajectories=s.n_test)
        out[name] = {"rollout": m["l2re"], "one_step": m["l2re_per_step"][0]}
    return out


def channel_breakdown(work: Path, s: Scale) -> dict[str, dict[str, float]]:
    """Rollout L2RE per channel of the seed-0 models of claim 2 at the largest n (where the error comes from)."""
    from dpot.evaluation.evaluate import evaluate_model
    from dpot.models import load_model

    out = {}
    for model in FT_MODELS:
        ckpt = work / "runs" / f"ft_{model}_n{max(s.shots)}_s0" / "checkpoint"
        m, _ = evaluate_model(load_model(ckpt), work / "data" / HOLDOUT, split="test", n_trajectories=s.n_test)
        out[model] = {c: v["l2re"] for c, v in m["per_channel"].items()}
    return out


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def stored(jobs: list[Job], work: Path) -> dict[str, dict]:
    """The results already on disk for `jobs` (same settings), by key."""
    done = {}
    for j in jobs:
        f = work / "results" / f"{j.key}.json"
        if f.is_file():
            r = json.loads(f.read_text())
            if r.get("job") == _job_dict(j):
                done[j.key] = r
    return done


def run_all(jobs: list[Job], work: Path, s: Scale, n_proc: int) -> dict[str, dict]:
    """Results of `jobs`, running those without a matching result file in `n_proc` processes."""
    done = stored(jobs, work)
    todo = [j for j in jobs if j.key not in done]
    if todo:
        _say(f"{len(todo)} runs to do ({len(done)} reused) in {n_proc} processes")
    if n_proc <= 1:
        for j in todo:
            done[j.key] = _logged(run_job(j, work, s))
        return done
    import multiprocessing as mp

    with ProcessPoolExecutor(n_proc, mp_context=mp.get_context("spawn"), initializer=_init_worker) as ex:
        futures = [ex.submit(run_job, j, work, s) for j in todo]
        for fut in futures:
            r = _logged(fut.result())
            done[r["job"]["key"]] = r
    return done


def _logged(r: dict) -> dict:
    ev = ", ".join(f"{k} {v['rollout']:.3f}" for k, v in r["eval"].items())
    _say(f"{r['job']['key']}: {r['steps']} steps in {r['train_seconds']:.0f} s, L2RE {ev}")
    return r


def _say(msg: str) -> None:
    print(f"[claims {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- statistics
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    vals = list(values)
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def fmt(m: float, sd: float, n: int) -> str:
    return f"{m:.3f}" if n < 2 else f"{m:.3f} ± {sd:.3f}"


def _sel(results: dict[str, dict], **want: Any) -> list[dict]:
    out = []
    for r in results.values():
        j = r["job"]
        if all((j["info"].get(k) if k in j["info"] else j.get(k)) == v for k, v in want.items()):
            out.append(r)
    return sorted(out, key=lambda r: r["job"]["seed"])


def _avg_over_sets(r: dict, metric: str) -> float:
    return statistics.fmean(v[metric] for v in r["eval"].values())


def _separated(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """a is lower than b by more than the larger seed spread (a rough, stated significance rule)."""
    return b[0] - a[0] > max(a[1], b[1])


# ------------------------------------------------------------------------------------------------ claims
def claim_denoising(s: Scale, res: dict[str, dict]) -> dict[str, Any]:
    rows = []
    for name, k in zip(NOISE_NAMES, s.noise_levels):
        runs = _sel(res, kind="pretrain", noise=k, size="demo", balanced=True)
        row = {"level": name, "kappa": k, "n": len(runs), "per_set": {}}
        for d in pretrain_sets():
            row["per_set"][d] = {m: mean_std([r["eval"][d][m] for r in runs]) for m in ("one_step", "rollout")}
        row["avg"] = {m: mean_std([_avg_over_sets(r, m) for r in runs]) for m in ("one_step", "rollout")}
        rows.append(row)
    by = {r["level"]: r for r in rows}
    best = min(rows, key=lambda r: r["avg"]["rollout"][0])
    per_set = {d: min(rows, key=lambda r: r["per_set"][d]["rollout"][0])["level"] for d in pretrain_sets()}
    small_beats_none = by["small"]["avg"]["rollout"][0] < by["none"]["avg"]["rollout"][0]
    large_worse = by["large"]["avg"]["rollout"][0] > by["none"]["avg"]["rollout"][0]
    large_clear = _separated(by["none"]["avg"]["rollout"], by["large"]["avg"]["rollout"])
    agree = best["level"] in ("small", "medium") and large_worse
    verdict = (
        f"Lowest mean rollout L2RE at the {best['level']!r} level (κ={best['kappa']:g}); best level per dataset: "
        + ", ".join(f"{d} {lvl}" for d, lvl in per_set.items())
        + f". Small noise "
        f"{'beats' if small_beats_none else 'does not beat'} no noise "
        f"({by['small']['avg']['rollout'][0]:.3f} vs {by['none']['avg']['rollout'][0]:.3f}); large noise is "
        f"{'worse' if large_worse else 'not worse'} than none ({by['large']['avg']['rollout'][0]:.3f}"
        f"{', beyond the seed spread' if large_clear and rows[0]['n'] > 1 else ''}). One-step error, by "
        "contrast: "
        + ", ".join(f"{r['level']} {r['avg']['one_step'][0]:.3f}" for r in rows)
        + ". Paper (Table 4: ε=5e-5 best, 5e-3 much worse): "
        + ("**agrees**." if agree else "**does not agree** at this scale.")
    )
    return {"rows": rows, "agree": agree, "verdict": verdict}


def claim_pretraining(s: Scale, res: dict[str, dict]) -> dict[str, Any]:
    rows = []
    for n in s.shots:
        row = {"shots": n}
        for model in FT_MODELS:
            runs = _sel(res, kind="finetune", model=model, shots=n, long=None)
            row[model] = mean_std([r["eval"][HOLDOUT]["rollout"] for r in runs])
            row[f"{model}_one_step"] = mean_std([r["eval"][HOLDOUT]["one_step"] for r in runs])
            row["n"] = len(runs)
            if runs:
                row[f"{model}_params"] = runs[0]["params"]
        rows.append(row)
    smallest = rows[0]

    def better(a: str, b: str, clear: bool = False) -> str:
        """The n at which contender `a` has the lower mean (`clear`: beyond the seed spread) than `b`."""
        ns = [r["shots"] for r in rows if (_separated(r[a], r[b]) if clear else r[a][0] < r[b][0])]
        return ", ".join(map(str, ns)) or "none"

    parts, agreeing = [], []
    for model in ("pretrained", "pretrained_reinit"):
        if smallest[model][0] < smallest["scratch"][0]:
            agreeing.append(model)
        parts.append(
            f"{FT_LABELS[model]} beats from-scratch DPOT at n = {better(model, 'scratch')} (beyond the seed spread "
            f"at n = {better(model, 'scratch', clear=True)}) and the FNO at n = {better(model, 'fno')}; on the "
            f"one-step error it beats scratch at n = {better(f'{model}_one_step', 'scratch_one_step')}."
        )
    agree = bool(agreeing)
    largest = rows[-1]
    flat = all(largest[m][0] > 0.5 * smallest[m][0] for m in ("scratch", "fno"))
    if flat:  # more data barely helps even without pre-training: the data-efficiency trend cannot show
        parts.append(
            f"More data barely helps any model here (from n={smallest['shots']} to n={largest['shots']}: scratch "
            f"{smallest['scratch'][0]:.3f} → {largest['scratch'][0]:.3f}, FNO {smallest['fno'][0]:.3f} → "
            f'{largest["fno"][0]:.3f}), so this family does not test the paper\'s "most with little data"; '
            "what it tests is whether pre-training helps at a given n."
        )
    verdict = (
        " ".join(parts) + f" At the smallest set (n={smallest['shots']}): fine-tuned (widen) "
        f"{smallest['pretrained'][0]:.3f}, fine-tuned (reinit) {smallest['pretrained_reinit'][0]:.3f}, scratch "
        f"{smallest['scratch'][0]:.3f}, FNO {smallest['fno'][0]:.3f}. Paper (pre-training helps most with little "
        "data; Table 10/12, §4): "
        + (
            f"**agrees**{' that it helps (the trend is untested)' if flat else ''} with "
            f"{' and '.join(FT_SHORT[m] for m in agreeing)}" + ("" if len(agreeing) == 2 else " only") + "."
            if agree
            else "**does not agree** at this scale."
        )
    )
    long = {}
    if s.long_finetune_steps:
        for model in ("pretrained_reinit", "scratch", "fno"):
            runs = _sel(res, kind="finetune", model=model, long=True)
            long[model] = mean_std([r["eval"][HOLDOUT]["rollout"] for r in runs])
            long[f"{model}_one_step"] = mean_std([r["eval"][HOLDOUT]["one_step"] for r in runs])
            long[f"{model}_seconds"] = mean_std([r["train_seconds"] for r in runs])[0]
            long["n"] = len(runs)
    return {"rows": rows, "agree": agree, "agreeing": agreeing, "flat": flat, "verdict": verdict, "long": long}


def claim_scaling(s: Scale, res: dict[str, dict]) -> dict[str, Any]:
    rows = []
    for label, _ in s.sizes:
        runs = [
            r for r in _sel(res, kind="pretrain", noise=BASE_NOISE, size=label, balanced=True) if r["job"]["seed"] == 0
        ]
        r = runs[0]
        rows.append(
            {
                "size": label,
                "params": r["params"],
                "rollout": _avg_over_sets(r, "rollout"),
                "one_step": _avg_over_sets(r, "one_step"),
                "final_loss": r["final_loss"],
                "per_set": {d: r["eval"][d]["rollout"] for d in pretrain_sets()},
            }
        )
    rows.sort(key=lambda r: r["params"])
    losses = [r["rollout"] for r in rows]
    monotone = all(a > b for a, b in zip(losses, losses[1:]))
    loss_falls = all(a["final_loss"] > b["final_loss"] for a, b in zip(rows, rows[1:]))
    one_step = [r["one_step"] for r in rows]
    agree = monotone
    verdict = (
        "Mean zero-shot rollout L2RE by size: "
        + ", ".join(f"{r['size']} ({r['params']:,}) {r['rollout']:.3f}" for r in rows)
        + f"; {'falls monotonically' if monotone else 'does not fall monotonically'} with size at a fixed "
        f"{s.pretrain_steps}-step budget (the final training loss falls "
        f"{'monotonically' if loss_falls else 'unevenly'}; the mean one-step error spans {min(one_step):.3f}–"
        f"{max(one_step):.3f}"
        + (", so the gain is mostly in rollout stability" if max(one_step) < 1.2 * min(one_step) else "")
        + "). Paper (Fig. 3: 0.06 at 7M to 0.028 at 500M, trained to convergence): "
        + ("**agrees**." if agree else "**does not agree** at this scale.")
    )
    return {"rows": rows, "agree": agree, "verdict": verdict}


def claim_balanced(s: Scale, res: dict[str, dict]) -> dict[str, Any]:
    rows = []
    for d in pretrain_sets():
        row = {"dataset": d}
        for bal, name in ((True, "balanced"), (False, "uniform")):
            runs = _sel(res, kind="pretrain", noise=BASE_NOISE, size="demo", balanced=bal)
            row[name] = mean_std([r["eval"][d]["rollout"] for r in runs])
            row["n"] = len(runs)
        rows.append(row)
    small = next(r for r in rows if r["dataset"] == SMALL_SET)
    helps_small = small["balanced"][0] < small["uniform"][0]
    avg_b = statistics.fmean(r["balanced"][0] for r in rows)
    avg_u = statistics.fmean(r["uniform"][0] for r in rows)
    worse = [f"`{r['dataset']}`" for r in rows if r is not small and r["uniform"][0] < r["balanced"][0]]
    agree = helps_small
    clear = agree and small["n"] > 1 and _separated(small["balanced"], small["uniform"])
    verdict = (
        f"On the under-represented `{SMALL_SET}` ({s.n_train_small} vs {s.n_train} trajectories) balanced "
        f"sampling gives {small['balanced'][0]:.3f} vs uniform {small['uniform'][0]:.3f}"
        f"{' (beyond the seed spread)' if clear else ''}; mean over the three sets {avg_b:.3f} vs {avg_u:.3f}. "
        + (f"The price: uniform sampling is better on {', '.join(worse)}, the sets it samples more. " if worse else "")
        + "Paper (App. B.8: FNO-1e-5 0.0976 balanced vs 0.177 equal): "
        + (
            "**agrees**."
            if clear
            else "**agrees in direction only** (within the seed spread)."
            if agree
            else "**does not agree** at this scale."
        )
    )
    return {"rows": rows, "agree": agree, "clear": clear, "verdict": verdict}


# --------------------------------------------------------------------------------------------------- plots
def _save(fig, out: Path, name: str) -> str:
    """Lay out, write `out/name` as PNG and close the figure; returns the name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def plot_all(
    out: Path, c1: dict, c2: dict, c3: dict, c4: dict, base: dict[str, dict[str, float]] | None = None
) -> list[str]:
    """Four PNGs under `out`; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    xs = range(len(c1["rows"]))
    for ax, metric in zip(axes, ("one_step", "rollout")):
        for d in [*pretrain_sets(), None]:
            vals = [r["avg"][metric] if d is None else r["per_set"][d][metric] for r in c1["rows"]]
            ax.errorbar(
                list(xs),
                [v[0] for v in vals],
                yerr=[v[1] for v in vals],
                marker="o",
                capsize=3,
                label="mean" if d is None else d,
                lw=2.5 if d is None else 1,
            )
        ax.set_xticks(list(xs), [f"{r['level']}\nκ={r['kappa']:g}" for r in c1["rows"]])
        ax.set_yscale("log")
        ax.set_title(f"{metric.replace('_', '-')} L2RE vs training noise")
    axes[0].legend(fontsize=7)
    names.append(_save(fig, out, "denoising.png"))

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    shots = [r["shots"] for r in c2["rows"]]
    for model, label in FT_LABELS.items():
        ax.errorbar(
            shots,
            [r[model][0] for r in c2["rows"]],
            yerr=[r[model][1] for r in c2["rows"]],
            marker="o",
            capsize=3,
            label=label,
        )
    if base:
        ax.axhline(base[HOLDOUT]["rollout"], color="gray", ls="--", label="repeat last frame")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("training trajectories of the held-out family")
    ax.set_ylabel("rollout L2RE")
    ax.set_title(f"{HOLDOUT}: data efficiency")
    ax.legend(fontsize=8, framealpha=0.6)
    names.append(_save(fig, out, "pretraining.png"))

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    p = [r["params"] for r in c3["rows"]]
    ax.plot(p, [r["rollout"] for r in c3["rows"]], marker="o", label="rollout")
    ax.plot(p, [r["one_step"] for r in c3["rows"]], marker="s", label="one step")
    for r in c3["rows"]:
        ax.annotate(r["size"], (r["params"], r["rollout"]), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("mean zero-shot L2RE")
    ax.legend(fontsize=8, framealpha=0.6)
    names.append(_save(fig, out, "scaling.png"))

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    x = list(range(len(c4["rows"])))
    for off, name in ((-0.18, "balanced"), (0.18, "uniform")):
        ax.bar(
            [i + off for i in x],
            [r[name][0] for r in c4["rows"]],
            0.36,
            yerr=[r[name][1] for r in c4["rows"]],
            capsize=3,
            label=name,
        )
    ax.set_xticks(x, [r["dataset"] for r in c4["rows"]], fontsize=8)
    ax.set_ylabel("rollout L2RE")
    ax.legend(fontsize=8, framealpha=0.6)
    names.append(_save(fig, out, "sampling.png"))
    return names


# -------------------------------------------------------------------------------------------------- report
def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def channel_lines(channels: dict[str, dict[str, float]], s: Scale) -> list[str]:
    """Claim 2's per-channel table (seed 0, largest n)."""
    names = list(next(iter(channels.values())))
    rows = [[FT_LABELS[m], *[f"{v[c]:.3f}" for c in names]] for m, v in channels.items()]
    lines = [
        f"Where the error comes from (seed 0, n={max(s.shots)}, rollout L2RE per channel):",
        "",
        _table(["model", *names], rows),
        "",
    ]
    q = channels["scratch"]
    for m in ("pretrained", "pretrained_reinit"):
        p = channels[m]
        worst = max(names, key=lambda c: p[c] / max(q[c], 1e-12))
        lines.append(
            f"{FT_LABELS[m]}: largest ratio to scratch on `{worst}` ({p[worst]:.3f} vs {q[worst]:.3f}, "
            f"{p[worst] / max(q[worst], 1e-12):.2f}×)."
        )
    return [*lines, ""]


def report(
    scale_name: str,
    s: Scale,
    meta: dict[str, Any],
    c1: dict,
    c2: dict,
    c3: dict,
    c4: dict,
    plots: list[str],
    base: dict[str, dict[str, float]] | None = None,
    channels: dict[str, dict[str, float]] | None = None,
) -> str:
    """docs/results.md: the setting, the numbers and the verdict of each claim."""
    n_seed = c1["rows"][0]["n"]
    other = (
        "`--scale small` is a ~10-minute version (600/300 steps, fewer data sizes, no `L` size)"
        if scale_name == "full"
        else "`--scale full` trains longer, with more seeds, sizes and data sizes (≈ 1 h on 2 idle cores; see the end)"
    )
    busy = max(meta["load_start"], meta["load_end"]) > os.cpu_count() + 0.5
    params = sorted(r["params"] for r in c3["rows"])
    lines = [
        "# Results: the paper's claims at CPU scale",
        "",
        f"Regenerate with `python studies/claims.py --scale {scale_name}` (this file and `docs/results/`; "
        "`--report-only` rebuilds them from the raw numbers in `docs/results/claims.json` in seconds); "
        f"{other}. This run: scale `{scale_name}`, {meta['date']}, {meta['machine']}, "
        f"{meta['jobs']} processes × 1 torch thread, wall {meta['wall_seconds'] / 60:.0f} min"
        + (f" over {meta['invocations']} calls (later calls added runs)" if meta.get("invocations", 1) > 1 else "")
        + ", "
        f"{meta['cpu_seconds'] / 60:.0f} CPU-min of training and evaluation; load average "
        f"{meta['load_start']:.1f} at the start and {meta['load_end']:.1f} at the end"
        + (
            " (a machine shared with other jobs: wall times are inflated, the numbers themselves are not affected)."
            if busy
            else "."
        ),
        "",
        f"**Read these as a small-scale replication.** The models have {params[0] / 1e6:.2f}–"
        f"{params[-1] / 1e6:.1f} M parameters and train for "
        f"{s.pretrain_steps} (pre-training) and {s.finetune_steps} (fine-tuning) steps of batch {s.batch} on a "
        f"{s.res}² corpus generated by our solvers, against 7 M–1 B parameters, ~0.5–1 M steps and the real "
        "PDEBench/FNO/PDEArena data in the paper. Error bars are the standard deviation over seeds "
        '(training seed: initialisation, sampling, noise; the corpus is fixed). "Beyond the seed spread" means '
        "the gap exceeds the larger of the two standard deviations.",
        "",
        "## Setting",
        "",
        f"- Corpus (`dpot.solvers.generate`, seed 0, {s.res}×{s.res}, {s.frames} frames, {s.n_test} test "
        f"trajectories each): `ns2d_nu1e-3`, `ns2d_nu1e-4` ({s.n_train} training trajectories each), "
        f"`{SMALL_SET}` ({s.n_train_small}, deliberately under-represented), and the held-out family "
        f"`{HOLDOUT}` (up to {max(s.n_train, max(s.shots))}).",
        f"- Pre-training: the `demo` preset (`dpot pretrain --config demo`; DPOT `demo` size: patch 4, D=64, "
        f"3 blocks; AdamW, "
        f"cosine schedule, channel mask) on the three pre-training sets, T_in={s.t_in}, one-step targets, "
        f"balanced sampling and κ={BASE_NOISE} (`train.noise_mode=rms`: noise std = κ·RMS per channel) unless "
        "the claim varies it.",
        f"- Evaluation (`dpot.evaluation.evaluate_model`): auto-regressive rollout from the first {s.t_in} "
        f"frames of each test trajectory for {s.frames - s.t_in} steps. *Rollout L2RE* = the paper's L2RE over "
        "the whole rollout; *one-step L2RE* = the first rollout step (from the true history).",
        "",
        "## 1. Denoising (noise level during pre-training)",
        "",
        f"κ ∈ {{{', '.join(f'{k:g}' for k in s.noise_levels)}}} ≈ the paper's ε ∈ {{0, 5e-5, 5e-4, 5e-3}} at "
        f"128²×10 (ε·√(128²·10) ≈ 405ε of the RMS); {n_seed} seed(s) each.",
        "",
    ]
    head = (
        ["noise", "κ"]
        + [f"{d} {m}" for d in pretrain_sets() for m in ("1-step", "rollout")]
        + ["mean 1-step", "mean rollout"]
    )
    rows = []
    for r in c1["rows"]:
        cells = [r["level"], f"{r['kappa']:g}"]
        for d in pretrain_sets():
            cells += [fmt(*r["per_set"][d][m], r["n"]) for m in ("one_step", "rollout")]
        cells += [fmt(*r["avg"][m], r["n"]) for m in ("one_step", "rollout")]
        rows.append(cells)
    if base:
        cells = ["repeat last frame", "–"]
        for d in pretrain_sets():
            cells += [f"{base[d][m]:.3f}" for m in ("one_step", "rollout")]
        cells += [f"{statistics.fmean(base[d][m] for d in pretrain_sets()):.3f}" for m in ("one_step", "rollout")]
        rows.append(cells)
    lines += [_table(head, rows), "", f"![denoising](results/{plots[0]})", "", c1["verdict"], ""]
    if base:
        r0 = next(r for r in c1["rows"] if r["kappa"] == BASE_NOISE)
        beat = [d for d in pretrain_sets() if r0["per_set"][d]["rollout"][0] < base[d]["rollout"]]
        lines += [
            f"Against the trivial bar: at κ={BASE_NOISE} the pre-trained model's rollout beats repeating the "
            f"last frame on {len(beat)} of {len(pretrain_sets())} datasets"
            + (f" ({', '.join(beat)})" if beat else "")
            + "; where it does not, the comparison between noise "
            "levels is between under-trained models and says little about the paper's claim.",
            "",
        ]

    lines += [
        "## 2. Pre-training helps on a held-out family",
        "",
        f"`{HOLDOUT}` (3 channels: h, u, v) is never seen in pre-training, whose sets have ≤ 2 channels "
        "(vorticity; the two diffusion-reaction species). From the "
        f"κ={BASE_NOISE}, seed-0 pre-trained model, fine-tune ({s.finetune_steps} steps) in two ways: *widen* "
        "(`finetune.channels=widen`: h and u enter through the checkpoint's two channels, v through a new one) and "
        "*reinit* (`finetune.channels=reinit`: the pre-trained backbone with a fresh patch embedding and head, "
        "the reference fine-tuning script's default `load_components=['blocks','pos','time_agg']`; these "
        "channels are not the pre-training ones). Fine-tuning uses no input noise, as the reference's. "
        "Against them: the same DPOT from random init and "
        "neuraloperator's FNO (modes 12, width 32, 4 layers). All use the same steps, batch, learning rate and "
        f"the first n training trajectories; {c2['rows'][0]['n']} seed(s) each. The reinit contender was added "
        "after the first `small` run showed the widened model drifting on `h`: it is reported beside widen, not "
        f"instead of it. Rollout L2RE on {s.n_test} test trajectories:",
        "",
    ]
    contenders = ("pretrained", "pretrained_reinit", "scratch", "fno")
    rows = [
        [
            str(r["shots"]),
            *[fmt(*r[m], r["n"]) for m in contenders],
            *[fmt(*r[f"{m}_one_step"], r["n"]) for m in contenders],
        ]
        for r in c2["rows"]
    ]
    params = c2["rows"][0]
    lines += [
        _table(
            [
                "n trajectories",
                *[f"{FT_LABELS[m]} ({params.get(f'{m}_params', 0):,} params)" for m in contenders],
                *[f"1-step {FT_SHORT[m]}" for m in contenders],
            ],
            rows,
        ),
        "",
        *(
            [
                f"Repeating the last input frame scores {base[HOLDOUT]['rollout']:.3f} on the same test set (one step "
                f"{base[HOLDOUT]['one_step']:.3f}).",
                "",
            ]
            if base
            else []
        ),
        f"![pre-training](results/{plots[1]})",
        "",
        c2["verdict"],
        "",
        *(channel_lines(channels, s) if channels else []),
        *(long_lines(c2, s) if c2.get("long") else []),
        "## 3. Zero-shot error against model size",
        "",
        f"Same data, κ={BASE_NOISE}, {s.pretrain_steps} steps, seed 0; sizes are the `demo` preset with other "
        "widths/depths. Mean over the three pre-training test sets:",
        "",
    ]
    rows = [
        [
            r["size"],
            f"{r['params']:,}",
            f"{r['final_loss']:.3f}",
            f"{r['one_step']:.3f}",
            f"{r['rollout']:.3f}",
            *[f"{r['per_set'][d]:.3f}" for d in pretrain_sets()],
        ]
        for r in c3["rows"]
    ]
    lines += [
        _table(
            [
                "size",
                "parameters",
                "final train loss",
                "mean 1-step",
                "mean rollout",
                *[f"{d} rollout" for d in pretrain_sets()],
            ],
            rows,
        ),
        "",
        f"![scaling](results/{plots[2]})",
        "",
        c3["verdict"],
        "",
        "## 4. Balanced vs uniform sampling",
        "",
        f"Balanced: every dataset gets the same share of samples (p ∝ w_k/|D_k|, the paper's rule); uniform: "
        f"every window equally likely, so `{SMALL_SET}` gets "
        f"~{s.n_train_small / (2 * s.n_train + s.n_train_small):.0%} "
        f"of the samples. κ={BASE_NOISE}, {c4['rows'][0]['n']} seed(s). Rollout L2RE:",
        "",
    ]
    rows = [
        [
            r["dataset"],
            fmt(*r["balanced"], r["n"]),
            fmt(*r["uniform"], r["n"]),
            f"{base[r['dataset']]['rollout']:.3f}" if base else "–",
        ]
        for r in c4["rows"]
    ]
    lines += [
        _table(["dataset", "balanced", "uniform", "repeat last frame"], rows),
        "",
        f"![sampling](results/{plots[3]})",
        "",
        c4["verdict"],
        "",
    ]
    agree = sum(c["agree"] for c in (c1, c2, c3, c4))

    def word(c: dict) -> str:
        if not c["agree"]:
            return "disagrees"
        only = c.get("agreeing", [])
        return ("agrees" if c.get("clear", True) else "agrees in direction only") + (
            f" ({FT_SHORT[only[0]]} only)" if len(only) == 1 else ""
        )

    lines += [
        "## Summary",
        "",
        f"{agree} of 4 claims agree with the paper at this scale, at least in direction: denoising {word(c1)}, "
        f"pre-training {word(c2)}, scaling {word(c3)}, balanced sampling {word(c4)}."
        + (
            " Disagreements at this size are expected where the effect needs converged training (scaling, "
            "denoising) and are reported as measured, not tuned away."
            if agree < 4
            else ""
        ),
        "",
        fno_gap(c2),
        "",
        *([trivial_bar(c1, c2, base, s), ""] if base else []),
        "## Scales",
        "",
        _table(
            [
                "scale",
                "grid",
                "trajectories (large/small)",
                "pre-train steps",
                "fine-tune steps",
                "seeds",
                "sizes",
                "n (claim 2)",
                "pre-training runs",
                "fine-tuning runs",
            ],
            [
                [
                    name,
                    f"{sc.res}²",
                    f"{sc.n_train}/{sc.n_train_small}",
                    str(sc.pretrain_steps),
                    str(sc.finetune_steps),
                    f"{sc.seeds} ({sc.shot_seeds} in claim 2)",
                    ", ".join(lab for lab, _ in sc.sizes),
                    ", ".join(map(str, sc.shots)),
                    str(len(plan_jobs(sc)[0])),
                    str(len(plan_jobs(sc)[1])),
                ]
                for name, sc in SCALES.items()
            ],
        ),
        "",
        f"This run used {meta['cpu_seconds'] / 60:.0f} CPU-minutes in {meta['wall_seconds'] / 60:.0f} min wall"
        + (
            "."
            if scale_name == "full"
            else f"; `full` needs about {estimate_cpu_minutes(SCALES['full'], meta):.0f} CPU-minutes by the same "
            f"per-step costs, i.e. about {estimate_cpu_minutes(SCALES['full'], meta) / 2 / 60:.1f} h on 2 idle cores "
            "(`--jobs 2`; the `L` size, not in the smaller scales, is counted at the average pre-training step "
            "cost, so take it as a lower bound)."
        )
        + " On a loaded machine wall time grows with the load (this run: "
        f"{meta['wall_seconds'] * meta['jobs'] / max(meta['cpu_seconds'], 1):.1f}× its CPU time per process). "
        "Raw numbers: `docs/results/claims.json`.",
        "",
    ]
    return "\n".join(lines)


def long_lines(c2: dict, s: Scale) -> list[str]:
    """Claim 2 at the largest n with longer training: is a gap between the contenders one of training length?"""
    lg, last = c2["long"], c2["rows"][-1]
    names = ("pretrained_reinit", "scratch", "fno")
    rows = [
        [
            f"{s.finetune_steps} (above)",
            *[fmt(*last[m], last["n"]) for m in names],
            *[fmt(*last[f"{m}_one_step"], last["n"]) for m in names],
        ],
        [
            str(s.long_finetune_steps),
            *[fmt(*lg[m], lg["n"]) for m in names],
            *[fmt(*lg[f"{m}_one_step"], lg["n"]) for m in names],
        ],
    ]
    return [
        f"Training length (n={max(s.shots)}, {lg['n']} seed(s); rollout L2RE, then one-step):",
        "",
        _table(["fine-tuning steps", *[FT_LABELS[m] for m in names], *[f"1-step {FT_SHORT[m]}" for m in names]], rows),
        "",
    ]


def fno_gap(c2: dict) -> str:
    """The FNO baseline against the best DPOT on the held-out family (not one of the four claims, but the
    comparison a reader looks for)."""
    dpot = [m for m in FT_MODELS if m != "fno"]
    wins = [r["shots"] for r in c2["rows"] if r["fno"][0] < min(r[m][0] for m in dpot)]
    ratios = [min(r[m][0] for m in dpot) / r["fno"][0] for r in c2["rows"]]
    head = (
        f"The FNO baseline beats every DPOT on `{HOLDOUT}` at n = {', '.join(map(str, wins))} "
        f"(best DPOT rollout L2RE / FNO's: {min(ratios):.1f}–{max(ratios):.1f}×)"
        if wins
        else f"The best DPOT beats the FNO baseline on `{HOLDOUT}` at every n"
    )
    text = head + ". The paper's DPOT beats the FNO on its fine-tuning benchmarks (Table 3)."
    lg = c2.get("long")
    if lg and wins:
        best = min(("pretrained_reinit", "scratch"), key=lambda m: lg[m][0])
        last = c2["rows"][-1]
        before = min(last[m][0] for m in ("pretrained_reinit", "scratch")) / last["fno"][0]
        after = lg[best][0] / lg["fno"][0]
        text += (
            f" Training longer at the largest n (table above) {'narrows' if after < before else 'widens'} the "
            f"gap from {before:.1f}× to {after:.1f}× (best DPOT, {FT_SHORT[best]}: {lg[best][0]:.3f}; FNO "
            f"{lg['fno'][0]:.3f}). "
            f"One long run took {lg[best + '_seconds']:.0f} s for DPOT and {lg['fno_seconds']:.0f} s for the "
            "FNO on one thread."
        )
    return text


def trivial_bar(c1: dict, c2: dict, base: dict[str, dict[str, float]], s: Scale) -> str:
    """How many test sets the base models beat repeating the last frame on (rollout L2RE)."""
    r0 = next(r for r in c1["rows"] if r["kappa"] == BASE_NOISE)
    scores = {d: r0["per_set"][d]["rollout"][0] for d in pretrain_sets()}
    best_ft = min(min(r[m][0] for m in FT_MODELS) for r in c2["rows"])
    scores[HOLDOUT] = best_ft
    beat = [d for d, v in scores.items() if v < base[d]["rollout"]]
    return (
        f"Caveat: the κ={BASE_NOISE} pre-trained model (and, on `{HOLDOUT}`, the best fine-tuned/scratch/FNO "
        f"model) beats repeating the last frame over the rollout on {len(beat)} of {len(scores)} test sets"
        + (f" ({', '.join(beat)})" if beat else "")
        + f". With {s.pretrain_steps} pre-training and "
        f"{s.finetune_steps} fine-tuning steps the models are far from converged, so a disagreement here is "
        "weak evidence against the paper"
        + (
            "."
            if s == SCALES["full"]
            else f"; `--scale full` ({SCALES['full'].pretrain_steps} and {SCALES['full'].finetune_steps} steps, more "
            "data and seeds) is the stronger test."
        )
    )


def estimate_cpu_minutes(target: Scale, meta: dict[str, Any]) -> float:
    """CPU-minutes of `target` from this run's measured CPU seconds per pre-training / fine-tuning step."""
    pre, ft = plan_jobs(target)
    return (
        len(pre) * target.pretrain_steps * meta["cpu_per_pretrain_step"]
        + len(ft) * target.finetune_steps * meta["cpu_per_finetune_step"]
    ) / 60


def _per_step(results: dict[str, dict], kind: str) -> float:
    rs = [r for r in results.values() if r["job"]["kind"] == kind]
    return sum(r["cpu_seconds"] for r in rs) / max(1, sum(r["steps"] for r in rs))


def _earlier_run(path: Path, scale: str, results: dict[str, dict]) -> dict[str, Any]:
    """The date, wall time and load of the invocation(s) that trained (some of) `results`, from the previous
    `claims.json` of the same scale whose runs are all among `results` (nothing if there is none)."""
    if not path.is_file():
        return {}
    old = json.loads(path.read_text())
    runs = old.get("runs", {})
    same = set(runs) <= set(results) and all(
        r.get("job") == results[k]["job"] and r.get("cpu_seconds") == results[k]["cpu_seconds"] for k, r in runs.items()
    )
    if old.get("scale") != scale or not same:
        return {}
    keep = ("date", "wall_seconds", "load_start", "load_end", "jobs", "invocations")
    return {k: old["meta"][k] for k in keep if k in old.get("meta", {})}


# ---------------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--scale",
        choices=list(SCALES),
        default="full",
        help="full: ~1 h on 2 idle cores (docs/results.md); small: ~10 min; smoke: plumbing",
    )
    p.add_argument("--work", help="runs and per-run results (default runs/claims-<scale>)")
    p.add_argument("--docs", default=str(DOCS), help="where results.md and results/ go (default docs/)")
    p.add_argument("--jobs", type=int, default=2, help="parallel training processes, 1 torch thread each")
    p.add_argument("--fresh", action="store_true", help="delete the work folder first")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="no training: rebuild results.md and the plots from DOCS/results/claims.json",
    )
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    return args


def analyse(
    scale_name: str,
    meta: dict[str, Any],
    results: dict[str, dict],
    base: dict | None,
    channels: dict | None,
    docs: Path,
) -> tuple[dict[str, Any], str]:
    """(claims.json content, results.md text) from the runs' results; writes the plots under `docs/results`."""
    s = SCALES[scale_name]
    c1, c2, c3, c4 = (
        claim_denoising(s, results),
        claim_pretraining(s, results),
        claim_scaling(s, results),
        claim_balanced(s, results),
    )
    (docs / "results").mkdir(parents=True, exist_ok=True)
    plots = plot_all(docs / "results", c1, c2, c3, c4, base)
    data = {
        "scale": scale_name,
        "settings": asdict(s),
        "meta": meta,
        "claims": {"denoising": c1, "pretraining": c2, "scaling": c3, "balanced": c4},
        "repeat_last_frame": base,
        "holdout_per_channel": channels,
        "runs": results,
    }
    return data, report(scale_name, s, meta, c1, c2, c3, c4, plots, base, channels)


def write_outputs(docs: Path, data: dict[str, Any], md: str) -> None:
    from dpot.io import write_json, write_text

    write_json(docs / "results" / "claims.json", data)
    write_text(docs / "results.md", md)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    docs = Path(args.docs)
    if args.report_only:
        old = json.loads((docs / "results" / "claims.json").read_text())
        write_outputs(
            docs,
            *analyse(
                old["scale"], old["meta"], old["runs"], old["repeat_last_frame"], old["holdout_per_channel"], docs
            ),
        )
        _say(f"rebuilt {docs / 'results.md'} from {docs / 'results' / 'claims.json'}")
        return 0
    s = SCALES[args.scale]
    work = Path(args.work or ROOT / "runs" / f"claims-{args.scale}")
    if args.fresh and work.exists():
        shutil.rmtree(work)
    (work / "results").mkdir(parents=True, exist_ok=True)
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    from dpot.solvers.generate import generate

    _say(f"scale {args.scale}: generating the corpus into {work / 'data'}")
    generate(corpus_specs(s), work / "data", seed=0, workers=1, progress=False)
    pre, ft = plan_jobs(s)
    reused_all = len(stored(pre + ft, work)) == len(pre) + len(ft)
    results = run_all(pre, work, s, args.jobs)
    results.update(run_all(ft, work, s, args.jobs))
    base = persistence(work, s)
    channels = channel_breakdown(work, s)
    cpu = machine_label({**machine_info(), "torch_threads": None, "loadavg_1min_at_start": None})  # load: below
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": cpu,
        "jobs": args.jobs,
        "wall_seconds": time.perf_counter() - t0,
        "cpu_seconds": sum(r["cpu_seconds"] for r in results.values()),
        "load_start": load0,
        "load_end": os.getloadavg()[0],
        "cpu_per_pretrain_step": _per_step(results, "pretrain"),
        "cpu_per_finetune_step": _per_step(results, "finetune"),
    }
    earlier = _earlier_run(docs / "results" / "claims.json", args.scale, results)
    if reused_all:  # only the report is rebuilt: keep the date, wall time and load of the training run
        meta.update(earlier)
    elif earlier:  # this call added runs to an earlier one's: count both calls' wall time
        meta.update(
            wall_seconds=meta["wall_seconds"] + earlier["wall_seconds"],
            load_start=earlier["load_start"],
            invocations=earlier.get("invocations", 1) + 1,
        )
    write_outputs(docs, *analyse(args.scale, meta, results, base, channels, docs))
    _say(f"wrote {docs / 'results.md'} in {meta['wall_seconds'] / 60:.1f} min")
    return 0 if all(math.isfinite(r["final_loss"] or 0.0) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
