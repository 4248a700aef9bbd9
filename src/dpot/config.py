"""Typed configs: dataclasses filled from YAML (``yaml.safe_load``) plus dotted ``key=value`` overrides.

Every value is checked against the dataclass annotation; an unknown key or a value of the wrong type raises
`DpotError` naming the dotted key, so a typo on the command line never passes silently.
"""

from __future__ import annotations

import dataclasses
import difflib
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
    """Build dataclass `cls` from a nested mapping, checking each key and value; absent keys keep defaults."""
    data = dict(data or {})
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in fields:
            raise _unknown(key, fields)
        kwargs[name] = _coerce(hints[name], value, key)
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        where = f"{prefix}." if prefix else ""
        raise DpotError(f"config key {where}{missing[0]!r} is required but not set")
    try:
        return cls(**kwargs)
    except (ValueError, DpotError) as exc:
        raise DpotError(f"config {prefix or cls.__name__}: {exc}") from None


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
    wants_str = tp is str or (typing.get_origin(tp) in (Union, types.UnionType)
                              and str in typing.get_args(tp) and not is_null)
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
            raise _unknown(".".join(path[:depth + 1]), [f.name for f in dataclasses.fields(base)])
        tp = hints[part]
    return tp, len(path)


def apply_overrides(cls: type, data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Merge dotted ``a.b.c=value`` strings into the nested mapping `data` (a new dict is returned).

    A path that enters a dict-typed field uses the rest of the path as the dict key (``data.weights.swe=3``).
    """
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
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
        value = _parse_value(raw, tp)
        node = data
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
        node[parts[-1]] = value
    return data


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


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                base: Mapping[str, Any] | None = None) -> T:
    """`cls` from `base` (a mapping), then the YAML file at `path`, then the dotted `overrides`."""
    data: dict[str, Any] = _deep_merge(dict(base or {}), read_yaml(path) if path is not None else {})
    data = apply_overrides(cls, data, overrides)
    return from_dict(cls, data)


def _deep_merge(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def dump_yaml(obj: Any, path: str | os.PathLike) -> None:
    """Write a config (dataclass or mapping) as YAML, atomically; `load_config` reads it back equal."""
    write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=None))
