"""Python values to Pug property values (``common.v1.PropertyValue``) and profile traits.

A property value on the wire is a string (at most 1,024 code points), an int64, a finite double,
a bool or a timestamp. Everything a caller passes is mapped onto one of these or dropped with a
warning naming the key (never the value, which may be personal data); nothing here raises.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import math
import numbers
import uuid
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import PurePath
from typing import Any, Final

from google.protobuf import struct_pb2

from pug_grpc._timestamps import NS_PER_S, datetime_to_ns, in_timestamp_range
from pug_grpc.gen.common.v1 import property_value_pb2

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_STRING_LEN",
    "Instant",
    "Scalar",
    "checked_properties",
    "fill_property_value",
    "format_duration",
    "normalize_properties",
    "normalize_value",
    "to_struct",
]

_log = logging.getLogger("pug_grpc.properties")

MAX_STRING_LEN: Final = 1024
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_SAFE_DOUBLE_INT: Final = 2**53
_MAX_DEPTH: Final = 32
MAX_PROPERTY_NODES: Final = 2048
"""Parts (containers and values) one list/dict property may have: it becomes JSON text of at
most 1,024 characters anyway. A shared sub-container counts each time it is reached, so a
value that nests itself (``d = [d, d]``, 23 deep) costs this much work, not 2**23."""
MAX_TRAIT_NODES: Final = 10_000
"""Parts all the traits of one identify call may have together (the rest is dropped)."""

_UTC = dt.UTC


class Instant(int):
    """Nanoseconds since the Unix epoch, marking a value to send as a timestamp."""

    __slots__ = ()


Scalar = str | int | float | bool | Instant
"""A normalized property value: its exact type picks the ``PropertyValue`` case."""


class _DropError(Exception):
    """Internal: the value cannot be sent; the message says why (logged by the caller)."""


def _shown(key: str) -> str:
    """A key as the logs show it; ``str.__repr__`` skips a subclass's own, which may raise."""
    return str.__repr__(key)


