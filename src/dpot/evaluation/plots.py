"""PNG plots for evaluation reports: error against rollout step, truth / prediction / error snapshots."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dpot.io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def safe_name(text: str) -> str:
    """A file-name-safe version of a dataset or checkpoint label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_error_curves(
    curves: Mapping[str, Sequence[float]], path: str | os.PathLike, title: str, ylabel: str = "L2RE"
) -> Path:
    """One line per checkpoint label: per-step error against rollout step (log scale if it spans >10x)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    values = []
    for label, curve in curves.items():
        steps = np.arange(1, len(curve) + 1)
        ax.plot(steps, curve, marker="o" if len(curve) <= 12 else None, ms=3, label=label)
        values.extend(v for v in curve if np.isfinite(v) and v > 0)
    if values and max(values) > 10 * min(values):
        ax.set_yscale("log")
    ax.set_xlabel("rollout step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, Path(path))


def _frame2d(a: np.ndarray) -> np.ndarray:
    """A 2D view of one spatial frame: 2D as is, 3D its middle slice along the last axis."""
    return a[..., a.shape[-1] // 2] if a.ndim == 3 else a


def plot_snapshots(
    truth: np.ndarray,
    pred: np.ndarray,
    steps: Sequence[int],
    channel_names: Sequence[str],
    path: str | os.PathLike,
    title: str,
) -> Path:
    """Rows truth / prediction / |error| per channel, columns = chosen rollout steps.

    `truth`, `pred`: `(*space, T, C)` for one trajectory; 1D data is drawn as curves, 3D as the middle slice.
    """
    plt = _pyplot()
    ndim = truth.ndim - 2
    n_ch = truth.shape[-1]
    rows = 2 if ndim == 1 else 3
    fig, axes = plt.subplots(
        rows * n_ch,
        len(steps),
        figsize=(2.3 * len(steps) + 0.8, 2.0 * rows * n_ch),
        squeeze=False,
        layout="constrained",
    )
    for c in range(n_ch):
        name = channel_names[c] if c < len(channel_names) else f"c{c}"
        t_all, p_all = truth[..., c], pred[..., c]
        lo, hi = float(np.min(t_all)), float(np.max(t_all))
        err_hi = float(np.max(np.abs(p_all - t_all))) or 1.0
        for j, s in enumerate(steps):
            t, p = truth[..., s, c], pred[..., s, c]
            if ndim == 1:
                ax = axes[rows * c, j]
                ax.plot(t, label="truth")
                ax.plot(p, "--", label="prediction")
                ax.set_title(f"{name}, step {s + 1}", fontsize=8)
                if j == 0:
                    ax.legend(fontsize=6)
                axes[rows * c + 1, j].plot(np.abs(p - t), color="C3")
                axes[rows * c + 1, j].set_title("|error|", fontsize=8)
                continue
            panels = (
                ("truth", _frame2d(t), "viridis", lo, hi),
                ("prediction", _frame2d(p), "viridis", lo, hi),
                ("|error|", _frame2d(np.abs(p - t)), "magma", 0.0, err_hi),
            )
            for r, (label, img, cmap, vmin, vmax) in enumerate(panels):
                ax = axes[rows * c + r, j]
                im = ax.imshow(img.T, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"step {s + 1}", fontsize=8)
                if j == 0:
                    ax.set_ylabel(f"{name}\n{label}", fontsize=8)
                if j == len(steps) - 1:
                    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    fig.suptitle(title, fontsize=9)
    return _save(fig, Path(path))


def snapshot_steps(n_steps: int, k: int = 4) -> list[int]:
    """Up to `k` rollout steps spread from the first to the last (0-based)."""
    if n_steps <= k:
        return list(range(n_steps))
    return sorted({int(round(x)) for x in np.linspace(0, n_steps - 1, k)})
