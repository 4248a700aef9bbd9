"""The FNO-gap study's pure parts: the recipe is chosen on validation numbers, curves are compared at equal CPU
time by interpolation, and the committed page is exactly what the report code makes of the committed JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("study_fno_gap", ROOT / "studies" / "fno_gap.py")
fno_gap = importlib.util.module_from_spec(_spec)
sys.modules["study_fno_gap"] = fno_gap
_spec.loader.exec_module(fno_gap)


def test_recipe_is_chosen_on_val_and_keeps_the_pretrained_network():
    s = fno_gap.SCALES["smoke"]
    res = {f"abl_{key}": {"val": {"rollout": 0.5}} for key, *_ in fno_gap.ablations(s)}
    assert fno_gap.choose_recipe({}, s) is None
    res["abl_norm"]["val"]["rollout"] = 0.3  # better on val: taken
    res["abl_lr3e-3"]["val"]["rollout"] = 0.4  # the better of the two learning rates
    res["abl_lr3e-4"]["val"]["rollout"] = 0.45
    res["abl_scratch_p2"]["val"]["rollout"] = 0.1  # from scratch: never part of the recipe
    rec = fno_gap.choose_recipe(res, s)
    assert rec["overrides"] == ["data.normalize=true", "optim.lr=3e-3"]
    del res["abl_noise"]  # a group not finished: no recipe yet
    assert fno_gap.choose_recipe(res, s) is None


def test_equal_time_interpolation():
    run = {"cpu_per_step": 0.5, "points": [{"steps": 100, "rollout": 1.0}, {"steps": 400, "rollout": 0.25}]}
    assert fno_gap._times(run) == [50.0, 200.0]
    assert fno_gap._at_time(run, 100.0) == pytest.approx(0.5)  # log-log: halfway in log time, halfway in log error
    assert fno_gap._at_time(run, 10.0) is None and fno_gap._at_time(run, 300.0) is None


def test_page_rebuilds_from_the_committed_results(tmp_path):
    payload = json.loads((ROOT / "docs" / "results" / "fno_gap.json").read_text())
    text = fno_gap.write_report(payload, tmp_path / "fno-gap.md", tmp_path)
    assert text == (ROOT / "docs" / "fno-gap.md").read_text()


def test_seed_check_reports_mean_std_and_orderings_beyond_the_spread():
    s = fno_gap.SCALES["smoke"]
    fam = fno_gap.FAMILIES[0]
    vals = {"dpot_pre": (0.30, 0.40, 0.20), "fno": (0.05, 0.06, 0.04), "dpot_scratch": (0.31, 0.29, 0.33)}
    res = {}
    for c, (v0, *rest) in vals.items():
        res[f"curve_{fam}_{c}"] = {"points": [{"steps": 10, "rollout": 1.0}, {"steps": 20, "rollout": v0}]}
        for seed, v in zip(fno_gap.EXTRA_SEEDS, rest):
            res[f"seed{seed}_{fam}_{c}"] = {"points": [{"steps": 20, "rollout": v}]}
    text = "\n".join(fno_gap._seed_check(res, s))
    assert f"| {fam} | 0.300 ± 0.100 | 0.310 ± 0.020 | – | 0.050 ± 0.010 |" in text
    assert f"`{fam}`, dpot_pre vs fno: fno ahead (0.300 vs 0.050), **beyond the seed spread**." in text
    assert f"`{fam}`, dpot_pre vs dpot_scratch: pre-trained DPOT ahead (0.300 vs 0.310), within" in text
    assert "Fewer than 3 seeds finished" in text and f"{fam} fno_eq (0)" in text


def test_recipe_backbone_is_chosen_on_val_and_judged_on_the_seed_mean():
    fams = fno_gap.FAMILIES
    res = {}
    for b, val in zip(fno_gap.RECIPE_BACKBONES, (0.4, 0.2, 0.3)):
        for fam in fams:
            for seed in fno_gap.RECIPE_SEEDS:
                run = {"final": {"rollout": 0.10 + 0.01 * seed}, "cpu_per_step": 0.01, "points": [{"steps": 100}]}
                if seed == 0:
                    run["val"] = {"rollout": val if fam != fams[0] or b != "recipe" else 0.1}
                res[fno_gap.seed_key(b, fam, seed)] = run
    # one family where the raw backbone shines is not enough: the geometric mean over families decides
    assert fno_gap.chosen_backbone(res) == "recipe_pn"
    for fam, fno in zip(fams, (0.2, 0.05, 0.111)):
        for seed in fno_gap.RECIPE_SEEDS:
            res[fno_gap.seed_key(fno_gap.RECIPE_FNO, fam, seed)] = {"final": {"rollout": fno}}
    b, verdict = fno_gap._recipe_verdict(res)
    assert b == "recipe_pn"
    assert verdict[fams[0]] == pytest.approx((0.11, 0.2, True))  # ahead by more than the seed spread (0.01)
    assert verdict[fams[1]][0] > verdict[fams[1]][1]  # the FNO ahead
    assert verdict[fams[2]] == pytest.approx((0.11, 0.111, False))  # ahead, within the spread


def test_channel_placement_copy_permutes_fields_and_names(tmp_path):
    import h5py
    import numpy as np

    src = tmp_path / "src"
    src.mkdir()
    x = np.arange(2 * 3 * 4 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 4, 3)
    for split in ("val", "test"):
        with h5py.File(src / f"{split}.h5", "w") as f:
            f["fields"] = x
            f.attrs["channels"] = np.array(["h", "u", "v"], dtype=object)
            f.attrs["name"] = "src"
    dst = fno_gap.permuted_copy(src, tmp_path / "src_210", (2, 1, 0))
    with h5py.File(dst / "test.h5", "r") as f:
        assert np.array_equal(f["fields"][...], x[..., ::-1])
        assert list(f.attrs["channels"]) == ["v", "u", "h"] and f.attrs["name"] == "src_210"


def test_packaged_new_family_preset_is_the_studys_recipe():
    from dpot.training.finetune import load_finetune_config

    rec = json.loads((ROOT / "docs" / "results" / "fno_gap.json").read_text())["meta"]["recipe"]
    cfg = load_finetune_config("new_family")
    for override in rec["overrides"]:  # each value as the config loader reads it
        section, name = override.split("=", 1)[0].split(".")
        wanted = getattr(getattr(load_finetune_config(None, [override]), section), name)
        assert getattr(getattr(cfg, section), name) == wanted, override
    assert cfg.finetune.channels == "reinit" and cfg.data.n_trajectories == 8  # the study's setting
