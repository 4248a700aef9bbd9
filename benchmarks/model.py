"""DPOT model throughput and peak memory per preset, optionally side by side with the reference DPOTNet.

    python benchmarks/model.py                                  # Ti and S on CPU, fp32
    python benchmarks/model.py --reference /path/to/DPOT        # + the reference code (same weights and input)
    python benchmarks/model.py --gpu --reference /path/to/DPOT  # CUDA: ours bf16 autocast + torch.compile
    python benchmarks/model.py --roofline --presets Ti --roofline-threads 2,1  # CPU: fraction of the roofline

The reference is imported at run time from `PATH/models/dpot.py` (a checkout of github.com/HaoZhongkai/DPOT;
it needs `einops`); nothing of it is copied here. Timings alternate between the two models (ours, reference,
ours, ...) so that load from other processes hits both alike; the table reports the best of `--repeats` runs
and the JSON also keeps the medians. A training step = forward + relative-L2 loss + backward.
Columns: samples/s (wall, best run), peak training-step memory above rest, speed-up vs the reference by wall
time (`x fwd`, `x train`) and by process CPU time (`xcpu ...`, robust to other jobs on a shared machine when
`--threads 1`), and the largest output difference (fp32, same weights and input).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from dpot.io import write_json
from dpot.machine import machine_info
from dpot.models import DPOT, preset_config

RESULTS = Path(__file__).resolve().parent / "results"


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Runner:
    """One model under test: a callable returning the prediction, timed for forward and training steps."""

    def __init__(self, name: str, model: torch.nn.Module, call, device: torch.device, autocast: bool):
        self.name, self.model, self.call, self.device, self.autocast = name, model, call, device, autocast
        self.fwd: list[float] = []
        self.train: list[float] = []
        self.fwd_cpu: list[float] = []
        self.train_cpu: list[float] = []
        self.peak_mb = float("nan")

    def _ctx(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def forward_time(self, x: torch.Tensor) -> tuple[float, float]:
        """(wall seconds, process CPU seconds) of one no-grad forward."""
        self._sync()
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad(), self._ctx():
            self.call(x)
        self._sync()
        return time.perf_counter() - t0, time.process_time() - c0

    def train_time(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(wall seconds, process CPU seconds) of one forward + loss + backward."""
        self._sync()
        t0, c0 = time.perf_counter(), time.process_time()
        with self._ctx():
            pred = self.call(x)
        diff = (pred.float() - y).flatten(1, -2)
        loss = (diff.norm(dim=1) / y.flatten(1, -2).norm(dim=1)).mean()
        loss.backward()
        self.model.zero_grad(set_to_none=True)
        self._sync()
        return time.perf_counter() - t0, time.process_time() - c0

    def measure_memory(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Peak memory (MB) of one training step above the resting state: GPU allocator peak, or CPU peak RSS
        (meaningful in a fresh process with a fixed malloc mmap threshold, see `memory_in_subprocess`)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            self.train_time(x, y)
            return (torch.cuda.max_memory_allocated(self.device) - base) / 2**20
        self.train_time(x, y)
        if not _reset_peak_rss():
            return float("nan")
        base = _rss_mb("VmRSS")
        self.train_time(x, y)
        return _rss_mb("VmHWM") - base

    def summary(self, batch: int) -> dict:
        best_f, best_t = min(self.fwd), min(self.train)
        return {
            "fwd_s_best": best_f,
            "fwd_s_median": statistics.median(self.fwd),
            "train_s_best": best_t,
            "train_s_median": statistics.median(self.train),
            "fwd_cpu_s_best": min(self.fwd_cpu),
            "train_cpu_s_best": min(self.train_cpu),
            "fwd_samples_per_s": batch / best_f,
            "train_samples_per_s": batch / best_t,
            "peak_train_mem_mb": round(self.peak_mb, 1),
        }


def reference_model(path: str, cfg):
    """The reference DPOTNet with the same sizes as `cfg`, imported from the checkout at `path`."""
    sys.path.insert(0, str(Path(path).resolve()))
    try:
        from models.dpot import DPOTNet
    except ImportError as exc:
        raise SystemExit(f"cannot import models.dpot.DPOTNet from {path}: {exc}") from None
    return DPOTNet(
        img_size=cfg.img_size[0],
        patch_size=cfg.patch_size,
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        in_timesteps=cfg.in_timesteps,
        out_timesteps=cfg.out_timesteps,
        n_blocks=cfg.n_blocks,
        embed_dim=cfg.embed_dim,
        out_layer_dim=cfg.out_layer_dim,
        depth=cfg.depth,
        modes=32,
        mlp_ratio=cfg.mlp_ratio,
        n_cls=cfg.n_cls,
    )


def build(name: str, args, device: torch.device):
    """Config, our model, the reference (or None) with the same weights, input and target for one preset."""
    cfg = preset_config(name, img_size=args.res)
    torch.manual_seed(0)
    ours = DPOT(cfg)
    ref = None
    if args.reference:
        ref = reference_model(args.reference, cfg)
        ours.load_state_dict(ref.state_dict())  # same weights (reference init)
        ref = ref.to(device)
    ours = ours.to(device)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, args.res, args.res, cfg.in_timesteps, cfg.in_channels, generator=g).to(device)
    y = torch.randn(args.batch, args.res, args.res, cfg.out_timesteps, cfg.out_channels, generator=g).to(device)
    return cfg, ours, ref, x, y


