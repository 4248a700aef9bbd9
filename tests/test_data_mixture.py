"""Mixture + BalancedSampler: shapes, balanced proportions, exact resume, rank shards, DataLoader workers."""

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dpot.data import BalancedSampler, DatasetMeta, Mixture, WindowDataset, collate, write_split
from dpot.errors import DpotError


def _write(path, name, n, t, space, c, seed):
    meta = DatasetMeta(
        name=name,
        pde="other",
        channels=[f"c{i}" for i in range(c)],
        space=["x", "y", "z"][: len(space)],
        domain=[[0.0, 1.0]] * len(space),
        boundary=["periodic"] * len(space),
    )
    fields = np.random.default_rng(seed).standard_normal((n, t, *space, c)).astype(np.float32)
    write_split(path / name / "train.h5", meta, fields=fields)
    return path / name


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    return [
        _write(root, "a", 4, 8, (8, 8), 1, 0),
        _write(root, "b", 6, 6, (16, 16), 3, 1),
        _write(root, "c", 2, 12, (8, 8), 2, 2),
    ]


def _draw(sampler, n):
    return np.fromiter(itertools.islice(iter(sampler), n), dtype=np.int64, count=n)


def test_mixture_items_and_errors(dirs, tmp_path):
    with pytest.raises(DpotError, match="different grids .*resolution=16"):
        Mixture.from_dirs(dirs, t_in=4)
    m = Mixture.from_dirs(dirs, t_in=4, resolution=16)
    assert m.n_channels == 3 and m.sizes == [4 * 4, 6 * 2, 2 * 8] and len(m) == 44
    k, j = m.locate(20)
    assert (k, j) == (1, 4)
    item = m[20]
    assert item["x"].shape == (16, 16, 4, 3) and item["dataset"].item() == 1
    assert m[0]["mask"].tolist() == [True, False, False] and not m[0]["x"][..., 1:].any()
    with pytest.raises(DpotError, match="n_channels=2 to pad"):
        Mixture([WindowDataset(dirs[0], t_in=4), WindowDataset(dirs[2], t_in=4)])
    with pytest.raises(DpotError, match="different spatial dimensions"):
        Mixture.from_dirs([dirs[0], _write(tmp_path, "d3", 2, 8, (4, 4, 4), 1, 3)], t_in=4)
    with pytest.raises(DpotError, match="different windows") as err:
        Mixture([WindowDataset(dirs[0], t_in=4, n_channels=3), WindowDataset(dirs[2], t_in=3, n_channels=3)])
    assert "\n" not in str(err.value)
    with pytest.raises(DpotError, match="weights"):
        Mixture.from_dirs(dirs, t_in=4, resolution=16, weights=[1, 2])


def test_balanced_and_uniform_proportions(dirs):
    m = Mixture.from_dirs(dirs, t_in=4, resolution=8, weights=[1, 2, 1])
    idx = _draw(BalancedSampler(m, seed=3), 40000)
    ks = np.searchsorted(m.offsets, idx, side="right") - 1
    np.testing.assert_allclose(np.bincount(ks, minlength=3) / len(idx), [0.25, 0.5, 0.25], atol=0.015)
    counts = np.bincount(idx, minlength=len(m))  # within a dataset every sample is equally likely
    for k in range(3):
        c = counts[m.offsets[k] : m.offsets[k + 1]]
        expect = len(idx) * m.weights[k] / m.weights.sum() / m.sizes[k]
        assert np.all(np.abs(c - expect) < 0.2 * expect)
    uni = _draw(BalancedSampler(m, seed=3, balanced=False), 40000)  # uniform over the 12 trajectories
    traj = [m.datasets[k].locate(j)[0] + sum(m.n_samples[:k]) for k, j in map(m.locate, uni)]
    np.testing.assert_allclose(np.bincount(traj) / len(uni), 1 / 12, atol=0.01)


def test_state_restore_and_determinism(dirs):
    m = Mixture.from_dirs(dirs, t_in=4, resolution=8)
    s = BalancedSampler(m, seed=11)
    _draw(s, 5000)  # crosses a block boundary
    state = s.state_dict()
    after = _draw(s, 3000)
    r = BalancedSampler(m, seed=0)
    r.load_state_dict(state)
    np.testing.assert_array_equal(_draw(r, 3000), after)
    first = _draw(BalancedSampler(m, seed=11), 100)
    np.testing.assert_array_equal(first, _draw(BalancedSampler(m, seed=11), 100))
    assert not np.array_equal(_draw(BalancedSampler(m, seed=12), 100), first)
    consumed = BalancedSampler(m, seed=11)
    consumed.load_state_dict(BalancedSampler(m, seed=11).state_dict(position=5000))
    np.testing.assert_array_equal(_draw(consumed, 3000), after)
    other = Mixture.from_dirs(dirs[:2], t_in=4, resolution=8)
    with pytest.raises(DpotError, match="different mixture"):
        BalancedSampler(other).load_state_dict(state)


def test_ranks_draw_disjoint_shards(dirs):
    m = Mixture.from_dirs(dirs, t_in=4, resolution=8)
    streams = [_draw(BalancedSampler(m, seed=5, rank=r, world_size=3), 3000) for r in range(3)]
    sets = [set(s.tolist()) for s in streams]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert set().union(*sets) == set(range(len(m)))
    with pytest.raises(DpotError, match="world_size"):
        BalancedSampler(m, rank=3, world_size=3)


@pytest.mark.parametrize("context,workers", [("fork", 2), ("spawn", 1)])  # spawn: pickled datasets, slower
def test_dataloader_workers_match_single_process(dirs, context, workers):
    m = Mixture.from_dirs(dirs, t_in=4, resolution=8)

    def batches(workers):
        loader = DataLoader(
            m,
            batch_size=4,
            sampler=BalancedSampler(m, seed=2),
            num_workers=workers,
            multiprocessing_context=context if workers else None,
        )
        return list(itertools.islice(iter(loader), 6))

    ref = batches(0)  # the parent now holds open HDF5 handles when the workers start
    got = batches(workers)
    for a, b in zip(ref, got):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key])


def test_numpy_collate_matches_default(dirs):
    m = Mixture.from_dirs(dirs, t_in=4, resolution=8)
    a = next(iter(DataLoader(m, batch_size=5, sampler=BalancedSampler(m, seed=4))))
    b = next(iter(DataLoader(m, batch_size=5, sampler=BalancedSampler(m, seed=4), collate_fn=collate)))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
