"""Data in physical units: `data.normalize=auto` (the default) standardises a dataset whose channels are not O(1),
the checkpoint keeps the statistics, and `evaluate`, `dpot rollout` and `dpot.rollout` answer in physical units;
constant channels and evaluation-only datasets work; O(1) data stays raw (the generated corpus)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import dpot
from dpot.cli import main
from dpot.data.format import DatasetMeta, write_split
from dpot.data.normalize import REL_FLOOR, ChannelNorm, Normalizer, channel_affine
from dpot.errors import DpotError
from dpot.models import DPOT

QUIET = ["train.progress=false", "train.log_every=1", "train.eval_steps=2"]
TINY = dict(embed_dim=32, depth=2, n_blocks=4, mlp_ratio=1, out_layer_dim=16, patch_size=4, modes=4)
SCALES = ((1e5, 2e2), (0.0, 1e-6), (0.0, 1e-6))  # (mean, amplitude) per channel: h, u, v


def _meta(name: str, channels: list[str]) -> DatasetMeta:
    return DatasetMeta(
        name=name,
        pde="shallow_water",
        channels=channels,
        space=["x", "y"],
        domain=[[0, 1], [0, 1]],
        boundary=["periodic", "periodic"],
        dt=0.1,
        source="tests",
    )


def waves(n: int, res: int, seed: int, scales=SCALES, frames: int = 10) -> np.ndarray:
    """`(n, frames, res, res, C)` travelling waves with random phases, channel c = mean_c + amp_c * wave."""
    rng = np.random.default_rng(seed)
    x = np.arange(res) / res
    xx, yy = np.meshgrid(x, x, indexing="ij")
    out = np.empty((n, frames, res, res, len(scales)), np.float64)
    for i in range(n):
        phase = rng.uniform(0, 2 * np.pi, len(scales))
        for t in range(frames):
            for c, (mean, amp) in enumerate(scales):
                out[i, t, ..., c] = mean + amp * np.sin(2 * np.pi * (xx + (c + 1) * yy) - 0.4 * t + phase[c])
    return out.astype(np.float32)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """`phys` (channels 1e8 apart in scale, train/val/test), `phys_fine` (test only, 32²), `unit` (O(1))."""
    root = tmp_path_factory.mktemp("phys")
    for split, n, seed in (("train", 8, 0), ("val", 2, 1), ("test", 2, 2)):
        write_split(root / "phys" / f"{split}.h5", _meta("phys", ["h", "u", "v"]), fields=waves(n, 16, seed))
        write_split(
            root / "unit" / f"{split}.h5",
            _meta("unit", ["h", "u", "v"]),
            fields=waves(n, 16, seed, scales=((1.0, 0.1), (0.0, 0.5), (0.0, 0.5))),
        )
    write_split(root / "fine" / "phys_fine" / "test.h5", _meta("phys_fine", ["h", "u", "v"]), fields=waves(2, 32, 3))
    return root


@pytest.fixture(scope="module")
def raw_ckpt(tmp_path_factory):
    """A tiny DPOT checkpoint trained on raw values (no `normalization` entry), as from the generated corpus."""
    torch.manual_seed(0)
    model = DPOT.from_preset("demo", ndim=2, img_size=[16, 16], in_channels=3, out_channels=3, in_timesteps=4, **TINY)
    return model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "raw")


def finetune(ckpt, data_dir, out, *extra: str) -> dict:
    assert (
        main(
            [
                "finetune",
                "--from",
                str(ckpt),
                "--data",
                str(data_dir),
                "--out",
                str(out),
                "train.max_steps=20",
                "optim.lr=3e-3",
                *QUIET,
                *extra,
            ]
        )
        == 0
    )
    return json.loads((out / "checkpoint" / "config.json").read_text())


def evaluate(ckpt, data_dir, out, *extra: str) -> dict:
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(ckpt),
                "--data",
                str(data_dir),
                "--out",
                str(out),
                "--rollout",
                "3",
                *extra,
            ]
        )
        == 0
    )
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def tuned(data, raw_ckpt, tmp_path_factory):
    """The same fine-tuning with the defaults, with data.normalize=true and with data.normalize=false."""
    base = tmp_path_factory.mktemp("ft")
    runs = {}
    for mode, extra in (("default", ()), ("true", ("data.normalize=true",)), ("false", ("data.normalize=false",))):
        finetune(raw_ckpt, data / "phys", base / mode, *extra)
        runs[mode] = base / mode / "checkpoint"
    return runs


def test_channel_floor():
    assert channel_affine(5.0, 2.0) == (5.0, 2.0)
    assert channel_affine(1e5, 2e2) == (1e5, 2e2)
    assert channel_affine(0.0, 1e-6) == (0.0, 1e-6)  # tiny but real: kept
    assert channel_affine(-7.0, 0.0) == (0.0, 7.0)  # constant: not centred, divided by its magnitude -> -1
    assert channel_affine(1e5, 1e5 * REL_FLOOR / 2) == pytest.approx((0.0, 1e5))  # constant up to rounding
    assert channel_affine(0.0, 0.0) == (0.0, 1.0)  # all zero: left as it is
    assert all(map(math.isfinite, channel_affine(1e-38, 1e-39)))


def test_constant_channel_does_not_blow_up(raw_ckpt, tmp_path):
    """A channel constant at 1e5 and one at 7 (std 0): standardised to 1, not to an all-zero target that the
    relative loss cannot score; training and evaluation stay finite, the channels come back exactly."""
    fields = waves(6, 16, 4, scales=((0.0, 1.0), (0.0, 0.0), (0.0, 0.0)))
    fields[..., 1], fields[..., 2] = 1e5, 7.0
    for split in ("train", "test"):
        write_split(tmp_path / "const" / f"{split}.h5", _meta("const", ["w", "p", "c"]), fields=fields)
    meta = finetune(raw_ckpt, tmp_path / "const", tmp_path / "ft", "train.max_steps=3")  # auto: 1e5 is not O(1)
    stored = meta["normalization"]["const"]["fields"]
    assert stored["shift"][1:] == [0.0, 0.0] and stored["scale"][1:] == pytest.approx([1e5, 7.0])
    enc = ChannelNorm.from_dict(stored).encode(torch.from_numpy(fields[:1]))
    assert float((enc[..., 1:] - 1).abs().max()) < 1e-6
    m = evaluate(tmp_path / "ft" / "checkpoint", tmp_path / "const", tmp_path / "ev")["const"]
    assert all(math.isfinite(v) and v < 10 for v in m["l2re_per_step"]), m["l2re_per_step"]


@pytest.mark.slow
def test_defaults_normalise_physical_units_like_the_explicit_run(data, tuned, tmp_path):
    metas = {k: json.loads((p / "config.json").read_text()) for k, p in tuned.items()}
    stored = metas["default"]["normalization"]["phys"]["fields"]
    assert stored["mean"][0] == pytest.approx(1e5, rel=1e-3) and stored["scale"][1] == pytest.approx(7e-7, rel=0.1)
    assert metas["false"]["normalization"] is None
    l2re = {k: evaluate(p, data / "phys", tmp_path / k)["phys"]["l2re"] for k, p in tuned.items()}
    assert l2re["default"] == pytest.approx(l2re["true"], rel=0.1), l2re
    assert l2re["default"] < 1.0 and not l2re["false"] < 10 * l2re["default"], l2re  # raw: orders of magnitude worse


@pytest.mark.slow
def test_rollouts_come_back_in_physical_units(data, tuned, tmp_path):
    ckpt = tuned["default"]
    test = waves(2, 16, 2)
    np.save(tmp_path / "hist.npy", test[:, :4])
    assert (
        main(
            [
                "rollout",
                "--checkpoint",
                str(ckpt),
                "--input",
                str(tmp_path / "hist.npy"),
                "--layout",
                "n t x y c",
                "--steps",
                "3",
                "--out",
                str(tmp_path / "pred.npy"),
            ]
        )
        == 0
    )
    pred = np.load(tmp_path / "pred.npy")
    assert pred.shape == (2, 3, 16, 16, 3)
    truth = test[:, 4:7]

    def norm(a):
        return np.sqrt((a.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))

    rel = norm(pred - truth) / norm(truth - [1e5, 0, 0])
    # every channel within O(1) of its own scale (1e8 apart); an output left standardised, or decoded with the
    # wrong statistics, would be off by factors of 1e5..1e8
    assert np.all(rel < 2.0), rel
    assert np.abs(pred[..., 0] - 1e5).max() < 1e3 and np.abs(pred[..., 1:]).max() < 1e-5
    # Python inference: the checkpoint's normaliser, same answer
    model = dpot.load_model(ckpt)
    hist = torch.from_numpy(test[:, :4]).movedim(1, -2)
    with torch.no_grad():
        py = dpot.rollout(model, hist, 3, normalizer=dpot.load_normalizer(ckpt)).movedim(-2, 1).numpy()
    np.testing.assert_allclose(py, pred, rtol=1e-5, atol=1e-9)
    assert (
        main(
            [
                "rollout",
                "--checkpoint",
                str(ckpt),
                "--input",
                str(tmp_path / "hist.npy"),
                "--layout",
                "n t x y c",
                "--steps",
                "3",
                "--out",
                str(tmp_path / "pred2.npy"),
                "--set",
                "interpolate_pos_embed=true",
            ]
        )
        == 0
    )  # a load-time option; same grid, same answer
    np.testing.assert_allclose(np.load(tmp_path / "pred2.npy"), pred, rtol=1e-5, atol=1e-9)
    # evaluate's snapshots are physical too
    from dpot.evaluation.evaluate import evaluate_model, normalizer_for

    _, snap = evaluate_model(model, data / "phys", rollout=3, normalizer=normalizer_for(ckpt, data / "phys"))
    assert abs(float(snap.truth[..., 0].mean()) - 1e5) < 1e3 and abs(float(snap.pred[..., 0].mean()) - 1e5) < 1e3


@pytest.mark.slow
def test_evaluation_only_dataset_uses_the_checkpoint_statistics(data, tuned, tmp_path):
    """A test file at another resolution, no train split: the fine-tuned checkpoint's statistics apply, and
    `--set interpolate_pos_embed=true` evaluates it at its own 32² grid."""
    ckpt = tuned["default"]
    m = evaluate(ckpt, data / "fine", tmp_path / "ev", "--set", "interpolate_pos_embed=true")
    res = m["phys_fine"]
    assert res["resolution"] == [32, 32] and res["l2re"] < 1.0
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(ckpt),
                "--data",
                str(data / "fine"),
                "--out",
                str(tmp_path / "x"),
                "--set",
                "embed_dim=64",
            ]
        )
        == 2
    )  # would change the weights: one line
    two = tmp_path / "two" / "phys_uv"  # other channels: the checkpoint's statistics do not apply
    write_split(two / "test.h5", _meta("phys_uv", ["u", "v"]), fields=waves(1, 16, 5)[..., 1:])
    from dpot.evaluation.evaluate import normalizer_for

    with pytest.raises(DpotError, match="has 2 channels but the checkpoint was trained on standardised 'phys'"):
        normalizer_for(ckpt, two)


def assert_heldout_is_evaluate(run, data_dirs, steps: int, n_trajectories: int) -> dict[str, float]:
    """The run's final periodic `eval_l2re` equals `evaluate_model`'s L2RE (physical units, the checkpoint's
    statistics per dataset) on the same split, trajectories and rollout steps; returns the logged values."""
    from dpot.evaluation.evaluate import evaluate_model, normalizer_for

    logged = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["eval_l2re"]
    model = dpot.load_model(run / "checkpoint")
    for d in data_dirs:
        res, _ = evaluate_model(
            model,
            d,
            split="test",
            rollout=steps,
            n_trajectories=n_trajectories,
            normalizer=normalizer_for(run / "checkpoint", d),
        )
        assert res["steps"] == steps and res["n_trajectories"] == n_trajectories
        assert logged[d.name] == pytest.approx(res["l2re"], rel=1e-5), (d.name, logged[d.name], res["l2re"])
    return logged


def test_periodic_eval_scores_in_physical_units_like_evaluate(data, raw_ckpt, tmp_path):
    """With data.normalize=true the trainer's held-out L2RE (`eval_l2re`, the end-of-run "rollout L2RE") is the
    number `dpot evaluate` gives in physical units, not the standardised one (the height channel sits at 1e5 ±
    2e2: its relative error is hundreds of times smaller in physical units)."""
    run = tmp_path / "ft"
    finetune(raw_ckpt, data / "phys", run, "data.normalize=true", "train.max_steps=3", "train.eval_trajectories=2")
    assert assert_heldout_is_evaluate(run, [data / "phys"], steps=2, n_trajectories=2)["phys"] > 0


def test_auto_leaves_order_one_data_raw_and_mixtures_per_dataset(data, tmp_path):
    run = tmp_path / "pre"
    assert (
        main(
            [
                "pretrain",
                "--config",
                "tiny",
                "--out",
                str(run),
                f"data.root={data}",
                "data.datasets=[phys,unit]",
                "train.max_steps=2",
                *QUIET,
            ]
        )
        == 0
    )
    meta = json.loads((run / "checkpoint" / "config.json").read_text())
    assert list(meta["normalization"]) == ["phys"]  # `unit` is O(1): trained raw, as the reference
    assert dpot.load_normalizer(run / "checkpoint", dataset="phys").encode(torch.tensor([1e5, 0, 0])).abs().max() < 1
    from dpot.evaluation.evaluate import normalizer_for

    assert normalizer_for(run / "checkpoint", data / "unit") is None
    # the periodic evaluation undoes each dataset's own standardisation (phys) or none (unit)
    assert_heldout_is_evaluate(run, [data / "phys", data / "unit"], steps=2, n_trajectories=2)


def test_checkpoints_with_the_old_statistics_layout_still_load():
    old = {"channels": ["u"], "mean": [2.0], "std": [0.0]}
    norm = Normalizer.from_dict(old)
    assert norm.arrays["fields"].shift == [2.0] and norm.arrays["fields"].scale == [1.0]
    assert float(norm.decode(torch.tensor([[0.5]]))) == 2.5
