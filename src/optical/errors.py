"""The one exception type for user errors, and the type check of configuration dataclasses.

Anything the user can fix (a bad flag, a malformed file, a missing data
directory) raises :class:`OpticalError` with a single line that names the
file, line or value and says what to do. The CLI prints that line and exits
with status 2 instead of showing a traceback.

:func:`check_field_types` checks every field of a configuration dataclass against its
annotation, so a YAML value of the wrong type (``budget: lots``, ``seed: [1, 2]``) is refused
with one line before it reaches a library that would raise a ``TypeError`` deep inside::

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Example:
    ...     seed: int = 0
    ...     budget: int | None = None
    >>> check_field_types(Example(seed=[1, 2]), "run.yaml")
    Traceback (most recent call last):
    ...
    optical.errors.OpticalError: run.yaml: seed must be an integer, got [1, 2]
"""

from __future__ import annotations

import dataclasses
import reprlib
import types
import typing
from typing import Any


class OpticalError(Exception):
    """A user-facing error: one line, naming the culprit and the remedy."""


def check_field_types(obj: Any, origin: str = "config") -> None:
    """Raise :class:`OpticalError` for the first field of dataclass ``obj`` whose value does not
    match its annotation (``int`` refuses bools and floats, ``float`` takes ints, ``Literal`` its values)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        hint = hints.get(f.name, Any)
        value = getattr(obj, f.name)
        if not _matches(value, hint):
            raise OpticalError(f"{origin}: {f.name} must be {_describe(hint)}, got {short_repr(value)}")


#: A value named in a message is shown this short: a config value may be a large (or alias-expanded) structure.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxtuple, _SHORT.maxset = 2, 4, 4, 4, 4
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 60, 60, 40


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to a few items and characters (reprlib), so that a message stays one short line."""
    return _SHORT.repr(value)


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple, set):
        if not isinstance(value, origin):
            return False
        item = args[0] if args else Any
        return all(_matches(v, item) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            return False
        key, val = args if args else (Any, Any)
        return all(_matches(k, key) and _matches(v, val) for k, v in value.items())
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    if hint is type(None) or hint is None:
        return "null"
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(_describe(arg) for arg in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin in (list, tuple, set):
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin is dict:
        return f"a mapping of {_plural(args[0])} to {_plural(args[1])}" if args else "a mapping"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _plural(hint: Any) -> str:
    plurals = {bool: "booleans", int: "integers", float: "numbers", str: "strings", Any: "values"}
    if hint in plurals:
        return plurals[hint]
    origin = typing.get_origin(hint)
    if origin is dict:
        return "mappings"
    if origin in (list, tuple, set):
        return "lists"
    return _describe(hint)
