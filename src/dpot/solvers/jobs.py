"""A corpus as jobs, before anything runs: dataset specs resolved against their family's defaults, the fixed
trajectory index range of each split, the job list (dataset x split x part), its sharding, and each split
file's metadata. `dpot.solvers.generate` runs these jobs.

Splits are fixed trajectory index ranges (train from 0, val from 10^7, test from 2*10^7), so the val and
test sets do not change when the number of training trajectories does, and any part can be regenerated on
its own.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpot.data.format import DatasetMeta
from dpot.errors import DpotError
from dpot.solvers.base import Family
from dpot.solvers.presets import DatasetSpec
from dpot.solvers.registry import get_family

SPLIT_OFFSETS = {"train": 0, "val": 10_000_000, "test": 20_000_000}


def dataset_seed(seed: int, name: str) -> int:
    """The seed of dataset `name` in a corpus generated with `seed` (each dataset gets its own draws)."""
    return (int(seed) << 32) + zlib.crc32(name.encode())


@dataclass(frozen=True)
class Resolved:
    """A DatasetSpec with the family defaults filled in: everything that determines the data."""

    spec: DatasetSpec
    family: Family
    res: int
    frames: int
    dt: float
    params: dict[str, Any]  # physical parameters passed to simulate
    seed: int

    def counts(self) -> dict[str, int]:
        return {"train": self.spec.n_train, "val": self.spec.n_val, "test": self.spec.n_test}

    def generator_settings(self) -> dict[str, Any]:
        return {
            "family": self.family.name,
            "seed": self.seed,
            "res": self.res,
            "frames": self.frames,
            "params": self.params,
        }


def resolve(spec: DatasetSpec, seed: int = 0) -> Resolved:
    """Fill in family defaults; validate sizes."""
    family = get_family(spec.family)
    res = int(spec.res or family.defaults.get("res", 64))
    frames = 1 if family.steady else int(spec.frames or family.defaults.get("frames", 21))
    params = {k: v for k, v in family.defaults.items() if k not in ("res", "frames")}
    params.update(spec.params)
    if min(spec.n_train, spec.n_val, spec.n_test) < 0 or spec.n_train + spec.n_val + spec.n_test == 0:
        raise DpotError(f"dataset {spec.name!r}: trajectory counts must be >= 0 and not all zero")
    if res < 4:
        raise DpotError(f"dataset {spec.name!r}: resolution {res} is too small (use >= 4)")
    if not family.steady and frames < 2:
        raise DpotError(f"dataset {spec.name!r}: need at least 2 frames (got {frames})")
    if spec.batch < 1:
        raise DpotError(f"dataset {spec.name!r}: batch must be >= 1")
    dt = 1.0 if family.steady else float(params.get("dt", family.dt))
    return Resolved(spec, family, res, frames, dt, params, dataset_seed(seed, spec.name))


@dataclass(frozen=True)
class Job:
    """Trajectories `start .. start+n-1` of one split of one dataset, written to `path` (split or part)."""

    dataset: Resolved
    split: str
    part: int
    n_parts: int
    start: int
    n: int
    path: Path

    @property
    def cost(self) -> float:
        return self.n * self.dataset.frames * self.dataset.res ** len(self.dataset.family.space)

    @property
    def label(self) -> str:
        part = f" part {self.part + 1}/{self.n_parts}" if self.n_parts > 1 else ""
        return f"{self.dataset.spec.name}/{self.split}{part}"


def split_path(out: Path, name: str, split: str) -> Path:
    return out / name / f"{split}.h5"


def part_path(out: Path, name: str, split: str, part: int, n_parts: int) -> Path:
    return out / name / ".parts" / f"{split}-{part:05d}-of-{n_parts:05d}.h5"


def plan(datasets: Iterable[Resolved], out: Path, part_size: int) -> list[Job]:
    """All jobs of a corpus, in a fixed order (every shard computes the same list)."""
    jobs = []
    for ds in datasets:
        for split, count in ds.counts().items():
            if count == 0:
                continue
            n_parts = -(-count // part_size)
            for p in range(n_parts):
                lo = p * part_size
                n = min(part_size, count - lo)
                path = (
                    split_path(out, ds.spec.name, split)
                    if n_parts == 1
                    else part_path(out, ds.spec.name, split, p, n_parts)
                )
                jobs.append(Job(ds, split, p, n_parts, SPLIT_OFFSETS[split] + lo, n, path))
    return jobs


def assign_shard(jobs: list[Job], index: int, count: int) -> list[Job]:
    """Jobs of shard `index` of `count`: longest-processing-time-first greedy balancing by estimated cost."""
    if count == 1:
        return jobs
    loads = [0.0] * count
    mine = []
    order = sorted(range(len(jobs)), key=lambda k: (-jobs[k].cost, k))
    for k in order:
        s = min(range(count), key=lambda i: (loads[i], i))
        loads[s] += jobs[k].cost
        if s == index:
            mine.append(jobs[k])
    return mine


def split_meta(ds: Resolved, split: str, start: int, n: int) -> DatasetMeta:
    f = ds.family
    return DatasetMeta(
        name=ds.spec.name,
        pde=f.pde,
        channels=list(f.channels),
        space=list(f.space),
        domain=f.domain,
        boundary=list(f.boundary),
        dt=ds.dt,
        params={
            **ds.params,
            "generator": ds.generator_settings(),
            "split": split,
            "trajectories": [start, start + n],
        },
        param_names=list(f.param_names),
        source=f"dpot generate ({f.name}: {f.description})",
        steady=f.steady,
        input_channels=list(f.input_channels),
    )
