"""Released weights by name (`hf://OWNER/REPO/FILE.pth`): offline only, through a Hugging Face cache folder the
tests lay out the way `huggingface_hub` does (`models--OWNER--REPO/refs/main`, `snapshots/<commit>/FILE`)."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from test_model_reference import DIMS, reference_forward, reference_state, save_reference_file

from dpot.cli import main
from dpot.errors import DpotError
from dpot.models import DPOT, load_model
from dpot.models.hub import parse_hub_uri

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OLD = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An offline Hugging Face cache holding hzk17/DPOT/model_Ti.pth at two commits (main -> COMMIT)."""
    pytest.importorskip("huggingface_hub")
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--hzk17--DPOT"
    for commit, seed in ((COMMIT, 0), (OLD, 1)):
        (repo / "snapshots" / commit).mkdir(parents=True)
        save_reference_file(repo / "snapshots" / commit / "model_Ti.pth", reference_state(**DIMS, seed=seed))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_parse_names():
    assert parse_hub_uri("hf://hzk17/DPOT/model_Ti.pth").revision is None
    ref = parse_hub_uri("hf://hzk17/DPOT/sub/model_S.pth@v1")
    assert (ref.repo_id, ref.filename, ref.revision) == ("hzk17/DPOT", "sub/model_S.pth", "v1")
    for bad in ("hf://hzk17/model_Ti.pth", "hf://hzk17/DPOT/model_Ti.pth@"):
        with pytest.raises(DpotError, match="expected hf://OWNER/REPO/FILE"):
            parse_hub_uri(bad)
    with pytest.raises(DpotError, match="give one"):
        parse_hub_uri("hf://hzk17/DPOT/model_Ti.pth@v1", revision="v2")


def test_import_by_name_offline_and_pinned(hub_cache, tmp_path, capsys):
    out = tmp_path / "ckpt"
    assert main(["import-checkpoint", "hf://hzk17/DPOT/model_Ti.pth", "--out", str(out)]) == 0
    assert "parameters:" in capsys.readouterr().out
    source = json.loads((out / "config.json").read_text())["source"]
    assert (source["hub_repo"], source["hub_file"], source["hub_commit"]) == ("hzk17/DPOT", "model_Ti.pth", COMMIT)
    x = torch.randn(2, 16, 16, 5, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference_forward(reference_state(**DIMS), x, P=4, h=4, T_out=2, C_out=3)[0]
        assert torch.allclose(load_model(out)(x), expected, atol=1e-5, rtol=1e-5)
        # from_pretrained by name converts in memory: same network as the imported folder
        assert torch.allclose(DPOT.from_pretrained("hf://hzk17/DPOT/model_Ti.pth")(x), expected, atol=1e-5)
        pinned = DPOT.from_pretrained(f"hf://hzk17/DPOT/model_Ti.pth@{OLD}")(x)
        old = reference_forward(reference_state(**DIMS, seed=1), x, P=4, h=4, T_out=2, C_out=3)[0]
        assert torch.allclose(pinned, old, atol=1e-5, rtol=1e-5)
    out2 = tmp_path / "ckpt_old"
    assert main(["import-checkpoint", "hf://hzk17/DPOT/model_Ti.pth", "--revision", OLD, "--out", str(out2)]) == 0
    assert json.loads((out2 / "config.json").read_text())["source"]["hub_commit"] == OLD


def test_missing_file_or_empty_cache_is_one_line(hub_cache, tmp_path, monkeypatch, capsys):
    for name in ("hf://hzk17/DPOT/model_H.pth", "hf://someone/other/model_Ti.pth"):
        assert main(["import-checkpoint", name, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        repo, file = name[5:].rsplit("/", 1)
        assert len(err.splitlines()) == 1 and repo in err and file in err and str(hub_cache) in err, err
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(DpotError, match=r"hzk17/DPOT.*HF_HUB_OFFLINE=1.*cache folder .*empty"):
        DPOT.from_pretrained("hf://hzk17/DPOT/model_Ti.pth")
    assert not (tmp_path / "x").exists()


def test_without_huggingface_hub_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # what an environment without the extra sees
    with pytest.raises(DpotError, match=r"pip install 'dpot\[hub\]'"):
        DPOT.from_pretrained("hf://hzk17/DPOT/model_Ti.pth")