def memory_in_subprocess(name: str, who: str, args) -> float:
    """CPU peak-RSS of one training step, measured in a fresh process whose malloc returns large blocks to
    the OS on free (fixed mmap threshold), so RSS follows the live tensors."""
    cmd = [
        sys.executable,
        __file__,
        "--_memory",
        who,
        "--presets",
        name,
        "--batch",
        str(args.batch),
        "--res",
        str(args.res),
        "--threads",
        str(torch.get_num_threads()),
    ]
    if args.reference:
        cmd += ["--reference", args.reference]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    try:
        return float(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"memory measurement failed for {name}/{who}: {proc.stderr.strip()[-300:]}")
        return float("nan")


def bench_preset(name: str, args, device: torch.device) -> dict:
    cfg, ours, ref, x, y = build(name, args, device)
    call = ours
    compiled = False
    if args.compile:
        try:
            call = torch.compile(ours, fullgraph=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                call(x).float().sum().backward()  # compile forward and backward now, outside the timings
            ours.zero_grad(set_to_none=True)
            compiled = True
        except Exception as exc:  # no C++ compiler / unsupported backend: measure eager instead
            print(f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); using eager")
            call = ours
    runners = [Runner("ours", ours, call, device, args.bf16)]
    result = {
        "preset": name,
        "params": ours.num_parameters(),
        "batch": args.batch,
        "res": args.res,
        "ours_mode": ("bf16 autocast" if args.bf16 else "fp32") + (" + compile" if compiled else " eager"),
    }
    if ref is not None:
        runners.append(Runner("reference", ref, lambda inp: ref(inp)[0], device, False))
        with torch.no_grad():
            a, b = ours(x).float(), ref(x)[0]
            result["output_diff_fp32"] = {
                "max_abs": (a - b).abs().max().item(),
                "rel_l2": ((a - b).norm() / b.norm()).item(),
            }
            if args.bf16 or compiled:  # the mode actually timed, against the fp32 reference
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                    c = call(x).float()
                result["output_diff_timed_mode"] = {
                    "max_abs": (c - b).abs().max().item(),
                    "rel_l2": ((c - b).norm() / b.norm()).item(),
                }
    for r in runners:  # warm-up (allocator, lazy inits)
        r.forward_time(x)
        r.train_time(x, y)
    for _ in range(args.repeats):  # alternate the models so background load hits both alike
        for r in runners:
            wall, cpu = r.forward_time(x)
            r.fwd.append(wall)
            r.fwd_cpu.append(cpu)
        for r in runners:
            wall, cpu = r.train_time(x, y)
            r.train.append(wall)
            r.train_cpu.append(cpu)
    for r in runners:
        if device.type == "cuda":
            r.peak_mb = r.measure_memory(x, y)
        else:
            r.peak_mb = memory_in_subprocess(name, r.name, args)
        result[r.name] = r.summary(args.batch)
    if ref is not None:
        o, rf = result["ours"], result["reference"]
        result["speedup_vs_reference"] = {
            key: rf[key] / o[key]
            for key in (
                "fwd_s_best",
                "train_s_best",
                "fwd_s_median",
                "train_s_median",
                "fwd_cpu_s_best",
                "train_cpu_s_best",
            )
        }
    return result


def matmul_gflops(n: int = 2048, repeats: int = 3) -> tuple[float, float]:
    """This process's best fp32 n^3 matmul rate in GFLOP/s, by wall time and by process CPU time: the roofline
    a training step is compared with."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        a @ b
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 2 * n**3 / min(wall) / 1e9, 2 * n**3 / min(cpu) / 1e9


def roofline(preset: str, batch: int, res: int, repeats: int) -> dict:
    """Fraction of the matmul roofline reached by one fp32 training step (forward + loss + backward) of
    `preset` on this CPU: counted FLOPs (torch.utils.flop_counter: matmuls and convolutions) / step time /
    the same process's 2048^3 matmul rate, by wall time and by process CPU time (the latter is robust to other
    jobs on a shared machine with one thread). Also the number of `aten::copy_` calls per step."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    args = argparse.Namespace(res=res, batch=batch, reference=None)
    _, model, _, x, y = build(preset, args, torch.device("cpu"))
    runner = Runner("ours", model, model, torch.device("cpu"), False)
    runner.train_time(x, y)
    with FlopCounterMode(display=False) as counter:
        runner.train_time(x, y)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        runner.train_time(x, y)
    copies = sum(1 for e in prof.events() if e.name == "aten::copy_")
    rates, steps = [], []
    for _ in range(repeats):  # interleaved, so that load from other processes hits both alike
        rates.append(matmul_gflops())
        steps.append(runner.train_time(x, y))
    gflop = counter.get_total_flops() / 1e9
    step, step_cpu = statistics.median(s[0] for s in steps), statistics.median(s[1] for s in steps)
    rate, rate_cpu = statistics.median(r[0] for r in rates), statistics.median(r[1] for r in rates)
    return {
        "preset": preset,
        "batch": batch,
        "res": res,
        "threads": torch.get_num_threads(),
        "gflop_per_step": gflop,
        "step_s_median": step,
        "step_cpu_s_median": step_cpu,
        "step_gflops": gflop / step,
        "matmul_gflops": rate,
        "fraction_of_matmul_rate": gflop / step / rate,
        "fraction_by_cpu_time": gflop / step_cpu / rate_cpu,
        "copy_calls_per_step": copies,
        "repeats": repeats,
    }


