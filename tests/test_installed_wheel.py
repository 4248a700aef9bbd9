"""The package as a user installs it: build the wheel, install it into a fresh virtual environment, and run
`dpot generate tiny`, `dpot pretrain --config tiny` and a tiny `dpot demo` from an empty folder, far from the
source checkout (the presets must ship inside the wheel; nothing may be read from the source tree)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from tinyplan import TINY_DEMO

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list, cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv (no system site-packages) holding only the built wheel; the dependencies (torch, h5py, …)
    come from the test's own environment through a path entry, so nothing is downloaded. That path entry does
    not process the environment's .pth files, so an editable install of the source stays invisible."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"  # a copy, so that building leaves no build/ or egg-info behind in the checkout
    src.mkdir()
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", src, "-w", base / "dist"],
        base,
        dict(os.environ),
    )
    wheel = next((base / "dist").glob("dpot-*.whl"))
    env_dir = base / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    _run([base_python, "-m", "venv", "--without-pip", env_dir], base, dict(os.environ))
    python = env_dir / "bin" / "python"
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base, dict(os.environ)
        ).strip()
    )
    (site / "_dpot_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([*pip, "--python", python, "install", "--no-deps", "--no-index", "-q", wheel], base, dict(os.environ))
    return env_dir


@pytest.mark.slow
def test_installed_wheel_runs_from_an_empty_folder(venv, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path / "empty"
    work.mkdir()
    where = _run([venv / "bin" / "python", "-c", "import dpot; print(dpot.__file__)"], work, env).strip()
    assert Path(where).is_relative_to(venv) and not Path(where).is_relative_to(ROOT), where
    dpot = venv / "bin" / "dpot"
    _run([dpot, "generate", "tiny", "--out", "data", "--quiet"], work, env)
    _run(
        [
            dpot,
            "pretrain",
            "--config",
            "tiny",
            "--out",
            "run",
            "data.root=data",
            "train.max_steps=2",
            "train.progress=false",
        ],
        work,
        env,
    )
    assert (work / "run" / "checkpoint" / "model.safetensors").is_file()
    assert "--out" in _run([dpot, "demo", "--help"], work, env)
    _run(
        [
            dpot,
            "demo",
            "--out",
            "demo",
            "--data",
            "data",
            *TINY_DEMO,
        ],
        work,
        env,
        timeout=600,
    )
    assert (work / "demo" / "report.md").is_file()
