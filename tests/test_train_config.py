"""Typed configs: YAML + dotted overrides, errors that name the key (all at once, one line each), numeric ranges,
renamed keys of saved runs, and every packaged preset loads by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from dpot.config import PRESETS, dump_yaml, find_preset, load_config, to_dict
from dpot.errors import DpotError
from dpot.models.config import DPOTConfig, FNOConfig, FNOSize
from dpot.training.config import FinetuneConfig, PretrainConfig
from dpot.training.finetune import load_finetune_config
from dpot.training.pretrain import load_pretrain_config


@dataclass
class Inner:
    n: int = 1
    lr: float = 0.1
    kind: Literal["a", "b"] = "a"
    size: list[int] | None = None
    weights: dict[str, float] = field(default_factory=dict)


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    name: str = "x"
    flag: bool = False


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner: {n: 3, lr: 1e-3}\nname: run\n")
    cfg = load_config(
        Outer, path, ["inner.kind=b", "inner.size=[32, 32]", "inner.weights.swe=3", "flag=true", "name=007"]
    )
    assert cfg.inner.n == 3 and cfg.inner.lr == pytest.approx(1e-3)  # "1e-3" is a YAML 1.1 string
    assert cfg.inner.kind == "b" and cfg.inner.size == [32, 32] and cfg.inner.weights == {"swe": 3.0}
    assert cfg.flag is True and cfg.name == "007"  # a str key keeps the text
    dump_yaml(cfg, tmp_path / "back.yaml")
    assert load_config(Outer, tmp_path / "back.yaml") == cfg


@pytest.mark.parametrize(
    "override, words",
    [
        (["inner.nn=3"], ["inner.nn", "did you mean 'n'"]),
        (["innr.n=3"], ["innr"]),
        (["inner.n=abc"], ["inner.n", "integer"]),
        (["inner.kind=c"], ["inner.kind", "'a'"]),
        (["flag=maybe"], ["flag", "true or false"]),
        (["inner.size=[1, x]"], ["inner.size[1]"]),
        (["inner.n"], ["key=value"]),
    ],
)
def test_errors_name_the_key(override, words):
    with pytest.raises(DpotError) as err:
        load_config(Outer, None, override)
    for w in words:
        assert w in str(err.value)


def test_unknown_key_in_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner: {n: 1, bogus: 2}\n")
    with pytest.raises(DpotError, match="inner.bogus"):
        load_config(Outer, path)


@pytest.mark.parametrize("name", sorted(p.stem for p in (PRESETS / "pretrain").glob("*.yaml")))
def test_pretrain_presets_load_by_name(name):
    cfg = load_pretrain_config(name, ["data.root=/data"])
    assert cfg == load_config(PretrainConfig, PRESETS / "pretrain" / f"{name}.yaml", ["data.root=/data"])
    assert cfg.train.max_steps >= 1 and cfg.model.preset
    assert load_config(PretrainConfig, None, [], base=to_dict(cfg)) == cfg


@pytest.mark.parametrize("name", sorted(p.stem for p in (PRESETS / "finetune").glob("*.yaml")))
def test_finetune_presets_load_by_name(name):
    cfg = load_finetune_config(name)
    assert cfg.train.max_steps >= 1 and cfg.model in ("pretrained", "fno")
    assert load_finetune_config(None, [], base=to_dict(cfg)) == cfg


def test_preset_names_and_paths(tmp_path):
    assert find_preset("finetune", "few_shot") == PRESETS / "finetune" / "few_shot.yaml"
    assert load_finetune_config("few_shot").data.n_trajectories == 8
    path = tmp_path / "mine.yaml"
    path.write_text("train: {max_steps: 7}\n")
    assert load_pretrain_config(str(path)).train.max_steps == 7  # a path still works
    with pytest.raises(DpotError, match="no pretrain preset 'tinyy'; known: demo, .*tiny"):
        load_pretrain_config("tinyy")


def test_numeric_keys_are_checked_all_at_once():
    """The values the reliability issue found accepted, each reported on its own line in one error."""
    with pytest.raises(DpotError) as err:
        load_config(
            PretrainConfig,
            None,
            ["optim.clip_grad=-1", "optim.lr=inf", "train.noise=nan", "data.n_trajectories=0", "train.bogus=1"],
        )
    lines = str(err.value).splitlines()
    assert len(lines) == 5 and lines[0].startswith("unknown config key 'train.bogus'")
    assert set(lines[1:]) == {
        "optim.clip_grad=-1: must be > 0 or null (no clipping)",
        "optim.lr=inf: must be a finite number",
        "train.noise=nan: must be a finite number",
        "data.n_trajectories=0: must be >= 1 or null (all)",
    }
    with pytest.raises(DpotError, match=r"^optim.clip_grad=0: must be > 0 or null \(no clipping\)$"):
        load_config(PretrainConfig, None, ["optim.clip_grad=0"])
    with pytest.raises(DpotError, match=r"finetune.layer_decay=1.5: must be > 0 and <= 1"):
        load_finetune_config(None, ["finetune.layer_decay=1.5"])
    with pytest.raises(DpotError, match=r"data.weights=\{'a': nan\}: must be a finite number"):
        load_config(PretrainConfig, None, ["data.weights.a=nan"])
    assert load_config(PretrainConfig, None, ["optim.clip_grad=null"]).optim.clip_grad is None


def test_old_finetune_key_is_read_as_the_new_one(tmp_path):
    """`n_trajectories` is `data.` in both commands; runs saved with `train.n_trajectories` still load."""
    saved = to_dict(FinetuneConfig())
    saved["train"]["n_trajectories"] = 5
    del saved["data"]["n_trajectories"]
    dump_yaml(saved, tmp_path / "config.yaml")
    assert load_finetune_config(resume=tmp_path).data.n_trajectories == 5
    assert load_finetune_config(None, ["train.n_trajectories=3"]).data.n_trajectories == 3


def test_model_configs_use_the_strict_loader():
    assert FNOConfig.from_dict(FNOConfig(modes=4).to_dict()) == FNOConfig(modes=4)
    assert issubclass(FNOConfig, FNOSize)  # one definition of the FNO size
    with pytest.raises(DpotError, match="unknown config key 'widht'; did you mean 'width'"):
        FNOConfig.from_dict({"widht": 3})
    with pytest.raises(DpotError, match="config key 'depth': expected an integer"):
        DPOTConfig.from_dict({"depth": "deep"})
    with pytest.raises(DpotError, match=r"DPOTConfig.mlp_ratio=nan: must be a finite number"):
        DPOTConfig(mlp_ratio=float("nan"))


def test_train_section_validation():
    with pytest.raises(DpotError, match="train.batch_size"):
        load_config(PretrainConfig, None, ["train.batch_size=0"])
    with pytest.raises(DpotError, match="optim.betas"):
        load_config(PretrainConfig, None, ["optim.betas=[0.9]"])
