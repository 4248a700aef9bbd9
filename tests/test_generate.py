"""`dpot generate`: presets, canonical output, manifest, resume, sharding, workers and bad input."""

from __future__ import annotations

import argparse
import json

import h5py
import numpy as np
import pytest

from dpot.commands import generate as command
from dpot.data.format import dataset_dirs, open_split
from dpot.errors import DpotError
from dpot.solvers.generate import generate
from dpot.solvers.presets import PRESETS, DatasetSpec
from dpot.solvers.registry import FAMILIES


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.run(parser.parse_args(list(argv)))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    assert run_cli("tiny", "--out", str(out), "--quiet") == 0
    return out


def test_tiny_covers_every_family(tiny):
    manifest = json.loads((tiny / "manifest.json").read_text())
    families = {d["family"] for d in manifest["datasets"].values()}
    assert families == set(FAMILIES)
    assert all(d["complete"] for d in manifest["datasets"].values())
    names = {p.name for p in dataset_dirs(tiny)}
    assert names == set(manifest["datasets"])
    for d in dataset_dirs(tiny):
        for split in ("train", "val", "test"):
            s = open_split(d, split)
            assert len(s) == manifest["datasets"][d.name]["splits"][split]["n"]
            if s.meta.steady:
                inputs, targets = s.pair(0)
                assert inputs.shape[:-1] == targets.shape[:-1]
            else:
                assert s.n_frames >= 14
                assert np.isfinite(s.frames(0)).all()
                assert s.meta.dt > 0


def test_tiny_rerun_skips_everything(tiny):
    before = {p: p.stat().st_mtime_ns for p in tiny.rglob("*.h5")}
    assert run_cli("tiny", "--out", str(tiny), "--quiet") == 0
    assert before == {p: p.stat().st_mtime_ns for p in tiny.rglob("*.h5")}


SMALL = [
    DatasetSpec("nsA", "ns2d_vorticity", 5, 2, 3, res=16, frames=4, batch=2),
    DatasetSpec("darcyA", "darcy_2d", 4, 1, 2, res=12, batch=3),
]


def test_resume_redoes_missing_and_half_written(tmp_path):
    generate(SMALL, tmp_path, workers=1, progress=False)
    ref = open_split(tmp_path / "nsA", "train").frames(3)
    (tmp_path / "nsA" / "train.h5").unlink()
    stale = tmp_path / "nsA" / ".train.h5.abc123.tmp"  # what a killed writer leaves behind
    stale.write_bytes(b"partial")
    keep = (tmp_path / "nsA" / "val.h5").stat().st_mtime_ns
    generate(SMALL, tmp_path, workers=1, progress=False)
    assert not stale.exists()
    assert (tmp_path / "nsA" / "val.h5").stat().st_mtime_ns == keep
    np.testing.assert_array_equal(open_split(tmp_path / "nsA", "train").frames(3), ref)


def test_changed_settings_are_refused(tmp_path):
    generate(SMALL[1:], tmp_path, workers=1, progress=False)
    changed = [DatasetSpec("darcyA", "darcy_2d", 4, 1, 2, res=16)]
    with pytest.raises(DpotError, match="different settings"):
        generate(changed, tmp_path, workers=1, progress=False)


def test_shards_and_parts_match_unsharded(tmp_path):
    whole = tmp_path / "whole"
    generate(SMALL, whole, workers=1, progress=False)
    sharded = tmp_path / "sharded"
    for i in range(3):
        generate(SMALL, sharded, workers=1, progress=False, shard=(i, 3), part_size=2)
    manifest = json.loads((sharded / "manifest.json").read_text())
    assert all(d["complete"] for d in manifest["datasets"].values())
    assert not list(sharded.rglob(".parts/*.h5"))
    for name in ("nsA", "darcyA"):
        for split in ("train", "val", "test"):
            with h5py.File(whole / name / f"{split}.h5") as a, h5py.File(sharded / name / f"{split}.h5") as b:
                key = "fields" if "fields" in a else "targets"
                np.testing.assert_array_equal(a[key][()], b[key][()])


