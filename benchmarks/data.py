"""Data-loader throughput: random training windows/s from the canonical format vs the reference's approach.

Writes a multi-GB canonical file (128x128, 4 channels, 101 frames per trajectory) in a temporary folder, then
measures T_in=10 + 1 target windows per second through a DataLoader (0, 1, 2 workers) for
- dpot: `WindowDataset` + `BalancedSampler`, reading only the 11 frames of each window;
- reference: read the whole trajectory (101 frames), resize every frame bilinearly, then slice 11 frames
  (DPOT's `utils/griddataset.py`, with the HDF5 file kept open: generous to the reference),
and compares with the rate a DPOT-Ti training step (forward+backward, batch 8) consumes samples.
Results: a table on stdout and `benchmarks/results/data_cpu.json` (with the load average: other work on the
machine slows every row). The file is deleted at the end.

    python benchmarks/data.py [--gb 2.5] [--dir /tmp] [--seconds 8]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from dpot.data import BalancedSampler, DatasetMeta, Mixture, SplitWriter, WindowDataset, collate
from dpot.io import write_json
from dpot.machine import machine_info

RES, CHANNELS, FRAMES, T_IN, T_AR, BATCH = 128, 4, 101, 10, 1, 8


def write_file(folder: Path, gb: float) -> Path:
    """A canonical dataset of random frames, about `gb` GiB, written trajectory by trajectory."""
    frame = (FRAMES, RES, RES, CHANNELS)
    n = max(4, int(gb * 2**30 / (4 * np.prod(frame))))
    meta = DatasetMeta(
        name="bench",
        pde="compressible_ns",
        channels=["vx", "vy", "rho", "p"],
        space=["x", "y"],
        domain=[[0.0, 1.0], [0.0, 1.0]],
        boundary=["periodic", "periodic"],
        dt=0.05,
    )
    rng = np.random.default_rng(0)
    with SplitWriter(folder / "bench" / "train.h5", meta, n, frame) as w:
        for i in range(n):
            w.write(i, fields=rng.standard_normal(frame, dtype=np.float32))
    return folder / "bench"


def drop_cache(path: Path) -> bool:
    """Ask the kernel to evict the file from the page cache (works for clean pages, no root needed)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        return True
    except (OSError, AttributeError):
        return False


class ReferenceWindows(Dataset):
    """The reference's per-sample work: whole trajectory read, every frame resized, then an 11-frame slice."""

    def __init__(self, path: Path, n: int, seed: int = 0):
        self.path, self.n, self.seed, self._f = path, n, seed, None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if self._f is None:
            self._f = h5py.File(self.path, "r")
        traj = torch.from_numpy(np.asarray(self._f["fields"][i]))  # (T, X, Y, C), all 101 frames
        x = traj.permute(1, 2, 0, 3).reshape(1, RES, RES, -1).permute(0, 3, 1, 2)  # T*C channels
        x = F.interpolate(x, size=(RES, RES), mode="bilinear", align_corners=False)
        x = x[0].permute(1, 2, 0).reshape(RES, RES, FRAMES, CHANNELS)
        start = int(np.random.default_rng([self.seed, i]).integers(0, FRAMES - T_IN - T_AR + 1))
        stop = start + T_IN + T_AR
        return {"x": x[:, :, start : start + T_IN].clone(), "y": x[:, :, start + T_IN : stop].clone()}


