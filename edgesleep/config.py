"""One strict way to build a config dataclass (training options, recipes, model configs)
from a mapping (TOML, JSON, keyword options): unknown keys are refused naming the closest
valid one, and values that do not fit the field's annotation are refused. stdlib only."""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from edgesleep.errors import UsageError

T = TypeVar("T")


def check_keys(values: Mapping[str, Any], valid: Iterable[str], where: str) -> None:
    """Refuse a key of ``values`` that is not in ``valid``, naming the closest valid one.

    Raises
    ------
    UsageError
    """
    valid = list(valid)
    for key in values:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {sorted(valid)}"
            raise UsageError(f"{where}: unknown key {key!r}; {hint}")


def _fits(hint: Any, value: Any) -> bool:
    """Whether ``value`` (from TOML/JSON: lists for tuples) fits the annotation ``hint``."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_fits(a, value) for a in args)
    if origin is Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]: any length
            args = args[:1] * len(value)
        return len(args) == len(value) and all(
            _fits(a, v) for a, v in zip(args, value, strict=True)
        )
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type) and issubclass(hint, os.PathLike):
        return isinstance(value, str | os.PathLike)
    return isinstance(value, origin or hint) if isinstance(origin or hint, type) else True


def _convert(hint: Any, value: Any) -> Any:
    """Lists become tuples, ints floats for float fields, strings paths for path fields (in
    unions too: the first member that takes the value)."""
    if get_origin(hint) in (Union, types.UnionType):
        return _convert(next(a for a in get_args(hint) if _fits(a, value)), value)
    if isinstance(hint, type) and issubclass(hint, os.PathLike) and isinstance(value, str):
        return hint(value)  # type: ignore[call-arg]
    if isinstance(value, list):
        return tuple(value)
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def _describe(hint: Any) -> str:
    """An annotation in words: "one of 'a', 'b'", "int or str", "a list of int"."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        return f"a list of {_describe(args[0])}" if args else "a list"
    return getattr(hint, "__name__", str(hint))


def layered(
    file: Mapping[str, Any], command_line: Mapping[str, Any], given: Iterable[str]
) -> dict[str, Any]:
    """One mapping from a file's values and the command line's, with the one precedence
    rule of every run: an option given on the command line (its name in ``given``) wins
    over the file, the file over the option's default (a command-line value not given)."""
    given = set(given)
    out = dict(file)
    for key, value in command_line.items():
        if key in given or key not in file:
            out[key] = value
    return out


def from_mapping(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """``cls(**values)``, strictly.

    Parameters
    ----------
    cls : a dataclass
    values : field name -> value
    where : what the values came from, for messages (a file and section, an option group)

    A dataclass may declare ``RENAMED`` (old key -> new key): an old key still works for
    one release, with a ``DeprecationWarning``.

    Raises
    ------
    UsageError
        On an unknown key (naming the closest valid one) or a value that does not fit the
        field's annotation (naming what it takes).
    """
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    renamed: Mapping[str, str] = getattr(cls, "RENAMED", {})  # old key -> new, for a release
    for old in [k for k in values if k in renamed and renamed[k] not in values]:
        warnings.warn(f"{where}: {old!r} is now {renamed[old]!r} (the old name goes in the "
                      "next release)", DeprecationWarning, stacklevel=2)  # fmt: skip
        values = {renamed[old] if k == old else k: v for k, v in values.items()}
    check_keys(values, fields, where)
    hints = typing.get_type_hints(cls)
    checked = {}
    for key, value in values.items():
        if not _fits(hints[key], value):
            raise UsageError(f"{where}: {key} = {value!r}; it takes {_describe(hints[key])}")
        checked[key] = _convert(hints[key], value)
    return cls(**checked)
