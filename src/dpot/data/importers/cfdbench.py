"""CFDBench (`<problem>/<subset>/caseNNNN/` with `case.json`, `u.npy`, `v.npy` of shape (T, 64, 64) =
(time, height=y, width=x)). Cases have different lengths, so, as DPOT does, each case is cut into windows
of `--frames` frames, the last window padded by repeating the final frame. Channels are (u, v, mask): the
geometry mask (1 = fluid, 0 = obstacle) is computed from `case.json` because CFDBench does not store it.
Splits are carved by case (one case's windows stay in one split), cases in subset order bc, geo, prop."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from dpot.data.format import SPLITS, DatasetMeta
from dpot.data.importers.common import WHOLE, ConvertOptions, Part, Plan, carve, parse_split
from dpot.errors import DpotError

PROBLEMS = {  # problem -> (boundary per axis (x, y), time between frames in seconds, from CFDBench's loaders)
    "cavity": (["wall", "wall"], 0.1),
    "tube": (["open", "wall"], 0.1),
    "cylinder": (["open", "wall"], 0.001),
}
SUBSETS = ("bc", "geo", "prop")


def _case_dirs(src: Path) -> list[Path]:
    cases = [p.parent for p in src.rglob("case.json")]
    if not cases:
        raise DpotError(f"{src}: no CFDBench case folders (caseNNNN/ with case.json, u.npy, v.npy)")

    def key(p: Path):
        parts = p.relative_to(src).parts
        sub = next((SUBSETS.index(s) for s in parts if s in SUBSETS), len(SUBSETS))
        digits = "".join(ch for ch in p.name if ch.isdigit())
        return (sub, str(p.parent), int(digits) if digits else -1, p.name)

    return sorted(cases, key=key)


def _problem(src: Path, case: Path) -> str:
    for part in reversed((src.resolve() / case.relative_to(src)).parts):
        if part in PROBLEMS:
            return part
        if part == "dam":
            raise DpotError(
                f"{src}: the dam problem is not supported (its obstacle geometry is not "
                "described in "
                "case.json, so the mask cannot be computed; DPOT drops it too)"
            )
    params = _load_json(case)
    return "cylinder" if "radius" in params else "cavity"


def _load_json(case: Path) -> dict:
    try:
        return json.loads((case / "case.json").read_text())
    except (OSError, ValueError) as exc:
        raise DpotError(f"{case / 'case.json'}: cannot read ({exc})") from None


def _load_uv(case: Path) -> tuple[np.ndarray, np.ndarray]:
    arrs = []
    for key in ("u", "v"):
        p = case / f"{key}.npy"
        if not p.is_file():
            raise DpotError(f"{case}: {key}.npy missing")
        try:
            arrs.append(np.load(p, mmap_mode="r"))
        except (OSError, ValueError) as exc:
            raise DpotError(f"{p}: cannot read ({exc}); the file may be truncated or corrupt") from None
    u, v = arrs
    if u.ndim != 3 or u.shape != v.shape:
        raise DpotError(f"{case}: u.npy {u.shape} and v.npy {v.shape} must both be (T, height, width)")
    return u, v


def geometry_mask(problem: str, params: dict, height: int, width: int) -> np.ndarray:
    """Mask (width, height) in canonical (x, y) order: 0 inside the cylinder, 1 in the fluid. The cylinder
    of `radius` sits at the origin of the case's coordinates; the grid spans [x_min, x_max] x [y_min, y_max]
    at cell centres."""
    mask = np.ones((width, height), dtype=np.float32)
    if problem != "cylinder":
        return mask
    try:
        x0, x1, y0, y1, r = (float(params[k]) for k in ("x_min", "x_max", "y_min", "y_max", "radius"))
    except KeyError as exc:
        raise DpotError(f"cylinder case.json lacks {exc}; cannot compute the geometry mask") from None
    x = x0 + (np.arange(width) + 0.5) * (x1 - x0) / width
    y = y0 + (np.arange(height) + 0.5) * (y1 - y0) / height
    mask[x[:, None] ** 2 + y[None, :] ** 2 <= r * r] = 0.0
    return mask


def build(src: Path, opts: ConvertOptions) -> Plan:
    if opts.frames < 2:
        raise DpotError(f"bad --frames {opts.frames}: need at least 2 frames per window")
    cases = _case_dirs(src)
    problem = _problem(src, cases[0])
    boundary, dt = PROBLEMS[problem]
    infos, numeric_keys = [], None
    for case in cases:
        params = _load_json(case)
        u, _ = _load_uv(case)
        infos.append((case, params, u.shape))
        keys = {k for k, v in params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        numeric_keys = keys if numeric_keys is None else numeric_keys & keys
    shape = infos[0][2][1:]
    for case, _, shp in infos:
        if shp[1:] != shape:
            raise DpotError(f"{case}: grid {shp[1:]} differs from {infos[0][0]} {shape}")
    names = sorted(numeric_keys or [])
    frames = opts.frames
    # each case becomes ceil(T / frames) windows; one Part per case keeps a case's windows in one split
    case_parts = [
        Part(math.ceil(shp[0] / frames), _reader(case, params, problem, names, frames), str(case))
        for case, params, shp in infos
    ]
    splits = carve_cases(case_parts, opts.split)
    p0 = infos[0][1]
    if problem == "cylinder":
        domain = [[float(p0["x_min"]), float(p0["x_max"])], [float(p0["y_min"]), float(p0["y_max"])]]
    else:
        domain = [[0.0, float(p0.get("width", 1.0))], [0.0, float(p0.get("height", 1.0))]]
    pde = "cavity" if problem == "cavity" else "ns2d_incompressible"
    name = f"cfdbench_{problem}" + (f"_{src.name}" if src.name in SUBSETS else "")
    meta = DatasetMeta(
        name=name,
        pde=pde,
        channels=["u", "v", "mask"],
        space=["x", "y"],
        domain=domain,
        boundary=boundary,
        dt=dt,
        params={
            "problem": problem,
            "cases": len(cases),
            "frames_per_window": frames,
            "last_window": "padded by repeating the final frame",
        },
        param_names=names,
        source=str(src),
    )
    return Plan(meta, splits, frame_shape=(frames, shape[1], shape[0], 3), n_params=len(names))


def carve_cases(case_parts: list[Part], split: str) -> dict[str, list[Part]]:
    """Split by case: --split counts cases, each case contributing all its windows to one split."""
    if split == WHOLE:
        return carve(case_parts, split)
    bounds = np.cumsum([0, *parse_split(split, len(case_parts))])
    return {s: case_parts[lo:hi] for s, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:])}


def _reader(case: Path, params: dict, problem: str, names: list[str], frames: int):
    def read(a: int, b: int) -> dict[str, np.ndarray]:
        u, v = _load_uv(case)
        t, h, w = u.shape
        mask = geometry_mask(problem, params, h, w)
        stop = min(t, b * frames)
        uv = np.stack([np.asarray(u[a * frames : stop]), np.asarray(v[a * frames : stop])], axis=-1)
        uv = uv.transpose(0, 2, 1, 3).astype(np.float32)  # (T', height, width, 2) -> (T', x, y, 2)
        pad = (b - a) * frames - len(uv)
        if pad:
            uv = np.concatenate([uv, np.repeat(uv[-1:], pad, axis=0)])
        m = np.broadcast_to(mask[None, :, :, None], (len(uv), w, h, 1))
        fields = np.concatenate([uv, m], axis=-1).reshape(b - a, frames, w, h, 3)
        out = {"fields": fields}
        if names:
            out["params"] = np.tile(np.array([float(params[k]) for k in names]), (b - a, 1))
        return out

    return read