def test_workers_pool_gives_identical_data(tmp_path):
    specs = [
        DatasetSpec("dr", "diffusion_reaction_2d", 3, 1, 1, res=12, frames=3),
        DatasetSpec("sw", "shallow_water_2d", 3, 1, 1, res=12, frames=3),
    ]
    generate(specs, tmp_path / "one", workers=1, progress=False)
    generate(specs, tmp_path / "two", workers=2, progress=False)
    for name in ("dr", "sw"):
        a = open_split(tmp_path / "one" / name, "train").frames(2)
        b = open_split(tmp_path / "two" / name, "train").frames(2)
        np.testing.assert_array_equal(a, b)


def test_family_mode_with_params(tmp_path):
    assert (
        run_cli(
            "ns2d_vorticity",
            "--out",
            str(tmp_path),
            "--n",
            "3",
            "--res",
            "16",
            "--frames",
            "3",
            "--param",
            "nu=1e-4",
            "--name",
            "ns_custom",
            "--quiet",
        )
        == 0
    )
    s = open_split(tmp_path / "ns_custom", "train")
    assert s.shape == (3, 3, 16, 16, 1)
    assert s.meta.params["nu"] == 1e-4
    np.testing.assert_allclose(s.params()[:, 0], 1e-4)
    assert len(open_split(tmp_path / "ns_custom", "test")) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope", "--out", "X"], "unknown preset or family 'nope'"),
        (["tiny"], "--out DIR is required"),
        (["tiny", "--out", "X", "--shard", "3/2"], "shard 3/2 is invalid"),
        (["tiny", "--out", "X", "--shard", "a"], "expected i/n"),
        (["darcy_2d", "--out", "X", "--param", "viscosity=1"], "no parameter 'viscosity'"),
        (["tiny", "--out", "X", "--res", "0"], "--res must be positive"),
        (["ns2d_vorticity", "--out", "X", "--param", "nu=fast"], "nu=fast: expected a number"),
        (["ns2d_vorticity", "--out", "X", "--param", "nu"], "expected KEY=VALUE"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, argv, message):
    argv = [a.replace("X", str(tmp_path / "out")) for a in argv]
    with pytest.raises(DpotError, match=message.replace("(", r"\(").replace("/", "/")):
        run_cli(*argv)


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DpotError, match="not writable"):
        run_cli("tiny", "--out", str(blocker / "sub"), "--quiet")
    with pytest.raises(DpotError, match="is not a folder"):
        run_cli("tiny", "--out", str(blocker), "--quiet")


def test_presets_meet_their_promises():
    tiny = PRESETS["tiny"]
    assert {FAMILIES[d.family].name for d in tiny.datasets} == set(FAMILIES)
    default = PRESETS["default"]
    two_d = [d for d in default.datasets if len(FAMILIES[d.family].space) == 2]
    assert len(two_d) >= 8 and all(d.res == 64 and d.n_train >= 100 and d.n_val and d.n_test for d in two_d)
    assert len({d.family for d in two_d}) >= 5
    assert all(d.frames is None or d.frames >= 14 for d in default.datasets)


def test_paper_shards_partition_the_jobs(tmp_path):
    from dpot.solvers.jobs import assign_shard, plan, resolve

    paper = PRESETS["paper"]
    jobs = plan([resolve(d) for d in paper.datasets], tmp_path, paper.part_size)
    assert all(j.n <= paper.part_size for j in jobs)
    shards = [assign_shard(jobs, i, 7) for i in range(7)]
    labels = sorted(j.label for s in shards for j in s)
    assert labels == sorted(j.label for j in jobs) and len(set(labels)) == len(labels)
    costs = [sum(j.cost for j in s) for s in shards]
    assert max(costs) < 1.5 * sum(costs) / 7  # balanced


def test_torchrun_ranks_are_shards(tmp_path, monkeypatch):
    argv = [
        "darcy_2d",
        "--out",
        str(tmp_path),
        "--n",
        "4",
        "--n-val",
        "2",
        "--n-test",
        "2",
        "--res",
        "8",
        "--part-size",
        "2",
        "--quiet",
    ]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    run_cli(*argv)
    assert not json.loads((tmp_path / "manifest.json").read_text())["datasets"]["darcy_2d"]["complete"]
    monkeypatch.setenv("RANK", "0")
    run_cli(*argv)
    assert json.loads((tmp_path / "manifest.json").read_text())["datasets"]["darcy_2d"]["complete"]
    assert len(open_split(tmp_path / "darcy_2d", "train")) == 4