def format_duration(value: dt.timedelta) -> str:
    """The package's canonical duration text: seconds with a trailing ``s`` (``"1.5s"``)."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    text = f"{whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else str(whole)
    return f"{sign}{text}s"


def _valid_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clip(key: str, text: str) -> str:
    if len(text) > MAX_STRING_LEN:
        _log.warning(
            "property %s: string of %d characters truncated to %d",
            _shown(key),
            len(text),
            MAX_STRING_LEN,
        )
        text = text[:MAX_STRING_LEN]
    if not _valid_text(text):
        raise _DropError("string is not valid Unicode text (lone surrogate)")
    return text


def _int(key: str, value: int) -> int | str:
    if INT64_MIN <= value <= INT64_MAX:
        return value
    try:
        text = str(value)
    except ValueError:  # beyond the interpreter's limit on integer-to-text conversion
        raise _DropError("integer too large to send, even as text") from None
    _log.warning("property %s: integer outside int64 sent as a string", _shown(key))
    return text


def _float(value: float) -> float:
    if math.isfinite(value):
        return value
    raise _DropError("NaN and infinity are not property values")


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal | uuid.UUID | PurePath | Fraction):
        return str(value)
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _count_parts(value: Any, budget: int) -> int:
    """How many parts ``value`` has, counting stops once past ``budget`` (returns budget + 1)."""
    seen = 0
    stack = [value]
    while stack:
        item = stack.pop()
        seen += 1
        if seen > budget:
            return seen
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return seen


def _json(key: str, value: Any) -> str:
    if _count_parts(value, MAX_PROPERTY_NODES) > MAX_PROPERTY_NODES:
        raise _DropError(f"nested value has more than {MAX_PROPERTY_NODES} parts")
    try:
        text = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise _DropError(f"cannot be encoded as JSON ({exc.__class__.__name__})") from None
    return _clip(key, text)


def _slow(key: str, value: Any) -> Scalar:
    if isinstance(value, enum.Enum):
        inner = value.value
        if isinstance(inner, str | int | float):
            return normalize_value(key, inner)
        return _clip(key, value.name)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return _clip(key, str.__str__(value))  # the text itself, whatever a subclass says
    if isinstance(value, dt.datetime):
        ns = datetime_to_ns(value)
        if not in_timestamp_range(ns):
            raise _DropError("datetime outside the timestamp range")
        return Instant(ns)
    if isinstance(value, dt.date):
        return Instant(datetime_to_ns(dt.datetime(value.year, value.month, value.day, tzinfo=_UTC)))
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _DropError("NaN and infinity are not property values")
        if value == value.to_integral_value() and INT64_MIN <= value <= INT64_MAX:
            return int(value)
        return _float(float(value))
    if isinstance(value, numbers.Integral):
        return _int(key, int(value))
    if isinstance(value, numbers.Real):
        return _float(float(value))
    if isinstance(value, uuid.UUID | PurePath):
        return str(value)
    if isinstance(value, list | tuple | dict | set | frozenset):
        return _json(key, value)
    raise _DropError(f"{type(value).__name__} is not a supported property type")


def normalize_value(key: str, value: Any) -> Scalar:
    """Map one property value onto a sendable scalar; raises ``_DropError`` when there is none."""
    kind = type(value)
    if kind is str:
        return _clip(key, value)
    if kind is bool:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return _int(key, value)
    if kind is float:
        return _float(value)
    if kind is Instant:
        return value  # type: ignore[no-any-return]  # already normalized: stays a timestamp
    return _slow(key, value)


def normalize_properties(properties: Mapping[Any, Any]) -> dict[str, Scalar]:
    """Custom properties ready for the wire; bad keys and values are dropped with a warning."""
    out: dict[str, Scalar] = {}
    for key, value in properties.items():
        if value is None:
            continue
        if not isinstance(key, str):
            _log.warning("property key of type %s dropped: not a string", type(key).__name__)
            continue
        name = str.__str__(key)  # a str subclass's own __str__ may raise: take the text itself
        if name.startswith("$"):
            _log.warning(
                "property %s dropped: '$' keys are reserved for auto-properties", _shown(name)
            )
            continue
        if not _valid_text(name):
            _log.warning("property key dropped: not valid Unicode text")
            continue
        try:
            out[name] = normalize_value(name, value)
        except _DropError as why:
            _log.warning("property %s dropped: %s", _shown(name), why)
        except Exception as exc:  # hostile input: a value whose own methods raise
            _log.warning(
                "property %s dropped: its value could not be read (%s)",
                _shown(name),
                type(exc).__name__,
            )
    return out


def checked_properties(properties: Mapping[Any, Any]) -> dict[str, Any]:
    """The entries of ``properties`` that can be sent, values as given (warnings for the rest).

    For properties set once and sent with many events (``default_properties``, a request
    context's): checked once here, so their events warn about nothing, and kept as the caller
    gave them (a ``datetime`` stays one for ``before_send`` and is sent as a timestamp).
    """
    normalized = normalize_properties(properties)
    return {key: value for key, value in properties.items() if key in normalized}


def fill_property_value(target: property_value_pb2.PropertyValue, value: Scalar) -> None:
    """Set the ``PropertyValue`` case matching the exact type of a normalized value."""
    kind = type(value)
    if kind is str:
        target.string_value = value  # type: ignore[assignment]
    elif kind is bool:
        target.bool_value = value  # type: ignore[assignment]
    elif kind is int:
        target.int_value = value  # type: ignore[assignment]
    elif kind is float:
        target.double_value = value  # type: ignore[assignment]
    else:
        seconds, nanos = divmod(int(value), NS_PER_S)
        ts = target.timestamp_value
        ts.seconds = seconds
        ts.nanos = nanos


class _OverBudgetError(_DropError):
    """The traits of one call have too many parts: the top-level trait being read goes."""


class _Budget:
    """Parts left for the traits of one call."""

    __slots__ = ("left",)

    def __init__(self, parts: int) -> None:
        self.left = parts

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _OverBudgetError(f"the traits have more than {MAX_TRAIT_NODES} parts in all")


def _trait(key: str, value: Any, depth: int, budget: _Budget) -> Any:
    budget.spend()
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str) and not _valid_text(value):
            raise _DropError("string is not valid Unicode text (lone surrogate)")
        return value
    if isinstance(value, enum.Enum):
        return _trait(key, value.value, depth, budget)
    if isinstance(value, numbers.Integral):
        as_int = int(value)
        return as_int if abs(as_int) <= _SAFE_DOUBLE_INT else str(as_int)
    if isinstance(value, Decimal | numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise _DropError("NaN and infinity are not JSON numbers")
        return number
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=_UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, uuid.UUID | PurePath):
        return str(value)
    if depth >= _MAX_DEPTH:
        raise _DropError("nested too deeply")
    if isinstance(value, Mapping):
        return _traits_dict(value, depth + 1, budget)
    if isinstance(value, list | tuple | set | frozenset):
        return [_trait(key, item, depth + 1, budget) for item in value]
    raise _DropError(f"{type(value).__name__} is not a JSON-compatible value")


def _traits_dict(traits: Mapping[Any, Any], depth: int, budget: _Budget) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in traits.items():
        if not isinstance(key, str) or not _valid_text(key):
            _log.warning("trait key of type %s dropped: keys must be strings", type(key).__name__)
            continue
        name = str.__str__(key)
        try:
            left = budget.left
            out[name] = _trait(name, value, depth, budget)
        except _DropError as why:
            if isinstance(why, _OverBudgetError):
                if depth:
                    raise  # the whole top-level trait goes, named in one warning
                budget.left = left  # what it spent is not spent: the traits after it may fit
            _log.warning("trait %s dropped: %s", _shown(name), why)
        except Exception as exc:  # hostile input: a value whose own methods raise
            _log.warning(
                "trait %s dropped: its value could not be read (%s)",
                _shown(name),
                type(exc).__name__,
            )
    return out


def to_struct(traits: Mapping[Any, Any]) -> struct_pb2.Struct:
    """Profile traits as a ``google.protobuf.Struct`` (datetimes become RFC 3339 strings)."""
    struct = struct_pb2.Struct()
    struct.update(_traits_dict(traits, 0, _Budget(MAX_TRAIT_NODES)))
    return struct
