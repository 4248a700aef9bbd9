"""WindowDataset / TrajectoryDataset: exact window values, stride, padding and mask, few-shot, errors."""

import numpy as np
import pytest
import torch

from dpot.data import DatasetMeta, TrajectoryDataset, WindowDataset, load_stats, resample, write_split
from dpot.errors import DpotError


def _meta(name, channels, space=("x", "y"), steady=False, input_channels=()):
    n = len(space)
    return DatasetMeta(
        name=name,
        pde="other",
        channels=list(channels),
        space=list(space),
        domain=[[0.0, 1.0]] * n,
        boundary=["periodic"] * n,
        dt=0.1,
        steady=steady,
        input_channels=list(input_channels),
    )


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("win")
    fields = np.random.default_rng(0).standard_normal((3, 16, 6, 5, 2)).astype(np.float32)
    write_split(root / "a" / "train.h5", _meta("a", ["u", "v"]), fields=fields)
    write_split(root / "a" / "test.h5", _meta("a", ["u", "v"]), fields=fields[:2])
    return root / "a", fields


def test_window_values_padding_and_mask(ds):
    path, fields = ds
    d = WindowDataset(path, t_in=4, t_ar=2, n_channels=4, dataset_id=7)
    assert d.n_starts == 16 - 6 + 1 and len(d) == 3 * 11
    item = d[1 * 11 + 3]  # trajectory 1, start 3
    want = np.moveaxis(fields[1, 3:9], 0, -2)  # (*space, 6, C)
    assert item["x"].shape == (6, 5, 4, 4) and item["y"].shape == (6, 5, 2, 4)
    assert item["x"].dtype == torch.float32
    np.testing.assert_array_equal(item["x"][..., :2].numpy(), want[..., :4, :])
    np.testing.assert_array_equal(item["y"][..., :2].numpy(), want[..., 4:, :])
    assert not item["x"][..., 2:].any() and not item["y"][..., 2:].any()
    assert item["mask"].tolist() == [True, True, False, False] and item["mask"].dtype == torch.bool
    assert item["dataset"].item() == 7 and item["dataset"].dtype == torch.int64
    with pytest.raises(IndexError):
        d[len(d)]


def test_stride_and_few_shot(ds):
    path, fields = ds
    d = WindowDataset(path, t_in=3, t_ar=1, stride=3, n_trajectories=2)
    assert d.span == 10 and d.n_starts == 7 and len(d) == 2 * 7
    item = d[7 + 5]
    np.testing.assert_array_equal(item["x"].numpy(), np.moveaxis(fields[1, 5:14:3][:3], 0, -2))
    np.testing.assert_array_equal(item["y"].numpy(), np.moveaxis(fields[1, 14:15], 0, -2))
    with pytest.raises(DpotError, match="n_trajectories=5"):
        WindowDataset(path, n_trajectories=5)


def test_bad_windows(ds):
    path, _ = ds
    with pytest.raises(DpotError, match="16 frames, fewer than one window"):
        WindowDataset(path, t_in=10, t_ar=1, stride=2)
    with pytest.raises(DpotError, match="n_channels=1"):
        WindowDataset(path, n_channels=1)
    with pytest.raises(DpotError, match="3 axes"):
        WindowDataset(path, resolution=(8, 8, 8))
    with pytest.raises(DpotError, match="unknown resample"):
        WindowDataset(path, resample="cubic")
    with pytest.raises(DpotError, match="no such dataset file"):
        WindowDataset(path, split="val")


def test_resolution_uses_resample(ds):
    path, fields = ds
    for method in ("bilinear", "fft"):
        d = WindowDataset(path, t_in=2, t_ar=1, resolution=(12, 10), resample=method)
        want = resample(torch.from_numpy(fields[0, 4:7]), (12, 10), method).movedim(0, -2)
        torch.testing.assert_close(d[4]["x"], want[..., :2, :])
        torch.testing.assert_close(d[4]["y"], want[..., 2:, :])


