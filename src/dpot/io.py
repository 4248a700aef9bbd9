"""File I/O: atomic writes (write to a temporary name beside the target, then rename) and reads that turn a
foreign or damaged file into a one-line DpotError naming it."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dpot.errors import DpotError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` only if the block succeeds.

    Works for files and directories. An exception (or a kill) leaves the old target untouched and no partial
    output under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if path.is_dir() and tmp_path.is_dir():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp_path, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp_path, path)
    finally:
        if tmp_path.is_dir():
            shutil.rmtree(tmp_path, ignore_errors=True)
        elif tmp_path.exists():
            tmp_path.unlink()


def finite_json(obj: Any) -> tuple[Any, int]:
    """`obj` with every NaN/Inf float replaced by None (JSON null), and how many were replaced."""
    if isinstance(obj, float):
        return (obj, 0) if math.isfinite(obj) else (None, 1)
    if isinstance(obj, dict):
        items = [(k, *finite_json(v)) for k, v in obj.items()]
        return {k: v for k, v, _ in items}, sum(n for _, _, n in items)
    if isinstance(obj, (list, tuple)):
        items = [finite_json(v) for v in obj]
        return [v for v, _ in items], sum(n for _, n in items)
    return obj, 0


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented, valid JSON (NaN/Inf become null), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(finite_json(obj)[0], indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def staged_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside `folder`; if the block succeeds, move its files into `folder`
    (created if missing; other files there are kept). On an error nothing reaches `folder`, and a `folder`
    this call would have created is not created."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        yield stage
        folder.mkdir(exist_ok=True)
        for p in sorted(stage.iterdir()):
            os.replace(p, folder / p.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def prune_empty_dirs(folder: str | os.PathLike) -> None:
    """Remove `folder` and the folders under it if none of them holds a file (what a failed command that
    had just created them leaves behind); anything with a file in it is kept."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink()), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (an OSError, or a library's error wrapping one: h5py, safetensors, torch.save) says the
    disk or quota is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return any(s in text for s in ("No space left on device", "os error 28", "errno = 28", "file write failed"))


def write_safetensors(tensors: dict, path: str | os.PathLike, metadata: dict[str, str], name: str) -> None:
    """`safetensors.torch.save_file`, with a full disk raised as OSError(ENOSPC) naming `name`."""
    from safetensors.torch import save_file

    try:
        save_file(tensors, str(path), metadata=metadata)
    except Exception as exc:  # SafetensorError wraps the OS error in its message
        if is_disk_full(exc):
            raise OSError(errno.ENOSPC, "No space left on device", name) from None
        raise


def read_text_file(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file (YAML, JSON); a file in another encoding is a one-line error naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DpotError(
            f"{path}: not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}); save it as UTF-8"
        ) from None


def _damaged(path: str | os.PathLike, exc: BaseException) -> DpotError:
    return DpotError(
        f"{path}: not a readable safetensors file ({exc}); it is truncated or was not written by "
        "dpot: re-save or re-download it"
    )


def read_safetensors(path: str | os.PathLike, device: str = "cpu") -> dict:
    """All tensors of a `.safetensors` file, on `device`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=str(device))
    except SafetensorError as exc:
        raise _damaged(path, exc) from None


def safetensors_shapes(path: str | os.PathLike) -> dict[str, list[int]]:
    """The tensor names and shapes of a `.safetensors` file, from its header only."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    except SafetensorError as exc:
        raise _damaged(path, exc) from None
