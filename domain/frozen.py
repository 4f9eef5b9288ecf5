"""Value types to plain JSON data and back, so a quarter's rollup can be frozen and shown again.

`to_data` turns a frozen dataclass (and what it holds: lists, tuples, dicts, dates, enums) into
JSON-ready data; `from_data` rebuilds the dataclass from it using the type hints, so the value
shown later is equal to the value frozen. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar

T = TypeVar("T")


class FrozenDataError(ValueError):
    """Stored data that does not fit the type it should rebuild."""


def to_data(value: Any) -> Any:
    """JSON-ready data for a value: dataclasses become objects, dates ISO strings, enums their value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    return value


def from_data(cls: type[T], data: Any) -> T:
    """The value of type `cls` that `to_data` turned into `data`."""
    return typing.cast(T, _build(cls, data, cls.__name__))


def _build(hint: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _build(option, data, where)
            except (FrozenDataError, TypeError, ValueError):
                continue
        raise FrozenDataError(f"{where}: {data!r} fits none of {hint}")
    if hint is Any:
        return data
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(data, dict):
            raise FrozenDataError(f"{where}: expected an object for {hint.__name__}")
        kwargs = {
            name: _build(field_hint, data[name], f"{where}.{name}")
            for name, field_hint in _init_fields(hint)
            if name in data
        }
        return hint(**kwargs)
    if origin is list:
        return [_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(_sequence(data, where))]
    if origin is tuple:
        items = _sequence(data, where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(items))
        if len(args) != len(items):
            raise FrozenDataError(f"{where}: expected {len(args)} values, found {len(items)}")
        return tuple(_build(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, items, strict=True)))
    if origin is dict:
        if not isinstance(data, dict):
            raise FrozenDataError(f"{where}: expected an object")
        return {k: _build(args[1], v, f"{where}.{k}") for k, v in data.items()}
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(data)
    if hint is datetime:
        return datetime.fromisoformat(_text(data, where))
    if hint is date:
        return date.fromisoformat(_text(data, where))
    if hint is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise FrozenDataError(f"{where}: expected a number")
        return float(data)
    if hint in (int, str, bool) and not isinstance(data, hint):
        raise FrozenDataError(f"{where}: expected {hint.__name__}")
    if hint is type(None) and data is not None:
        raise FrozenDataError(f"{where}: expected nothing")
    return data


@functools.cache
def _init_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    # Resolving a class's type hints evaluates every annotation string: once per class, not once
    # per value (a 10,000-item quarter holds tens of thousands of values).
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.init)


def _sequence(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise FrozenDataError(f"{where}: expected a list")
    return data


def _text(data: Any, where: str) -> str:
    if not isinstance(data, str):
        raise FrozenDataError(f"{where}: expected a date")
    return data
