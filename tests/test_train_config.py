"""Typed configs: YAML + dotted overrides, errors that name the key, and every shipped preset loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from dpot.config import dump_yaml, load_config, to_dict
from dpot.errors import DpotError
from dpot.training.config import PretrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "pretrain"


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
    cfg = load_config(Outer, path, ["inner.kind=b", "inner.size=[32, 32]", "inner.weights.swe=3",
                                    "flag=true", "name=007"])
    assert cfg.inner.n == 3 and cfg.inner.lr == pytest.approx(1e-3)  # "1e-3" is a YAML 1.1 string
    assert cfg.inner.kind == "b" and cfg.inner.size == [32, 32] and cfg.inner.weights == {"swe": 3.0}
    assert cfg.flag is True and cfg.name == "007"  # a str key keeps the text
    dump_yaml(cfg, tmp_path / "back.yaml")
    assert load_config(Outer, tmp_path / "back.yaml") == cfg


@pytest.mark.parametrize("override, words", [
    (["inner.nn=3"], ["inner.nn", "did you mean 'n'"]),
    (["innr.n=3"], ["innr"]),
    (["inner.n=abc"], ["inner.n", "integer"]),
    (["inner.kind=c"], ["inner.kind", "'a'"]),
    (["flag=maybe"], ["flag", "true or false"]),
    (["inner.size=[1, x]"], ["inner.size[1]"]),
    (["inner.n"], ["key=value"]),
])
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


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.yaml")))
def test_presets_load(name):
    cfg = load_config(PretrainConfig, CONFIGS / f"{name}.yaml", ["data.root=/data"])
    assert cfg.train.max_steps >= 1 and cfg.model.preset
    assert load_config(PretrainConfig, None, [], base=to_dict(cfg)) == cfg


def test_train_section_validation():
    with pytest.raises(DpotError, match="train.batch_size"):
        load_config(PretrainConfig, None, ["train.batch_size=0"])
    with pytest.raises(DpotError, match="optim.betas"):
        load_config(PretrainConfig, None, ["optim.betas=[0.9]"])
