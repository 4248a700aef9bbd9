"""Released weights by name: `hf://OWNER/REPO/FILE.pth[@REVISION]` fetched through `huggingface_hub`.

The download goes through the Hugging Face cache (so a file is fetched once), honours revision pinning and
`HF_HUB_OFFLINE=1` (cache only), and the file is then read exactly like a local reference checkpoint
(`torch.load(weights_only=True)`, see `dpot.models.reference`). `huggingface_hub` is an optional extra
(`pip install 'dpot[hub]'`); the environment (`HF_HOME`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`) is read at call time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from dpot.errors import DpotError

PREFIX = "hf://"
INSTALL = "pip install 'dpot[hub]'"


@dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face model repository, optionally at a pinned revision (branch, tag or commit)."""

    repo_id: str
    filename: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"{PREFIX}{self.repo_id}/{self.filename}" + (f"@{self.revision}" if self.revision else "")


def is_hub_uri(text: str | os.PathLike) -> bool:
    """True for `hf://...` names."""
    return str(text).startswith(PREFIX)


def parse_hub_uri(uri: str, revision: str | None = None) -> HubFile:
    """`hf://OWNER/REPO/PATH[@REV]` -> `HubFile`; an explicit `revision` must agree with an `@REV` suffix."""
    body = str(uri)[len(PREFIX) :] if is_hub_uri(uri) else str(uri)
    body, at, rev = body.partition("@")
    parts = [p for p in body.split("/") if p]
    if len(parts) < 3 or (at and not rev):
        raise DpotError(f"{uri}: expected hf://OWNER/REPO/FILE[@REVISION], e.g. hf://hzk17/DPOT/model_Ti.pth")
    if rev and revision and rev != revision:
        raise DpotError(f"{uri}: pins revision {rev!r} but --revision says {revision!r}; give one")
    return HubFile("/".join(parts[:2]), "/".join(parts[2:]), rev or revision)


def cache_dir() -> Path:
    """The Hugging Face hub cache folder as the environment sets it now (`HF_HUB_CACHE`, else `HF_HOME/hub`)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def download(uri: str, revision: str | None = None) -> tuple[Path, HubFile]:
    """Fetch (or find in the cache) the file an `hf://` name points to; returns its local path and the name.

    Any failure (no network, offline with an empty cache, unknown repo, file or revision) is one DpotError line
    naming the repo, the file and the cache folder."""
    ref = parse_hub_uri(uri, revision)
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DpotError(f"{ref}: loading weights by name needs huggingface_hub: {INSTALL}") from None
    cache = cache_dir()
    try:
        path = hf_hub_download(
            ref.repo_id, ref.filename, revision=ref.revision, cache_dir=cache, local_files_only=_offline()
        )
    except Exception as exc:  # huggingface_hub raises HTTP, offline-cache and not-found errors of many types
        why = (str(exc).strip().split(". ")[0].splitlines() or [""])[0][:160]
        reason = "HF_HUB_OFFLINE=1 and it is not in the cache" if _offline() else f"{type(exc).__name__}: {why}"
        raise DpotError(
            f"cannot get {ref.filename} from Hugging Face repo {ref.repo_id}"
            f"{f' at revision {ref.revision}' if ref.revision else ''} ({reason}; cache folder {cache})"
        ) from None
    return Path(path), ref


def origin(ref: HubFile, path: Path) -> dict[str, str]:
    """Where a downloaded file came from, for the checkpoint's `source` record (commit from the cache path)."""
    parts = path.parts
    commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None
    return {
        "hub_repo": ref.repo_id,
        "hub_file": ref.filename,
        "hub_revision": ref.revision or "main",
        **({"hub_commit": commit} if commit else {}),
    }


def model_from_hub(uri: str, revision: str | None = None, map_location: str | torch.device = "cpu"):
    """A `DPOT` built from a released reference checkpoint named `hf://...` (converted in memory, safely)."""
    from dpot.models.dpot import DPOT
    from dpot.models.reference import check_state_dict, config_from_state_dict, load_reference_file

    path, _ = download(uri, revision)
    state, _, _ = load_reference_file(path)
    config = config_from_state_dict(state)
    check_state_dict(config, state)
    with torch.device("meta"):
        model = DPOT(config)
    model.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    model.reset_buffers()
    return model.to(map_location)
