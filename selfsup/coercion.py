"""Plain values (YAML, command-line strings) into typed dataclass fields, with errors that name the key.

``build_dataclass(cls, raw, where)`` builds a config section from a mapping; ``coerce`` converts one value to
its field's annotation (unions, tuples, mappings and the scalars in ``SCALARS``); ``read_yaml`` reads a file with
the safe loader. Everything raises ``ConfigError`` naming the key or the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from selfsup.errors import ConfigError


def read_yaml(path: str | Path) -> Any:
    """A YAML file's contents (safe loader: no objects built); unreadable or malformed YAML is a ConfigError naming
    the file and the line."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{line} ({problem})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read ({getattr(error, 'strerror', None) or error})") from None


def read_json(path: str | Path, what: str = "JSON file") -> dict[str, Any]:
    """A JSON file holding an object; a file cut short, with flipped bits or of another shape is a RunDirectoryError
    naming it (exit 2), never a decoder traceback."""
    from selfsup.errors import RunDirectoryError

    try:
        raw = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        text = str(error).strip()
        detail = getattr(error, "strerror", None) or (text.splitlines()[0][:120] if text else type(error).__name__)
        raise RunDirectoryError(f"{path}: cannot read this {what} ({detail}); it is cut short or corrupt") from None
    if not isinstance(raw, dict):
        raise RunDirectoryError(f"{path}: not a {what} selfsup wrote (it holds a {type(raw).__name__}, not an object)")
    return raw


def build_dataclass(cls: type, raw: dict[str, Any], where: str) -> Any:
    """Build ``cls`` from plain values, converting each to its field's annotated type."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(raw) - set(fields)
    if unknown:
        raise ConfigError(f"unknown {where} keys {sorted(unknown)}; valid: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: coerce(value, hints[name], f"{where}.{name}") for name, value in raw.items()}
    return cls(**kwargs)


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML or command-line value to ``annotation``; strings are parsed as YAML first."""
    if isinstance(value, str) and annotation is not str:
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigError(f"{where}: cannot read {value!r} as a value ({problem})") from None
        if isinstance(parsed, str) and _is_optional(annotation) and parsed.lower() in ("none", "null"):
            parsed = None
        value = parsed
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, typing.get_args(annotation), where)
    if origin is tuple:
        return _coerce_tuple(value, typing.get_args(annotation), where)
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} expects a mapping, got {value!r}")
        return dict(value)
    if annotation in SCALARS:
        return SCALARS[annotation](value, where)
    return value  # Any, and annotations the configs do not use


def _coerce_union(value: Any, options: tuple[Any, ...], where: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return coerce(value, option, where)
        except ConfigError as error:
            errors.append(str(error))
    raise ConfigError(errors[0] if errors else f"{where}: cannot use {value!r}")


def _coerce_tuple(value: Any, args: tuple[Any, ...], where: str) -> tuple[Any, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} expects a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(v, args[0], where) for v in value)
    if len(value) != len(args):
        raise ConfigError(f"{where} expects {len(args)} values, got {len(value)}: {value!r}")
    return tuple(coerce(v, a, where) for v, a in zip(value, args))


def _to_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{where} expects true or false, got {value!r}")


def _to_int(value: Any, where: str) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} expects an integer, got {value!r}")
    return value


def _to_float(value: Any, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 3e-4 (no dot) as a string
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} expects a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise ConfigError(f"{where} is out of range: {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    return number


def _to_str(value: Any, where: str) -> str:
    if value is None or isinstance(value, (list, dict)):
        raise ConfigError(f"{where} expects a string, got {value!r}")
    return str(value)


SCALARS: dict[Any, Callable[[Any, str], Any]] = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


def _is_optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


LARGEST_INT = 2**31 - 1  # no count, size or seed of a run is larger; a larger one is a typo or an overflow
LARGEST_FLOAT = 1e30  # far below float32's 3.4e38, which torch converts every learning rate and weight to


def check_numbers(section: Any, where: str) -> None:
    """Every number of a config section (and in its tuples) is finite and within ``LARGEST_INT`` (whole numbers) or
    ``LARGEST_FLOAT`` (the rest):
    an infinite learning rate or a NaN temperature is a mistake in the input, not a divergence to find later."""
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        for number in value if isinstance(value, tuple) else (value,):
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                continue
            require(math.isfinite(number), f"{where}.{item.name} must be a finite number, got {value!r}")
            largest = LARGEST_FLOAT if isinstance(number, float) else LARGEST_INT
            require(abs(number) <= largest, f"{where}.{item.name} is out of range: {value!r} (at most {largest:g})")


def require(condition: bool, message: str) -> None:
    """A ConfigError with ``message`` unless ``condition`` holds: every config check."""
    if not condition:
        raise ConfigError(message)
