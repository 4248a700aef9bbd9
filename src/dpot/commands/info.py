"""`dpot info PATH`: describe a dataset folder, a root of dataset folders, one split file, or a checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SPLIT_NAMES = ("train", "val", "test")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        metavar="PATH",
        help="dataset folder (<name>/{train,val,test}.h5), a folder of datasets, one .h5 "
        "split file, or a checkpoint folder (config.json)",
    )
    parser.add_argument(
        "--no-ranges",
        action="store_true",
        help="skip the per-channel value ranges (they need one streaming pass over the data)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from dpot.errors import DpotError

    path = Path(args.path)
    if not path.exists():
        raise DpotError(f"{path}: no such file or folder")
    if path.is_dir() and (path / "checkpoint" / "config.json").is_file():  # a training run folder
        print(_run_summary(path))
        path = path / "checkpoint"
    if path.is_dir() and (path / "config.json").is_file():
        from dpot.models import checkpoint_summary

        summary = checkpoint_summary(path)
        print(summary if isinstance(summary, str) else json.dumps(summary, indent=2, default=str))
        return 0
    if path.is_file():
        if path.suffix not in (".h5", ".hdf5"):
            raise DpotError(
                f"{path}: not a dataset split (.h5) file; give a dataset folder, a .h5 split "
                "file or a checkpoint folder"
            )
        _describe([path], path.parent, args)
        return 0
    if _split_files(path):
        dirs = [path]
    else:
        dirs = sorted(p for p in path.iterdir() if p.is_dir() and _split_files(p))
    if not dirs:
        raise DpotError(
            f"{path}: neither a dataset folder (<name>/{{train,val,test}}.h5), a folder of "
            "datasets, nor a checkpoint (config.json)"
        )
    for k, d in enumerate(dirs):
        if k:
            print()
        _describe(_split_files(d), d, args)
    return 0


def _run_summary(run: Path) -> str:
    """The first lines for a run folder: its last logged step and loss, and whether a run holds it now."""
    from dpot.training.runlock import lock_holder

    lines = [f"run {run}"]
    log = run / "metrics.jsonl"
    records = [json.loads(s) for s in log.read_text().splitlines() if s.endswith("}")] if log.is_file() else []
    if records:
        last = records[-1]
        loss = "n/a" if last.get("loss") is None else f"{last['loss']:.4g}"
        lines.append(f"  last logged step {last.get('step')}: loss {loss}")
    holder = lock_holder(run)
    lines.append(f"  in use by a running job ({holder})" if holder else "  not running")
    return "\n".join(lines)


def _split_files(folder: Path) -> list[Path]:
    return [folder / f"{s}.h5" for s in SPLIT_NAMES if (folder / f"{s}.h5").is_file()]


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _describe(files: list[Path], folder: Path, args: argparse.Namespace) -> None:
    """Print metadata, split shapes and (unless --no-ranges) per-channel value ranges of one dataset."""
    from dpot.data.format import Split
    from dpot.data.stats import cached_stats, compute_stats, nonfinite_message

    splits = {p.stem: Split(p) for p in files}
    meta = next(iter(splits.values())).meta
    shape0 = next(iter(splits.values())).space_shape
    print(f"{meta.name}  ({folder})")
    print(f"  pde:       {meta.pde}{'  (steady-state)' if meta.steady else ''}")
    print(f"  grid:      {' x '.join(map(str, shape0))}  over {', '.join(meta.space)}")
    domain = " x ".join(f"[{_fmt(lo)}, {_fmt(hi)}]" for lo, hi in meta.domain)
    print(f"  domain:    {domain}")
    print(f"  boundary:  {', '.join(f'{a} {b}' for a, b in zip(meta.space, meta.boundary))}")
    if meta.steady:
        print(f"  inputs:    {', '.join(meta.input_channels) or '(unnamed)'}")
        print(f"  targets:   {', '.join(meta.channels)}")
    else:
        print(f"  channels:  {', '.join(meta.channels)}")
        print(f"  dt:        {_fmt(meta.dt)}")
    if meta.params:
        print(f"  params:    {json.dumps(meta.params, default=str)[:300]}")
    if meta.param_names:
        print(f"  per-trajectory params: {', '.join(meta.param_names)}")
    if meta.source:
        print(f"  source:    {meta.source}")
    print("  splits:")
    for name, sp in splits.items():
        mb = sp.path.stat().st_size / 2**20
        if meta.steady:
            desc = f"{len(sp)} samples, inputs {sp.shape}, targets {sp.targets_shape}"
        else:
            desc = f"{len(sp)} trajectories x {sp.n_frames} frames, fields {sp.shape}"
        extra = "  +geometry mask" if sp.has_mask else ""
        print(f"    {name:<5}  {desc}  {mb:.1f} MiB{extra}")
    if args.no_ranges:
        return
    print("  value ranges (min / max / mean / std per channel):")
    for name, sp in splits.items():
        stats = cached_stats(folder, name) if sp.path == folder / f"{name}.h5" else None
        if stats is None:
            stats = _scan(sp, compute_stats, not args.no_progress)
        bad = sorted({i for st in stats.values() for i in st.nonfinite})
        if bad:
            print(f"dpot info: warning: {nonfinite_message(folder, name, bad, len(sp))}", file=sys.stderr)
        for key, st in stats.items():
            label = name if key == "fields" else f"{name} {key}"
            for c, ch in enumerate(st.channels):
                print(
                    f"    {label:<13}  {ch:<10}  {_fmt(st.min[c]):>10} / {_fmt(st.max[c]):<10}  "
                    f"mean {_fmt(st.mean[c])}  std {_fmt(st.std[c])}"
                )
        sp.close()


def _scan(split, compute_stats, progress: bool):
    """One streaming pass over a split, with a progress bar counting values."""
    import math

    from tqdm import tqdm

    total = math.prod(split.shape) + (math.prod(split.targets_shape) if split.targets_shape else 0)
    with tqdm(
        total=total, unit="val", unit_scale=True, desc=f"scanning {split.path.name}", leave=False, disable=not progress
    ) as bar:
        return compute_stats(split, progress=bar.update)
