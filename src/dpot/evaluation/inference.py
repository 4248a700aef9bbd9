"""`dpot rollout`: read the user's history (canonical `.h5` or `.npy`/`.npz` in a stated layout), roll a
checkpoint out K frames, and write the prediction in the same kind of file and layout."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpot.errors import DpotError
from dpot.evaluation.layout import LAYOUT_HELP, Layout

SUFFIXES = (".h5", ".hdf5", ".npy", ".npz")


def read_history(path: Path, layout: str | None, key: str | None) -> tuple[np.ndarray, Layout | None, str | None]:
    """The history as float32 `(N, T, *space, C)`, the layout it came in (None for canonical files) and the
    .npz key."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DpotError(f"{path}: no such file")
    if suffix not in SUFFIXES:
        raise DpotError(
            f"{path}: unsupported input type {suffix!r}; give a canonical .h5 split file or a "
            ".npy/.npz array with --layout"
        )
    if suffix in (".h5", ".hdf5"):
        from dpot.data.format import Split

        if layout:
            raise DpotError("--layout applies to .npy/.npz inputs; a canonical .h5 file is (N, T, *space, C)")
        split = Split(path)
        if split.meta.steady:
            raise DpotError(
                f"{path}: steady-state data (inputs -> targets) has no history to roll out; use "
                "dpot evaluate for one-step predictions"
            )
        return np.asarray(split.file["fields"], dtype=np.float32), None, None
    if not layout:
        raise DpotError(f"{path}: a .npy/.npz input needs --layout, {LAYOUT_HELP}")
    lay = Layout.parse(layout)
    if suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    else:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if key is None:
                if len(keys) != 1:
                    raise DpotError(f"{path} holds arrays {keys}; choose one with --key")
                key = keys[0]
            if key not in keys:
                raise DpotError(f"{path}: no array {key!r}; it holds {keys}")
            arr = z[key]
    if not np.issubdtype(arr.dtype, np.number):
        raise DpotError(f"{path}: array of dtype {arr.dtype} is not numeric")
    return lay.to_canonical(arr).astype(np.float32), lay, key


def write_prediction(path: Path, frames: np.ndarray, layout: Layout | None, key: str | None, source: Path) -> None:
    """Write `(N, T, *space, C)` frames like the input: a canonical split file (metadata copied) or an array
    in `layout`."""
    from dpot.io import atomic_path

    suffix = path.suffix.lower()
    if layout is None:
        if suffix not in (".h5", ".hdf5"):
            raise DpotError(f"--out {path}: the input is a canonical .h5 file, so the output must be .h5 too")
        from dataclasses import replace

        from dpot.data.format import Split, write_split

        meta = Split(source).meta
        write_split(path, replace(meta, source=f"dpot rollout of {source.name}"), fields=frames)
        return
    if suffix not in (".npy", ".npz"):
        raise DpotError(f"--out {path}: an array input is answered with .npy or .npz, not {suffix!r}")
    arr = np.ascontiguousarray(layout.from_canonical(frames))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            if suffix == ".npy":
                np.save(f, arr)
            else:
                np.savez(f, **{key or "fields": arr})


@torch.no_grad()
def rollout_file(
    checkpoint: str | os.PathLike,
    input_path: str | os.PathLike,
    steps: int,
    out: str | os.PathLike,
    *,
    layout: str | None = None,
    key: str | None = None,
    include_history: bool = False,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = True,
    dataset: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> str:
    """Roll `checkpoint` out `steps` frames from the last T_in frames of every trajectory in `input_path`;
    write the new frames (after the history with `include_history`) to `out`. Returns a one-line summary.

    History and prediction are in physical units: a checkpoint trained on standardised data standardises the
    history with its statistics for `dataset` (default: the input's dataset name, or its only dataset) and
    maps the prediction back. `overrides`: load-time model options that keep every weight's shape."""
    from tqdm import tqdm

    from dpot.data.normalize import checkpoint_normalizer
    from dpot.evaluation.evaluate import pick_device
    from dpot.models import load_model
    from dpot.models.checkpoint import read_checkpoint_config
    from dpot.models.rollout import rollout

    if steps < 1:
        raise DpotError(f"--steps {steps}: give at least 1 frame to predict")
    src, out = Path(input_path), Path(out)
    if out.is_dir():
        raise DpotError(f"--out {out} is an existing folder; give a file name, e.g. {out / ('rollout' + src.suffix)}")
    history, lay, key = read_history(src, layout, key)
    dev = pick_device(device)
    model = load_model(checkpoint, map_location=dev, **(overrides or {})).eval()
    if dataset is None and lay is None:
        from dpot.data.format import Split

        dataset = Split(src).meta.name
    normalizer = checkpoint_normalizer(read_checkpoint_config(checkpoint), dataset=dataset)
    cfg = model.config
    n, t, c = history.shape[0], history.shape[1], history.shape[-1]
    if history.ndim - 3 != cfg.ndim:
        raise DpotError(f"history has {history.ndim - 3} space axes but the checkpoint is a {cfg.ndim}D model")
    if t < cfg.in_timesteps:
        raise DpotError(
            f"history has {t} frames but the checkpoint needs at least T_in={cfg.in_timesteps}; give a longer history"
        )
    if c > cfg.in_channels:
        raise DpotError(
            f"history has {c} channels but the checkpoint takes {cfg.in_channels}; fine-tune with "
            "finetune.channels=widen or reinit first"
        )
    if not np.all(np.isfinite(history[:, -cfg.in_timesteps :])):
        raise DpotError(f"{src}: the last {cfg.in_timesteps} history frames contain NaN or Inf")
    window = torch.from_numpy(np.ascontiguousarray(history[:, -cfg.in_timesteps :])).movedim(1, -2)
    if c < cfg.in_channels:
        window = torch.cat([window, window.new_zeros((*window.shape[:-1], cfg.in_channels - c))], dim=-1)
    if normalizer is not None:
        window = normalizer.encode(window)
    mask = torch.zeros(n, cfg.in_channels, dtype=torch.bool)
    mask[:, :c] = True
    preds = []
    t0 = time.perf_counter()
    bar = tqdm(total=n * steps, unit="frame", disable=not progress, file=sys.stderr)
    for i in range(0, n, batch_size):
        hist = window[i : i + batch_size].to(dev)
        chunk = []
        done = 0
        while done < steps:  # chunks of T_out frames, so the progress bar moves with the rollout
            k = min(cfg.out_timesteps, steps - done)
            new = rollout(model, hist, k, channel_mask=mask[i : i + batch_size].to(dev))
            chunk.append(new)
            hist = torch.cat([hist[..., k:, :], new], dim=-2)
            done += k
            bar.update(k * hist.shape[0])
        pred = torch.cat(chunk, dim=-2).float()
        if normalizer is not None:
            pred = normalizer.decode(pred)
        preds.append(pred[..., :c].cpu())
    bar.close()
    seconds = time.perf_counter() - t0
    frames = torch.cat(preds).movedim(-2, 1).numpy()  # (N, steps, *space, C)
    if include_history:
        frames = np.concatenate([history, frames], axis=1)
    write_prediction(out, frames, lay, key, src)
    rate = n * steps / max(seconds, 1e-9)
    return (
        f"predicted {steps} frames for {n} trajectories in {seconds:.2f} s ({rate:.1f} frames/s on {dev}); wrote {out}"
    )
