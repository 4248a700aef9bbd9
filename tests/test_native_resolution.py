"""Pre-training at each dataset's own grid (`data.resolution: native`): one-grid batches with the balanced
proportions, the same grid on every rank, exact resume, 1D and non-square 2D mixtures."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dpot.data import BalancedSampler, DatasetMeta, Mixture, write_split
from dpot.errors import DpotError

TINY = "tiny"  # the packaged preset
QUICK = [
    "train.eval_trajectories=1",
    "train.eval_steps=2",
    "train.log_every=1",
    "train.batch_size=4",
    "data.resolution=native",
]


def _write(root: Path, name: str, space: tuple[int, ...], n: int = 4, frames: int = 8, seed: int = 0) -> Path:
    """Smooth random periodic fields translated one cell per frame along the first axis (train and test)."""
    rng = np.random.default_rng(seed)
    k2 = sum(np.meshgrid(*[np.fft.fftfreq(s) ** 2 for s in space], indexing="ij"))
    meta = DatasetMeta(
        name=name,
        pde="advection",
        channels=["u"],
        space=["x", "y"][: len(space)],
        domain=[[0.0, 1.0]] * len(space),
        boundary=["periodic"] * len(space),
        dt=0.1,
        source="tests",
    )
    for split in ("train", "test"):
        spec = rng.standard_normal((n, *space)) * np.exp(-40 * k2)
        base = np.fft.ifftn(spec, axes=range(1, len(space) + 1)).real
        base /= base.std(axis=tuple(range(1, len(space) + 1)), keepdims=True)
        fields = np.stack([np.roll(base, t, axis=1) for t in range(frames)], axis=1)[..., None]
        write_split(root / name / f"{split}.h5", meta, fields=fields.astype(np.float32) + 1.0)
    return root / name


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """Three 2D datasets on 8x8, 16x16 and the non-square 8x16 grid."""
    root = tmp_path_factory.mktemp("native")
    return root, [
        _write(root, "small", (8, 8), seed=0),
        _write(root, "big", (16, 16), seed=1),
        _write(root, "wide", (8, 16), seed=2),
    ]


def _draw(sampler, n):
    return np.fromiter(itertools.islice(iter(sampler), n), dtype=np.int64, count=n)


def _datasets(mixture, idx):
    return np.searchsorted(mixture.offsets, idx, side="right") - 1


def test_batches_have_one_grid_and_the_balanced_shares(grids):
    _, dirs = grids
    small2 = dirs[0].parent / "small2"
    if not small2.exists():
        _write(dirs[0].parent, "small2", (8, 8), seed=3)
    m = Mixture.from_dirs([*dirs, small2], t_in=4, weights=[1, 2, 1, 4], mixed_grids=True)
    assert m.buckets == [[0, 3], [1], [2]]
    sampler = BalancedSampler(m, seed=3, group=4)
    np.testing.assert_allclose(sampler.bucket_probabilities(), [5 / 8, 2 / 8, 1 / 8])
    ks = _datasets(m, _draw(sampler, 40000)).reshape(-1, 4)
    grid_of = np.array([0, 1, 2, 0])
    assert np.all(grid_of[ks] == grid_of[ks[:, :1]])  # every batch of 4 on one grid
    np.testing.assert_allclose(np.bincount(ks.ravel(), minlength=4) / ks.size, [1 / 8, 2 / 8, 1 / 8, 4 / 8], atol=0.02)
    uniform = BalancedSampler(m, seed=3, balanced=False, group=4)  # shares ∝ trajectories: 4 each
    ks = _datasets(m, _draw(uniform, 40000))
    np.testing.assert_allclose(np.bincount(ks, minlength=4) / ks.size, [0.25] * 4, atol=0.02)
    one = Mixture.from_dirs([dirs[0], small2], t_in=4, mixed_grids=True)  # one grid: the usual stream
    assert np.array_equal(_draw(BalancedSampler(one, seed=5, group=4), 500), _draw(BalancedSampler(one, seed=5), 500))


def test_ranks_share_the_grid_sequence_and_resume_exactly(grids):
    _, dirs = grids
    m = Mixture.from_dirs(dirs, t_in=4, mixed_grids=True)
    grid_of = np.array([0, 1, 2])
    r0, r1 = (BalancedSampler(m, seed=1, rank=r, world_size=2, group=3) for r in (0, 1))
    a, b = _draw(r0, 9000), _draw(r1, 9000)
    assert np.array_equal(grid_of[_datasets(m, a)][::3], grid_of[_datasets(m, b)][::3])
    assert len(set(grid_of[_datasets(m, a)][::3])) == 3
    local = [np.array([m.locate(int(i))[1] for i in x]) for x in (a, b)]
    assert np.all(local[0] % 2 == 0) and np.all(local[1] % 2 == 1)  # each rank on its own shard
    fresh = BalancedSampler(m, seed=1, rank=0, world_size=2, group=3)
    fresh.load_state_dict(r0.state_dict(position=4095))  # resume at a block boundary (4095 = 1365 groups)
    assert np.array_equal(_draw(fresh, 3000), a[4095:7095])
    with pytest.raises(DpotError, match="batch size"):
        BalancedSampler(m, group=4).load_state_dict(r0.state_dict())


def test_grid_errors(grids, tmp_path):
    _, dirs = grids
    with pytest.raises(DpotError, match="different grids .*resolution=native"):
        Mixture.from_dirs(dirs, t_in=4)
    line = _write(tmp_path, "line", (16,))
    with pytest.raises(DpotError, match="different spatial dimensions"):
        Mixture.from_dirs([dirs[0], line], t_in=4, mixed_grids=True)


def pretrain(*args) -> int:
    from dpot.cli import main

    return main(["pretrain", *map(str, args)])


def test_native_pretrain_resumes_bit_for_bit(grids, tmp_path):
    from safetensors.torch import load_file

    root, _ = grids
    data = [f"data.root={root}", "data.datasets=[small,big,wide]", "train.checkpoint_every=3"]
    straight, run = tmp_path / "straight", tmp_path / "run"
    assert pretrain("--config", TINY, "--out", straight, *data, "train.max_steps=6", *QUICK) == 0
    assert pretrain("--config", TINY, "--out", run, *data, "train.max_steps=4", *QUICK) == 0
    assert pretrain("--resume", run, "train.max_steps=6") == 0
    ref, got = (load_file(str(r / "checkpoint" / "model.safetensors")) for r in (straight, run))
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    lines = [json.loads(s) for s in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in lines] == [
        json.loads(s)["loss"] for s in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert all(len(r["loss_per_dataset"]) == 1 for r in lines)  # one grid per batch: here one dataset each
    assert set(lines[-1]["eval_l2re"]) == {"small", "big", "wide"}
    info = json.loads((straight / "checkpoint" / "config.json").read_text())
    assert info["model"]["img_size"] == [16, 16] and info["model"]["interpolate_pos_embed"] is True
    assert [d["shape"] for d in info["data"]] == [[8, 8], [16, 16], [8, 16]]


def test_native_1d_mixture_trains(tmp_path):
    root = tmp_path / "data"
    _write(root, "l16", (16,))
    _write(root, "l32", (32,), seed=1)
    run = tmp_path / "run"
    assert pretrain("--config", TINY, "--out", run, f"data.root={root}", "train.max_steps=2", *QUICK) == 0
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert set(last["eval_l2re"]) == {"l16", "l32"} and all(np.isfinite(list(last["eval_l2re"].values())))


def test_native_grid_must_fit_the_patch(tmp_path, capsys):
    root = tmp_path / "data"
    _write(root, "odd", (8, 6))
    _write(root, "even", (8, 8), seed=1)
    assert pretrain("--config", TINY, "--out", tmp_path / "run", f"data.root={root}", "train.max_steps=1", *QUICK) == 2
    assert "not divisible by the model's patch_size=4" in capsys.readouterr().err


def test_native_ddp_ranks_train_on_one_grid_per_step(grids, tmp_path):
    """Two gloo ranks: every step's losses (summed over ranks) come from one dataset, i.e. one grid."""
    from test_train_distributed import torchrun

    root, _ = grids
    run = tmp_path / "run"
    torchrun(
        "--config",
        TINY,
        "--out",
        str(run),
        f"data.root={root}",
        "data.datasets=[small,big,wide]",
        "train.max_steps=4",
        *QUICK,
        tolerate_exit_abort=True,
    )
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4]
    assert all(len(r["loss_per_dataset"]) == 1 for r in lines)
    state = torch.load(run / "checkpoint" / "training_state.pt", weights_only=True)
    assert [s["position"] for s in state["sampler"]] == [16, 16] and state["sampler"][0]["group"] == 4
