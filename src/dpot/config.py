"""Typed configs: dataclasses filled from YAML (``yaml.safe_load``) plus dotted ``key=value`` overrides.

Every value is checked against the dataclass annotation; an unknown key, a value of the wrong type, a number
that is not finite or outside the range its field declares (`num`) raises `DpotError` naming the dotted key;
all problems of one config are reported together, one line each, so a typo never passes silently.
Presets shipped with the package (`dpot/configs/<kind>/<name>.yaml`) are addressed by name (`find_preset`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from dpot.errors import DpotError
from dpot.io import read_text_file, write_text

T = TypeVar("T")
PRESETS = Path(__file__).resolve().parent / "configs"  # packaged YAML presets: PRESETS/<kind>/<name>.yaml


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The allowed range of a numeric config field; `null` says what a null value means (None: not allowed)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    null: str | None = None

    def problem(self, value: Any) -> str | None:
        """Why `value` is out of range, or None."""
        if value is None:
            return None
        ok = (
            (self.gt is None or value > self.gt)
            and (self.ge is None or value >= self.ge)
            and (self.lt is None or value < self.lt)
            and (self.le is None or value <= self.le)
        )
        if ok:
            return None
        low = f"> {self.gt:g}" if self.gt is not None else f">= {self.ge:g}" if self.ge is not None else ""
        high = f"< {self.lt:g}" if self.lt is not None else f"<= {self.le:g}" if self.le is not None else ""
        text = f"must be {low} and {high}" if low and high else f"must be {low or high}"
        return text + (f" or null ({self.null})" if self.null else "")


def num(
    default: Any,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    null: str | None = None,
) -> Any:
    """A numeric dataclass field with a checked range: ``clip_grad: float | None = num(1.0, gt=0, null="no
    clipping")``. Every float field (with or without `num`) must also be finite."""
    return dataclasses.field(default=default, metadata={"bounds": Bounds(gt, ge, lt, le, null)})


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _not_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_not_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_not_finite(v) for v in value.values())
    return False


def value_problems(cls: type, values: Mapping[str, Any], prefix: str) -> list[str]:
    """One line per value of `values` (field name -> value of dataclass `cls`) that is not finite or is
    outside its field's `num` range, e.g. ``optim.clip_grad=-1: must be > 0 or null (no clipping)``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = []
    for name, value in values.items():
        f = fields.get(name)
        if f is None or isinstance(value, bool) or dataclasses.is_dataclass(value):
            continue
        key = f"{prefix}.{name}" if prefix else name
        bounds = f.metadata.get("bounds")
        if _not_finite(value):
            out.append(f"{key}={_show(value)}: must be a finite number")
        elif bounds is not None and (why := bounds.problem(value)) is not None:
            out.append(f"{key}={_show(value)}: {why}")
    return out


def check_fields(obj: Any) -> None:
    """For a config's `__post_init__`: `DpotError` listing every non-finite or out-of-range field of `obj`
    (the loader reports the same problems under the dotted key before building `obj`)."""
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    problems = value_problems(type(obj), values, type(obj).__name__)
    if problems:
        raise DpotError("\n".join(problems))


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check `value` against annotation `tp`, converting where lossless (int→float, '1e-3'→float)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise DpotError(f"config key {key!r}: null is not allowed (expected {_type_name(tp)})")
        real = [a for a in args if a is not type(None)]
        if len(real) == 1:  # Optional[X]: X's own, more precise message
            return _coerce(real[0], value, key)
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except DpotError:
                continue
        raise DpotError(f"config key {key!r}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise DpotError(f"config key {key!r}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise DpotError(f"config key {key!r}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, prefix=key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise DpotError(f"config key {key!r}: expected a list ({_type_name(tp)}), got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise DpotError(f"config key {key!r}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise DpotError(f"config key {key!r}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {_coerce(kt, k, key): _coerce(vt, v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise DpotError(f"config key {key!r}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise DpotError(f"config key {key!r}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise DpotError(f"config key {key!r}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise DpotError(f"config key {key!r}: expected a string, got {value!r}")
    raise DpotError(f"config key {key!r}: unsupported annotation {_type_name(tp)}")


def _unknown(key: str, known: Iterable[str]) -> DpotError:
    known = list(known)
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
    return DpotError(f"unknown config key {key!r}{hint}")


def from_dict(cls: type[T], data: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass `cls` from a nested mapping, checking each key and value; absent keys keep defaults.

    Every problem (unknown key, wrong type, non-finite or out-of-range number) is collected, also from nested
    sections, and raised as one `DpotError` with one line per problem."""
    data = dict(data or {})
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    problems: list[str] = []
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in fields:
            problems.append(str(_unknown(key, fields)))
            continue
        try:
            kwargs[name] = _coerce(hints[name], value, key)
        except DpotError as exc:
            problems.extend(str(exc).splitlines())
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        where = f"{prefix}." if prefix else ""
        problems.append(f"config key {where}{missing[0]!r} is required but not set")
    problems += value_problems(cls, kwargs, prefix)
    if problems:
        raise DpotError("\n".join(problems))
    try:
        return cls(**kwargs)
    except (ValueError, DpotError) as exc:
        raise DpotError(f"config {prefix}: {exc}" if prefix else str(exc)) from None