def cpu_seconds() -> float:
    """User+system CPU time of this process and its reaped children (DataLoader workers once shut down)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def rate(
    dataset: Dataset, sampler, workers: int, seconds: float, cache_file: Path, cold: bool, collate_fn=None
) -> dict:
    """Windows/s through a DataLoader (a warm-up of 3 batches, then as many batches as fit in `seconds`), and
    CPU-seconds per window over the whole run including workers (robust to other jobs on the machine)."""
    if cold:
        drop_cache(cache_file)
    cpu0 = cpu_seconds()
    loader = DataLoader(
        dataset,
        batch_size=BATCH,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        collate_fn=collate_fn,
    )
    it = iter(loader)
    for _ in range(3):
        next(it)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        batch = next(it)
        n += batch["x"].shape[0]
    dt = time.perf_counter() - t0
    del it  # shuts the workers down, so their CPU time is counted
    cpu = (cpu_seconds() - cpu0) / (n + 3 * BATCH)
    return {
        "windows_per_s": round(n / dt, 1),
        "windows": n,
        "seconds": round(dt, 2),
        "cpu_ms_per_window": round(1000 * cpu, 2),
    }


def ti_rate(steps: int = 3) -> dict:
    """Samples/s a DPOT-Ti training step (forward + backward, batch 8, 128x128, T_in=10, C=4) consumes."""
    try:
        from dpot.models import DPOT
    except ImportError as exc:
        return {"available": False, "reason": f"dpot.models.DPOT missing ({exc})"}
    model = DPOT.from_preset("Ti")
    x = torch.randn(BATCH, RES, RES, T_IN, CHANNELS)
    y = torch.randn(BATCH, RES, RES, 1, CHANNELS)
    times, cpus = [], []
    for _ in range(steps + 1):
        t0, c0 = time.perf_counter(), cpu_seconds()
        out = model(x)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - c0)
    step = float(np.median(times[1:]))
    return {
        "available": True,
        "step_s": round(step, 3),
        "samples_per_s": round(BATCH / step, 2),
        "cpu_ms_per_sample": round(1000 * float(np.median(cpus[1:])) / BATCH, 1),
        "params": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.5, help="size of the benchmark file in GiB")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to create the temporary file")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per configuration")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "data_cpu.json"))
    args = parser.parse_args()
    free = shutil.disk_usage(args.dir).free / 2**30
    if free < 2 * args.gb + 1:
        raise SystemExit(f"{args.dir}: only {free:.1f} GiB free; need {2 * args.gb + 1:.1f} (use --dir or --gb)")
    tmp = Path(tempfile.mkdtemp(prefix="dpot-bench-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        folder = write_file(tmp, args.gb)
        h5 = folder / "train.h5"
        size = h5.stat().st_size / 2**30
        print(f"wrote {h5} ({size:.2f} GiB) in {time.perf_counter() - t0:.0f} s")
        ours = WindowDataset(folder, t_in=T_IN, t_ar=T_AR)
        mix = Mixture([ours])
        ref = ReferenceWindows(h5, len(ours.split))
        with h5py.File(h5, "r") as f:
            chunks = list(f["fields"].chunks)
        results: dict = {
            "machine": machine_info(),
            "file": {"gib": round(size, 2), "shape": list(ours.split.shape), "chunks": chunks, "dir": args.dir},
            "window": {"t_in": T_IN, "t_ar": T_AR, "batch": BATCH},
            "runs": [],
        }
        for cold, workers, name in itertools.product((False, True), (0, 1, 2), ("dpot", "reference")):
            if cold and workers == 1:
                continue
            ds = ours if name == "dpot" else ref
            sampler = (
                BalancedSampler(mix, seed=workers)
                if name == "dpot"
                else torch.utils.data.RandomSampler(ref, replacement=True, num_samples=10**9)
            )
            r = rate(ds, sampler, workers, args.seconds, h5, cold)
            r.update(loader=name, workers=workers, cache="cold" if cold else "warm")
            results["runs"].append(r)
            print(
                f"{name:>9}  workers={workers}  {r['cache']:<4}  {r['windows_per_s']:8.1f} windows/s  "
                f"{r['cpu_ms_per_window']:7.2f} CPU-ms/window"
            )
        r = rate(ours, BalancedSampler(mix, seed=9), 0, args.seconds, h5, False, collate_fn=collate)
        r.update(loader="dpot+collate", workers=0, cache="warm")
        results["runs"].append(r)
        print(
            f"dpot+collate (numpy) workers=0  warm  {r['windows_per_s']:8.1f} windows/s  "
            f"{r['cpu_ms_per_window']:7.2f} CPU-ms/window"
        )
        results["ti"] = ti_rate()
        results["machine"]["loadavg_1min_at_end"] = os.getloadavg()[0]
        ti = results["ti"]
        best = {(r["loader"], r["cache"]): 0.0 for r in results["runs"]}
        for r in results["runs"]:
            key = (r["loader"], r["cache"])
            best[key] = max(best[key], r["windows_per_s"])
        if ti.get("available"):
            print(f"DPOT-Ti forward+backward, batch {BATCH}: {ti['step_s']} s/step = {ti['samples_per_s']} samples/s")
            results["ratio_vs_ti"] = {f"{k[0]}_{k[1]}": round(v / ti["samples_per_s"], 1) for k, v in best.items()}
            print("loader / Ti consumption:", results["ratio_vs_ti"])
            cheapest = min(r["cpu_ms_per_window"] for r in results["runs"] if r["loader"] == "dpot")
            cpu_ratio = round(ti["cpu_ms_per_sample"] / cheapest, 1)
            results["ti_cpu_per_sample_over_loader_cpu_per_window"] = cpu_ratio
            print(f"Ti CPU-ms/sample {ti['cpu_ms_per_sample']} vs dpot loader {cheapest} CPU-ms/window: {cpu_ratio}x")
        else:
            print(f"DPOT-Ti step not measured: {ti['reason']}")
        results["speedup_vs_reference"] = {
            cache: round(best[("dpot", cache)] / best[("reference", cache)], 1) for cache in ("warm", "cold")
        }
        print("dpot / reference (best worker count):", results["speedup_vs_reference"])
        write_json(args.out, results)
        print(f"wrote {args.out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