def test_trajectory_dataset(ds):
    path, fields = ds
    t = TrajectoryDataset(path, t_in=10, n_channels=3)
    assert len(t) == 2
    item = t[1]
    np.testing.assert_array_equal(item["history"][..., :2].numpy(), np.moveaxis(fields[1, :10], 0, -2))
    np.testing.assert_array_equal(item["target"][..., :2].numpy(), np.moveaxis(fields[1, 10:], 0, -2))
    assert item["target"].shape == (6, 5, 6, 3) and item["mask"].tolist() == [True, True, False]
    h = TrajectoryDataset(path, t_in=4, horizon=3, stride=2)
    np.testing.assert_array_equal(h[0]["target"].numpy(), np.moveaxis(fields[0, 8:14:2], 0, -2))
    with pytest.raises(DpotError, match="horizon=9"):
        TrajectoryDataset(path, t_in=10, horizon=9)
    with pytest.raises(DpotError, match="not enough"):
        TrajectoryDataset(path, t_in=16)


def test_steady_pairs(tmp_path):
    rng = np.random.default_rng(1)
    a, u = rng.random((4, 8, 8, 1), dtype=np.float32), rng.random((4, 8, 8, 2), dtype=np.float32)
    meta = _meta("darcy", ["u", "p"], steady=True, input_channels=["a"])
    write_split(tmp_path / "darcy" / "train.h5", meta, inputs=a, targets=u)
    d = WindowDataset(tmp_path / "darcy", n_channels=3)
    assert len(d) == 4
    item = d[2]
    assert item["x"].shape == (8, 8, 1, 3) and item["y"].shape == (8, 8, 1, 3)
    np.testing.assert_array_equal(item["x"][..., 0, :1].numpy(), a[2])
    np.testing.assert_array_equal(item["y"][..., 0, :2].numpy(), u[2])
    assert item["mask"].tolist() == [True, False, False]
    assert item["target_mask"].tolist() == [True, True, False]
    t = TrajectoryDataset(tmp_path / "darcy", split="train")
    np.testing.assert_array_equal(t[1]["target"][..., 0, :].numpy(), u[1])


def test_normalisation_stats(ds, tmp_path):
    path, fields = ds
    stats = load_stats(path)["fields"]
    flat = fields.reshape(-1, 2).astype(np.float64)
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-10)
    np.testing.assert_allclose(stats.std, flat.std(0), rtol=1e-10)
    np.testing.assert_allclose(stats.max, flat.max(0))
    assert (path / "stats.json").is_file() and stats.count == flat.shape[0]
    d = WindowDataset(path, t_in=2, t_ar=1, normalize=True, n_channels=3)
    want = (np.moveaxis(fields[2, :2], 0, -2) - flat.mean(0)) / flat.std(0)
    np.testing.assert_allclose(d[2 * 14]["x"][..., :2].numpy(), want, rtol=1e-5, atol=1e-5)
    assert not d[0]["x"][..., 2].any()
    assert load_stats(path)["fields"] == stats  # served from stats.json


def test_stats_recomputed_when_the_split_changes(tmp_path):
    meta = _meta("s", ["u"])
    write_split(tmp_path / "s" / "train.h5", meta, fields=np.ones((1, 3, 4, 4, 1), np.float32))
    assert load_stats(tmp_path / "s")["fields"].mean == [1.0]
    write_split(tmp_path / "s" / "train.h5", meta, fields=np.full((2, 3, 4, 4, 1), 3.0, np.float32))
    assert load_stats(tmp_path / "s")["fields"].mean == [3.0]


def test_stats_streaming_blocks_match(ds, monkeypatch):
    """Frame-by-frame blocks (large trajectories) give the same stats as whole-trajectory blocks."""
    from dpot.data import compute_stats, open_split
    from dpot.data import stats as stats_module

    path, fields = ds
    whole = compute_stats(open_split(path))["fields"]
    monkeypatch.setattr(stats_module, "_BLOCK_BYTES", 3 * 6 * 5 * 2 * 4)  # 3 frames per block
    blocks = compute_stats(open_split(path))["fields"]
    np.testing.assert_allclose(blocks.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(blocks.std, whole.std, rtol=1e-12)
    assert blocks.min == whole.min and blocks.count == whole.count == fields[..., 0].size
