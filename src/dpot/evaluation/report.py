"""Evaluation outputs: `metrics.json`, `metrics.csv` and a Markdown `report.md` linking the PNG plots."""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dpot.io import finite_json, write_json, write_text

METRICS = ("l2re", "nrmse", "vrmse")


def fmt(x: Any) -> str:
    """A metric value for tables: 3 significant digits, `–` for missing."""
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def metrics_json(results: Mapping[str, Mapping[str, dict]]) -> dict[str, dict]:
    """`{dataset: metrics of the first checkpoint}`, plus `"by_checkpoint": {label: metrics}` when several.

    `results` maps checkpoint label -> dataset name -> the metrics dict of `evaluate_model`.
    """
    labels = list(results)
    out: dict[str, dict] = {}
    for label in labels:
        for name, m in results[label].items():
            if name not in out:
                out[name] = dict(m)
            if len(labels) > 1:
                out[name].setdefault("by_checkpoint", {})[label] = dict(m)
    return out


def metrics_rows(results: Mapping[str, Mapping[str, dict]]) -> list[dict[str, Any]]:
    """Long-format rows (checkpoint, dataset, channel, step, l2re, nrmse, vrmse); `all` marks aggregates."""
    rows = []
    for label, per_ds in results.items():
        for name, m in per_ds.items():
            rows.append(
                {
                    "checkpoint": label,
                    "dataset": name,
                    "channel": "all",
                    "step": "all",
                    **{k: m[k] for k in METRICS},
                }
            )
            for ch, cm in m["per_channel"].items():
                rows.append(
                    {
                        "checkpoint": label,
                        "dataset": name,
                        "channel": ch,
                        "step": "all",
                        **{k: cm[k] for k in METRICS},
                    }
                )
            for s in range(len(m["l2re_per_step"])):
                rows.append(
                    {
                        "checkpoint": label,
                        "dataset": name,
                        "channel": "all",
                        "step": s + 1,
                        **{k: m[f"{k}_per_step"][s] for k in METRICS},
                    }
                )
    return rows


def write_metrics(out_dir: str | os.PathLike, results: Mapping[str, Mapping[str, dict]]) -> tuple[Path, Path]:
    """Write `metrics.json` and `metrics.csv` into `out_dir` (atomically)."""
    out_dir = Path(out_dir)
    n_bad = finite_json(metrics_json(results))[1]
    if n_bad:
        print(
            f"dpot evaluate: warning: {n_bad} metric values are NaN/Inf (null in metrics.json): the rollout "
            "diverged or the data holds NaN/Inf",
            file=sys.stderr,
        )
    write_json(out_dir / "metrics.json", metrics_json(results))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["checkpoint", "dataset", "channel", "step", *METRICS])
    writer.writeheader()
    for row in metrics_rows(results):
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(out_dir / "metrics.csv", buf.getvalue())
    return out_dir / "metrics.json", out_dir / "metrics.csv"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def evaluation_markdown(
    results: Mapping[str, Mapping[str, dict]],
    plots: Mapping[str, Sequence[str]],
    sources: Mapping[str, str] | None = None,
    level: int = 1,
) -> str:
    """Markdown for an evaluation: tables per metric and per channel, and the plots.

    `plots` maps dataset name -> PNG file names relative to the report.
    """
    h = "#" * level
    labels = list(results)
    datasets = list(dict.fromkeys(n for per in results.values() for n in per))
    parts = [f"{h} Evaluation", ""]
    if sources:
        parts += ["Checkpoints:", ""] + [f"- `{lab}`: `{src}`" for lab, src in sources.items()] + [""]
    parts += [
        "Auto-regressive rollout from the first T_in frames of each test trajectory at the dataset's "
        "native resolution (steady-state datasets: one step). L2RE is the paper's metric: relative L2 over "
        "the whole rolled-out block per channel, averaged over channels, then over trajectories. nRMSE "
        "(PDEBench) and VRMSE (The Well) as in `dpot.evaluation.metrics`.",
        "",
    ]
    for metric in METRICS:
        rows = [[name, *[results[lab].get(name, {}).get(metric) for lab in labels]] for name in datasets]
        parts += [
            f"{h}# {metric.upper() if metric != 'l2re' else 'L2RE'}",
            "",
            table(["dataset", *labels], rows),
            "",
        ]
    first = next(iter(results.values()))
    some = next(iter(first.values()), None)
    if some is not None:
        rows = [
            [
                name,
                m.get("n_trajectories"),
                m.get("t_in"),
                m.get("steps"),
                "x".join(map(str, m.get("resolution", []))),
            ]
            for name, m in first.items()
        ]
        parts += [
            f"{h}# Setup",
            "",
            table(["dataset", "trajectories", "T_in", "rollout steps", "grid"], rows),
            "",
        ]
    parts += [f"{h}# Per channel (L2RE)", ""]
    for name in datasets:
        chans = list(dict.fromkeys(ch for lab in labels for ch in results[lab].get(name, {}).get("per_channel", {})))
        rows = [
            [
                ch,
                *[results[lab].get(name, {}).get("per_channel", {}).get(ch, {}).get("l2re") for lab in labels],
            ]
            for ch in chans
        ]
        parts += [f"**{name}**", "", table(["channel", *labels], rows), ""]
    if plots:
        parts += [f"{h}# Plots", ""]
        for name in datasets:
            for p in plots.get(name, []):
                parts += [f"![{name}]({p})", ""]
    return "\n".join(parts)