def to_dict(obj: Any) -> Any:
    """A dataclass (nested) as plain dicts/lists, ready for YAML or JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _parse_value(raw: str, tp: Any) -> Any:
    """Parse the text after '=' as YAML, except where the key wants a plain string."""
    is_null = raw.strip().lower() in ("null", "none", "~")
    wants_str = tp is str or (
        typing.get_origin(tp) in (Union, types.UnionType) and str in typing.get_args(tp) and not is_null
    )
    if wants_str:
        return raw
    try:
        return yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise DpotError(f"cannot parse value {raw!r}: {exc.__class__.__name__}") from None


def _field_type(cls: type, path: list[str]) -> tuple[Any, int]:
    """Annotation reached by following `path` through nested dataclasses: (type, path parts used)."""
    tp: Any = cls
    for depth, part in enumerate(path):
        base = tp
        if typing.get_origin(tp) in (Union, types.UnionType):
            base = next((a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)), tp)
        if not dataclasses.is_dataclass(base):
            return tp, depth
        hints = _hints(base)
        if part not in hints:
            raise _unknown(".".join(path[: depth + 1]), [f.name for f in dataclasses.fields(base)])
        tp = hints[part]
    return tp, len(path)


def apply_overrides(cls: type, data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Merge dotted ``a.b.c=value`` strings into the nested mapping `data` (a new dict is returned).

    A path that enters a dict-typed field uses the rest of the path as the dict key (``data.weights.swe=3``).
    Every bad override is reported, one line each."""
    data, problems = _merge_overrides(cls, data, overrides)
    if problems:
        raise DpotError("\n".join(problems))
    return data


def _merge_overrides(cls: type, data: dict[str, Any], overrides: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """`apply_overrides` that returns the problems (one line each) beside the merged mapping."""
    data = copy.deepcopy(data)
    problems = []
    for item in overrides:
        try:
            parts, value = _parse_override(cls, item)
        except DpotError as exc:
            problems.append(str(exc))
            continue
        node = data
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
        node[parts[-1]] = value
    return data, problems


def _parse_override(cls: type, item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (path into the nested mapping, parsed value)."""
    if "=" not in item:
        raise DpotError(f"override {item!r} is not of the form key=value (e.g. train.max_steps=100)")
    key, raw = item.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise DpotError(f"override {item!r}: empty key")
    tp, used = _field_type(cls, parts)
    if used < len(parts):
        if typing.get_origin(tp) is not dict:
            raise DpotError(f"unknown config key {key!r}: {'.'.join(parts[:used])} is not a section")
        parts = parts[:used] + [".".join(parts[used:])]
        tp = (typing.get_args(tp) or (Any, Any))[1]
    return parts, _parse_value(raw, tp)


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Load a YAML mapping with `yaml.safe_load`; an empty file is an empty mapping."""
    path = Path(path)
    if not path.is_file():
        raise DpotError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(read_text_file(path))
    except yaml.YAMLError as exc:
        raise DpotError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DpotError(f"{path}: a config file must be a mapping of sections, got {type(data).__name__}")
    return data


def find_preset(kind: str, name: str | os.PathLike) -> Path:
    """The YAML file for `name`: a packaged preset `dpot/configs/<kind>/<name>.yaml`, or a path to a file.

    Anything with a path separator or a .yaml/.yml suffix is a path; an unknown name lists the known ones."""
    text = str(name)
    if os.sep in text or "/" in text or Path(text).suffix in (".yaml", ".yml"):
        return Path(text)
    path = PRESETS / kind / f"{text}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (PRESETS / kind).glob("*.yaml"))
        raise DpotError(f"no {kind} preset {text!r}; known: {', '.join(known)} (or give a path to a YAML file)")
    return path


def _moved(cls: type, data: dict[str, Any], overrides: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """Apply `cls.moved_keys` ({old dotted key: new dotted key}, keys renamed since older saved configs):
    an old key in a file or an override is read as the new one, which wins when both are set."""
    moved: dict[str, str] = getattr(cls, "moved_keys", {})
    data, overrides = copy.deepcopy(data), list(overrides)
    for old, new in moved.items():
        *old_path, old_leaf = old.split(".")
        node: Any = data
        for part in old_path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and old_leaf in node:
            value = node.pop(old_leaf)
            *new_path, new_leaf = new.split(".")
            target = data
            for part in new_path:
                if not isinstance(target.get(part), dict):
                    target[part] = {}
                target = target[part]
            target.setdefault(new_leaf, value)
        overrides = [
            f"{new}={item.split('=', 1)[1]}" if item.split("=", 1)[0].strip() == old and "=" in item else item
            for item in overrides
        ]
    return data, overrides


def load_config(
    cls: type[T],
    path: str | os.PathLike | None = None,
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> T:
    """`cls` from `base` (a mapping), then the YAML file at `path`, then the dotted `overrides`."""
    data: dict[str, Any] = _deep_merge(dict(base or {}), read_yaml(path) if path is not None else {})
    data, overrides = _moved(cls, data, overrides)
    data, problems = _merge_overrides(cls, data, overrides)
    try:
        cfg = from_dict(cls, data)
    except DpotError as exc:
        problems += str(exc).splitlines()
    if problems:  # every bad override and value of the config at once, one line each
        raise DpotError("\n".join(problems))
    return cfg


def _deep_merge(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def dump_yaml(obj: Any, path: str | os.PathLike) -> None:
    """Write a config (dataclass or mapping) as YAML, atomically; `load_config` reads it back equal."""
    write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=None))