def memory_child(args) -> int:
    """`--_memory WHO`: print the peak training-step memory of one model (run by `memory_in_subprocess`)."""
    device = torch.device("cpu")
    cfg, ours, ref, x, y = build(args.presets, args, device)
    model = ours if args._memory == "ours" else ref
    call = model if args._memory == "ours" else (lambda inp: ref(inp)[0])
    print(Runner(args._memory, model, call, device, False).measure_memory(x, y))
    return 0


def print_table(results: list[dict]) -> None:
    head = (
        f"{'preset':6} {'params':>12} {'model':10} {'fwd/s':>8} {'train/s':>8} {'peak MB':>8} {'x fwd':>6} "
        f"{'x train':>7} {'xcpu fwd':>8} {'xcpu trn':>8} {'max|diff|':>9}"
    )
    print(head)
    print("-" * len(head))
    for res in results:
        for who in ("ours", "reference"):
            if who not in res:
                continue
            r = res[who]
            line = (
                f"{res['preset']:6} {res['params']:>12,} {who:10} {r['fwd_samples_per_s']:8.2f} "
                f"{r['train_samples_per_s']:8.2f} {r['peak_train_mem_mb']:8.0f}"
            )
            if who == "ours" and "speedup_vs_reference" in res:
                s = res["speedup_vs_reference"]
                line += (
                    f" {s['fwd_s_best']:6.2f} {s['train_s_best']:7.2f} {s['fwd_cpu_s_best']:8.2f} "
                    f"{s['train_cpu_s_best']:8.2f} {res['output_diff_fp32']['max_abs']:9.1e}"
                )
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="Ti,S", help="comma-separated presets (default Ti,S)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 2 on CPU, 16 on GPU)")
    parser.add_argument("--res", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--reference", default=None, help="path to a checkout of the reference DPOT repo")
    parser.add_argument("--gpu", action="store_true", help="CUDA, ours with bf16 autocast + torch.compile")
    parser.add_argument("--compile", action="store_true", help="torch.compile ours (implied by --gpu)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/model_{cpu,gpu}.json)")
    parser.add_argument(
        "--roofline",
        action="store_true",
        help="only the CPU roofline fraction of one training step per preset -> roofline_cpu.json",
    )
    parser.add_argument("--roofline-threads", default="2", help="--roofline: comma-separated thread counts")
    parser.add_argument("--_memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.roofline:
        info = machine_info(torch.device("cpu"))  # before the loop changes the thread count (see the rows)
        rows = []
        for threads in [int(t) for t in args.roofline_threads.split(",")]:
            torch.set_num_threads(threads)
            rows += [
                roofline(name.strip(), args.batch or 2, args.res, args.repeats)
                for name in args.presets.split(",")
                if name.strip()
            ]
        for r in rows:
            print(
                f"{r['preset']}: {r['gflop_per_step']:.1f} GFLOP/step, {r['step_s_median']:.3f} s/step -> "
                f"{r['step_gflops']:.0f} GFLOP/s = {r['fraction_of_matmul_rate']:.0%} of this process's "
                f"{r['matmul_gflops']:.0f} GFLOP/s matmul rate ({r['fraction_by_cpu_time']:.0%} by CPU time); "
                f"{r['copy_calls_per_step']} aten::copy_ per step"
            )
        info["load_average_end"] = list(os.getloadavg())
        out = Path(args.out) if args.out else RESULTS / "roofline_cpu.json"
        write_json(
            out,
            {
                "benchmark": "roofline",
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": info,
                "results": rows,
            },
        )
        print(f"wrote {out}")
        return 0
    if args._memory:
        args.batch = args.batch or 2
        return memory_child(args)
    if args.gpu:
        if not torch.cuda.is_available():
            raise SystemExit("--gpu: no CUDA device visible to torch")
        device = torch.device("cuda")
        args.compile, args.bf16 = True, True
    else:
        device = torch.device("cpu")
        args.bf16 = False
    args.batch = args.batch or (16 if args.gpu else 2)
    info = machine_info(device)
    results = [bench_preset(name.strip(), args, device) for name in args.presets.split(",") if name.strip()]
    info["load_average_end"] = list(os.getloadavg())
    print(
        f"{info.get('gpu', info['cpu'])}, {info['cores']} cores, torch {info['torch']}, "
        f"{info['torch_threads']} threads; batch {args.batch}, {args.res}x{args.res}, T_in=10, C=4; "
        f"best of {args.repeats}"
    )
    print_table(results)
    out = Path(args.out) if args.out else RESULTS / f"model_{'gpu' if args.gpu else 'cpu'}.json"
    write_json(
        out,
        {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": info,
            "settings": {k: v for k, v in vars(args).items() if not k.startswith("_")},
            "results": results,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
