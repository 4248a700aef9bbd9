"""The `dpot demo` report: setup, zero-shot table, held-out comparison and plain conclusions read off the
numbers (`report.md` beside `demo.json`, which holds every number)."""

from __future__ import annotations

from typing import Any

from dpot.evaluation.plots import safe_name
from dpot.evaluation.report import table
from dpot.machine import machine_label


def brief(m: dict[str, Any]) -> dict[str, Any]:
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


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def demo_markdown(
    s: dict[str, Any], zs: dict[str, dict[str, dict]], ho: dict[str, dict[str, dict]], holdout: str
) -> str:
    """The demo report: setup, zero-shot table, held-out comparison, plain conclusions, links to plots."""
    pre, ft, t = s["pretrain"], s["finetune"], s["timings_s"]
    gen_note = "" if s["generated"] else ", corpus already present"
    lines = [
        "# dpot demo report",
        "",
        f"Machine: {machine_label(s['machine'])}. Total wall time: {t['total']:.0f} s "
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
        f"of `{holdout}`, lr {s['plan']['finetune_lr']}, input noise κ={s['plan']['finetune_noise']} (rms)"
        + (
            ", channels standardised with the train split's statistics." if s["plan"].get("finetune_normalize") else "."
        ),
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
