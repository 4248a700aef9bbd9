"""Evaluation against answers worked out by hand: a perfect predictor scores 0, repeating the last frame on a
linear-in-time trajectory scores a known L2RE, and de-normalisation gives the same numbers in physical units."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dpot.data.format import DatasetMeta, write_split
from dpot.data.normalize import Normalizer
from dpot.evaluation.evaluate import evaluate_model
from dpot.models.baselines import LastFrame
from dpot.models.fno_baseline import FNOConfig

CONFIG = FNOConfig(ndim=1, in_channels=1, out_channels=1, in_timesteps=2)  # only the shape fields are used


class LinearExtrapolation(nn.Module):
    """u(t+1) = 2 u(t) - u(t-1): exact on trajectories linear in time, so an oracle for the data below."""

    model_type = "oracle"

    def __init__(self):
        super().__init__()
        self.config = CONFIG

    def forward(self, x: torch.Tensor, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        return 2 * x[..., -1:, :] - x[..., -2:-1, :]


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    """Two 1D trajectories of 4 frames: u_t = (t + 1) a with a = (1, 2, 3, 4), and a constant one."""
    a = np.array([1.0, 2.0, 3.0, 4.0])
    growing = np.stack([(t + 1) * a for t in range(4)])
    constant = np.stack([a + 5.0] * 4)
    fields = np.stack([growing, constant])[..., None].astype(np.float32)  # (N=2, T=4, X=4, C=1)
    meta = DatasetMeta(
        name="linear",
        pde="other",
        channels=["u"],
        space=["x"],
        domain=[[0, 1]],
        boundary=["periodic"],
        dt=1.0,
        source="tests",
    )
    root = tmp_path_factory.mktemp("linear") / "linear"
    for split in ("train", "test"):
        write_split(root / f"{split}.h5", meta, fields=fields)
    return root


def test_perfect_oracle_scores_zero(linear):
    res, _ = evaluate_model(LinearExtrapolation(), linear)
    assert res["steps"] == 2 and res["n_trajectories"] == 2
    assert res["l2re"] == 0.0 and res["nrmse"] == 0.0 and res["l2re_per_step"] == [0.0, 0.0]


def test_repeat_last_frame_scores_the_hand_computed_l2re(linear):
    # growing: prediction 2a for targets 3a, 4a -> |(-a, -2a)| / |(3a, 4a)| = sqrt(5) / 5; per step 1/3 and 1/2.
    # constant: exact, 0. The dataset score is the mean over trajectories.
    res, _ = evaluate_model(LastFrame(CONFIG), linear)
    assert res["l2re"] == pytest.approx(math.sqrt(5) / 5 / 2, rel=1e-6)
    assert res["l2re_per_step"] == pytest.approx([1 / 6, 1 / 4], rel=1e-6)
    assert res["nrmse"] == pytest.approx((1 / 3 + 1 / 2) / 2 / 2, rel=1e-6)


def test_normalised_model_is_scored_in_physical_units(linear):
    # with the dataset's normaliser the model sees standardised channels and its output is mapped back before scoring;
    # both models commute with the affine map, so the scores equal the physical-unit ones above (scored in
    # standardised units, repeat-last-frame would give a different L2RE, since the mean is not zero)
    oracle, _ = evaluate_model(LinearExtrapolation(), linear, normalizer=Normalizer.from_dataset(linear))
    assert oracle["l2re"] == pytest.approx(0.0, abs=1e-6)
    last, snap = evaluate_model(LastFrame(CONFIG), linear, normalizer=Normalizer.from_dataset(linear))
    assert last["l2re"] == pytest.approx(math.sqrt(5) / 5 / 2, rel=1e-5)
    np.testing.assert_allclose(snap.truth[..., 0], [[3, 4], [6, 8], [9, 12], [12, 16]], rtol=1e-5)
    np.testing.assert_allclose(snap.pred[..., 0], [[2, 2], [4, 4], [6, 6], [8, 8]], rtol=1e-5)
