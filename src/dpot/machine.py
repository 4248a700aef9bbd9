"""Name the machine a measurement came from (CPU model, cores, GPU, versions, load), for benchmarks and runs."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(device: Any = "cpu") -> dict[str, Any]:
    """CPU model and cores, RAM, the GPU when `device` is CUDA, torch/python/dpot versions, 1-min load now."""
    import torch

    from dpot import __version__

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "dpot": __version__,
        "loadavg_1min_at_start": os.getloadavg()[0],
    }
    try:
        info["ram_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def machine_label(info: dict[str, Any]) -> str:
    """One line for tables: the GPU if there was one, else the CPU with cores, threads and load."""
    if info.get("gpu"):
        return f"{info['gpu']} (torch {info.get('torch', '?')})"
    load = info.get("loadavg_1min_at_start", info.get("load_average_start", [None]))
    load = load[0] if isinstance(load, list) else load
    threads = info.get("torch_threads")
    return (
        f"{info.get('cpu', '?')}, {info.get('cores', info.get('cpu_cores', '?'))} cores"
        + (f", {threads} torch thread(s)" if threads else "")
        + (f", load {load:.1f}" if isinstance(load, (int, float)) else "")
    )
