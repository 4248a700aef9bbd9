"""neuraloperator `.pt` datasets (`{name}_train_{res}.pt`, `{name}_test_{res}.pt`: a dict of tensors, `x` the
input and `y` the target, batch first, the channel axis right after it or squeezed away when there is one
channel; loaded with `weights_only=True`). Steady-state pairs (Darcy: `x` (N, X, Y) -> `y` (N, X, Y);
Navier-Stokes) become inputs/targets; when `y` has one more axis than `x`, right after N, it is a trajectory
(Burgers 1D-time: `x` (N, X) initial condition, `y` (N, T, X)) and becomes time-dependent fields, with `x`
prepended as frame 0 unless `y` already starts with it. SRC: one `.pt` file, or a folder with one
`*_train_*.pt` and the `*_test_*.pt` of the same resolution (val is carved from train by --split)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dpot.data.format import DatasetMeta
from dpot.data.importers.arrays import Container, Stacked, parse_layout
from dpot.data.importers.common import WHOLE, ConvertOptions, Part, Plan, carve, carve_from_train, warn
from dpot.errors import DpotError

X_AXES = {2: "n x", 3: "n x y", 4: "n c x y", 5: "n c x y z"}  # x's axes by rank (channel squeezed when 1)
# file-name prefix (darcy_*, burgers_*, nsforcing_*) -> (pde, input channel, target channel, boundary) for the
# examples neuraloperator ships
KNOWN = {
    "darcy": ("darcy", "a", "u", "dirichlet"),
    "burgers": ("burgers", "u0", "u", "periodic"),
    "ns": ("ns2d_vorticity", "w_in", "w", "periodic"),
    "navier": ("ns2d_vorticity", "w_in", "w", "periodic"),
}


def _folder_files(src: Path) -> dict[str, Path]:
    """A downloaded neuraloperator folder: its train file and the test file of the same resolution."""
    trains = sorted(src.glob("*_train_*.pt"))
    if len(trains) != 1:
        raise DpotError(
            f"{src}: expected one *_train_<res>.pt file, found {len(trains)}; name the files with train=FILE test=FILE"
        )
    test = trains[0].with_name(trains[0].name.replace("_train_", "_test_"))
    if not test.is_file():
        raise DpotError(f"{src}: no {test.name} next to {trains[0].name}; name the files with train=FILE test=FILE")
    others = [p.name for p in sorted(src.glob("*_test_*.pt")) if p != test]
    if others:
        warn(
            f"{src}: {', '.join(others)} not converted (another resolution); convert each with "
            "`dpot convert neuralop test=FILE --name NAME` as an evaluation-only dataset"
        )
    return {"train": trains[0], "test": test}


def build(src: Path, opts: ConvertOptions) -> Plan:
    if src.is_dir():
        files = _folder_files(src)
        plans = {s: _file_plan(p, opts) for s, p in files.items()}
        plan = plans["train"]
        train = plan.splits["train"]
        if opts.split == WHOLE:
            plan.splits = carve(train + plans["test"].splits["train"], WHOLE)
        else:
            plan.splits = {**carve_from_train(train, opts.split, ["val"]), "test": plans["test"].splits["train"]}
        plan.meta.name = re.sub(r"_train_.*", "", files["train"].stem)
        plan.meta.params["splits"] = "source (train/test files); val carved from train"
        plan.meta.source = str(src)
        return plan
    plan = _file_plan(src, opts)
    plan.splits = carve(plan.splits["train"], opts.split)
    return plan


def _file_plan(path: Path, opts: ConvertOptions) -> Plan:
    """All samples of one `.pt` file, in the `train` slot."""
    if path.suffix not in (".pt", ".pth"):
        raise DpotError(f"{path}: not a neuraloperator .pt file")
    box = Container(path)
    x, y = box.get("x"), box.get("y")
    if x.shape[0] != y.shape[0]:
        raise DpotError(f"{path}: x has {x.shape[0]} samples but y has {y.shape[0]}")
    if opts.layout:
        x_axes, space = parse_layout(opts.layout, steady=True)
        if x_axes[0] != "n" or len(x_axes) != x.ndim:
            raise DpotError(
                f"--layout {opts.layout!r} must name the {x.ndim} axes of x {tuple(x.shape)}, starting with n"
            )
    elif x.ndim in X_AXES:
        x_axes = X_AXES[x.ndim].split()
        space = [a for a in x_axes if a not in ("n", "c")]
    else:
        raise DpotError(
            f"{path}: x has shape {tuple(x.shape)}; expected (N, X), (N, X, Y), (N, C, X, Y) or "
            "(N, C, X, Y, Z) (or pass --layout)"
        )
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", path.stem)
    word = next((k for k in KNOWN if stem.lower().startswith(k)), None)
    pde, in_name, out_name, boundary = KNOWN[word] if word else ("other", "x", "y", "periodic")
    ndim = len(space)
    common = dict(
        name=stem,
        pde=pde,
        space=space,
        domain=[[0.0, 1.0]] * ndim,
        boundary=[boundary] * ndim,
        source=str(path),
        params={"file": path.name, "layout": " ".join(x_axes)},
    )
    timed = y.ndim == x.ndim + 1 and tuple(y.shape[2:]) == tuple(x.shape[1:])
    if timed:
        return _trajectories(path, box, x_axes, space, out_name, common, opts)
    if y.ndim == x.ndim:
        y_axes = x_axes
    elif y.ndim == x.ndim - 1 and "c" in x_axes:
        y_axes = [a for a in x_axes if a != "c"]
    else:
        y_axes = []
    sizes = dict(zip(x_axes, x.shape))
    if not y_axes or any(sizes[a] != n for a, n in zip(y_axes, y.shape) if a != "c"):
        raise DpotError(
            f"{path}: y {tuple(y.shape)} matches neither the grid of x {tuple(x.shape)} (steady "
            "state) nor x with a time axis after N (trajectories)"
        )
    canon = ["n", *space, "c"]
    ins, outs = Stacked(box, ["x"], x_axes, canon), Stacked(box, ["y"], y_axes, canon)
    meta = DatasetMeta(
        channels=_names(out_name, outs.counts[0]), input_channels=_names(in_name, ins.counts[0]), steady=True, **common
    )

    def read(a: int, b: int) -> dict[str, np.ndarray]:
        return {"inputs": ins.read(a, b), "targets": outs.read(a, b)}

    return Plan(
        meta, {"train": [Part(ins.n, read, str(path))]}, inputs_shape=ins.sample_shape, targets_shape=outs.sample_shape
    )


def _trajectories(
    path: Path, box: Container, x_axes: list[str], space: list[str], name: str, common: dict, opts: ConvertOptions
) -> Plan:
    """`y` (N, T, ...) as frames; `x` (the initial state) becomes frame 0 unless `y[:, 0]` already equals it."""
    canon = ["n", "t", *space, "c"]
    frames = Stacked(box, ["y"], ["n", "t", *x_axes[1:]], canon)
    first = Stacked(box, ["x"], ["n", *x_axes[1:]], ["n", *space, "c"])
    prepend = not np.allclose(first.read(0, 1), frames.read(0, 1)[:, 0])
    t, *rest = frames.sample_shape
    if opts.dt is None:
        warn(f"{path}: neuraloperator files store no time step; dt = 1.0 (pass --dt to set the physical step)")
    meta = DatasetMeta(channels=_names(name, rest[-1]), **common)
    meta.params["x"] = "prepended as frame 0" if prepend else "equals y[:, 0]"

    def read(a: int, b: int) -> dict[str, np.ndarray]:
        y = frames.read(a, b)
        return {"fields": np.concatenate([first.read(a, b)[:, None], y], axis=1) if prepend else y}

    return Plan(meta, {"train": [Part(frames.n, read, str(path))]}, frame_shape=(t + int(prepend), *rest))


def _names(base: str, n: int) -> list[str]:
    return [base] if n == 1 else [f"{base}{i}" for i in range(n)]
