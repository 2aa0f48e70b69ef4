"""Plain Python values to request messages, and ``Struct`` back to plain Python.

Callers write ``time_range=(start, end)``, ``granularity="day"`` or a filter as a ``dict``; this
module turns those into the generated messages, refusing anything ambiguous with a
:class:`PugInvalidArgumentError` before a request is sent. Fields given as ``None`` stay unset:
every field of these edition-2023 messages has explicit presence, and a set zero value is still
checked by the server's rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from pug_grpc._errors import PugInvalidArgumentError
from pug_grpc._timestamps import to_ns
from pug_grpc.gen.common.v1 import time_pb2

__all__ = [
    "TimeRangeLike",
    "build",
    "enum_value",
    "filter_groups",
    "request",
    "struct_to_dict",
    "time_range",
    "to_timestamp",
]

_M = TypeVar("_M", bound=Message)

TimeRangeLike: TypeAlias = (
    time_pb2.TimeRange | tuple[datetime, datetime] | timedelta | Mapping[str, Any]
)
"""A ``TimeRange``, a ``(from, to)`` pair of aware datetimes, or a ``timedelta`` ending now."""


def _bad(message: str) -> PugInvalidArgumentError:
    return PugInvalidArgumentError.client_side(message, reason="CLIENT_ARGUMENT")


def _now() -> datetime:
    return datetime.now(UTC)


def filter_groups(
    filters: Sequence[Mapping[str, Any]] | None, groups: Sequence[Any] | None
) -> Sequence[Any] | None:
    """``filters=[...]`` is shorthand for one more AND group after ``groups``."""
    if filters is None:
        return groups
    return [*(groups or ()), {"filters": list(filters), "operator": "and"}]


def struct_to_dict(struct: Struct | None) -> dict[str, Any]:
    """A ``google.protobuf.Struct`` (profile traits, event properties) as a plain ``dict``.

    Numbers come back as ``float``: ``Struct`` stores every number as a double.
    """
    if struct is None:
        return {}
    result = json_format.MessageToDict(struct)
    return dict(result) if isinstance(result, dict) else {}


def enum_value(enum: EnumDescriptor, value: object, *, where: str = "") -> int:
    """An enum number from a number, a full name (``GRANULARITY_DAY``) or a short one (``day``)."""
    label = where or enum.full_name
    if isinstance(value, bool):
        raise _bad(f"{label}: expected an enum name or number, not a bool")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise _bad(f"{label}: expected an enum name or number, not {type(value).__name__}")
    name = value.strip().upper().replace("-", "_").replace(" ", "_")
    by_name = enum.values_by_name
    if name in by_name:
        return int(by_name[name].number)
    prefix = next(
        (v.name[: -len("UNSPECIFIED")] for v in enum.values if v.name.endswith("_UNSPECIFIED")), ""
    )
    if prefix and prefix + name in by_name:
        return int(by_name[prefix + name].number)
    known = ", ".join(v.name[len(prefix) :].lower() for v in enum.values if v.number != 0)
    raise _bad(f"{label}: unknown value {value!r} (expected one of: {known})")


def to_timestamp(value: object, *, where: str = "timestamp") -> Timestamp:
    """A ``Timestamp`` from a ``datetime`` (naive means UTC), RFC 3339 text, epoch seconds or
    a ``Timestamp``: the package's one reading of timestamps (:mod:`pug_grpc._timestamps`)."""
    if isinstance(value, Timestamp):
        return value
    try:
        ns = to_ns(value, text=True)
    except ValueError as exc:
        raise _bad(f"{where}: {exc}") from None
    ts = Timestamp()
    ts.FromNanoseconds(ns)
    return ts


def _to_duration(value: object, where: str) -> Duration:
    if isinstance(value, Duration):
        return value
    duration = Duration()
    if isinstance(value, timedelta):
        duration.FromTimedelta(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        duration.FromNanoseconds(round(value * 1_000_000_000))
    elif isinstance(value, str):
        try:
            duration.FromJsonString(value)
        except ValueError:
            raise _bad(f"{where}: {value!r} is not a duration like '1.5s'") from None
    else:
        raise _bad(f"{where}: expected a timedelta or seconds, not {type(value).__name__}")
    return duration


def time_range(value: object, *, where: str = "time_range") -> time_pb2.TimeRange:
    """A ``TimeRange`` from ``(from, to)``, a ``timedelta`` (the window ending now) or a dict."""
    if isinstance(value, time_pb2.TimeRange):
        return value
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise _bad(f"{where}: a window length must be positive, got {value}")
        end = _now()
        start, stop = end - value, end
    elif isinstance(value, Mapping):
        unknown = set(value) - {"from", "to", "from_", "start", "end"}
        if unknown:
            raise _bad(f"{where}: unexpected keys {sorted(unknown)}; use 'from' and 'to'")
        start = value.get("from", value.get("from_", value.get("start")))
        stop = value.get("to", value.get("end"))
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes) and len(value) == 2:
        start, stop = value[0], value[1]
    else:
        raise _bad(f"{where}: expected (from, to), a timedelta or a TimeRange")
    start_ts = to_timestamp(start, where=f"{where}.from")
    stop_ts = to_timestamp(stop, where=f"{where}.to")
    if start_ts.ToNanoseconds() >= stop_ts.ToNanoseconds():
        raise _bad(f"{where}: 'from' must be strictly before 'to'")
    result = time_pb2.TimeRange()
    getattr(result, "from").CopyFrom(start_ts)
    result.to.CopyFrom(stop_ts)
    return result


def _field(descriptor: Descriptor, key: str, where: str) -> FieldDescriptor:
    field = descriptor.fields_by_name.get(key)
    if field is None:
        field = next((f for f in descriptor.fields if f.json_name == key), None)
    if field is None:
        known = ", ".join(f.name for f in descriptor.fields)
        raise _bad(f"{where}: {descriptor.full_name} has no field {key!r} (fields: {known})")
    return field


def _scalar(field: FieldDescriptor, value: object, where: str) -> object:
    if field.enum_type is not None:
        return enum_value(field.enum_type, value, where=where)
    return value


def _message_value(field_type: Descriptor, target: Message, value: object, where: str) -> None:
    """Fill ``target`` (of type ``field_type``) from ``value``."""
    if isinstance(value, Message):
        if value.DESCRIPTOR is not field_type:
            raise _bad(
                f"{where}: expected {field_type.full_name}, got {value.DESCRIPTOR.full_name}"
            )
        target.CopyFrom(value)
        return
    name = field_type.full_name
    if name == "google.protobuf.Timestamp":
        target.CopyFrom(to_timestamp(value, where=where))
    elif name == "google.protobuf.Duration":
        target.CopyFrom(_to_duration(value, where))
    elif name == "common.v1.TimeRange":
        target.CopyFrom(time_range(value, where=where))
    elif name == "google.protobuf.Struct":
        if not isinstance(value, Mapping):
            raise _bad(f"{where}: expected a dict, not {type(value).__name__}")
        try:
            target.update(value)  # type: ignore[attr-defined]
        except (TypeError, ValueError) as exc:
            raise _bad(f"{where}: {exc}") from None
    elif isinstance(value, Mapping):
        _fill(target, value, where)
    else:
        raise _bad(f"{where}: expected a {name} or a dict, not {type(value).__name__}")


def _fill(message: Message, values: Mapping[str, Any], where: str) -> None:
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]
    for key, value in values.items():
        if value is None:
            continue
        field = _field(descriptor, key, where)
        here = f"{where}.{field.name}"
        try:
            _set(message, field, value, here)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, PugInvalidArgumentError):
                raise
            raise _bad(f"{here}: {exc}") from None


def _set(message: Message, field: FieldDescriptor, value: object, where: str) -> None:
    container = getattr(message, field.name)
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if not isinstance(value, Mapping):
            raise _bad(f"{where}: expected a dict, not {type(value).__name__}")
        value_field = entry.fields_by_name["value"]
        for k, v in value.items():
            if value_field.message_type is not None:
                _message_value(value_field.message_type, container[k], v, f"{where}[{k!r}]")
            else:
                container[k] = _scalar(value_field, v, f"{where}[{k!r}]")
    elif field.is_repeated:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
            raise _bad(f"{where}: expected a list, not {type(value).__name__}")
        for i, item in enumerate(value):
            if field.message_type is not None:
                _message_value(field.message_type, container.add(), item, f"{where}[{i}]")
            else:
                container.append(_scalar(field, item, f"{where}[{i}]"))
    elif field.message_type is not None:
        _message_value(field.message_type, container, value, where)
    else:
        setattr(message, field.name, _scalar(field, value, where))


def build(cls: type[_M], value: _M | Mapping[str, Any]) -> _M:
    """A ``cls`` message from a message of that type (returned as is) or a ``dict`` of fields."""
    if isinstance(value, cls):
        return value
    if isinstance(value, Message):
        raise _bad(f"expected {cls.DESCRIPTOR.full_name}, got {value.DESCRIPTOR.full_name}")
    if not isinstance(value, Mapping):
        raise _bad(f"expected {cls.DESCRIPTOR.full_name} or a dict, not {type(value).__name__}")
    message = cls()
    _fill(message, value, cls.DESCRIPTOR.name)
    return message


def request(
    cls: type[_M],
    given: object = None,
    /,
    *,
    first: str | None = None,
    required: Sequence[str] = (),
    **fields: Any,
) -> _M:
    """The request for a call: ``given`` when it already is a ``cls``, else one built from fields.

    ``first`` names the field the positional argument stands for when it is a plain value
    (``profiles.get("p1")`` sets ``id``). Keyword fields next to a request message are refused,
    since one of the two would be silently ignored.
    """
    if isinstance(given, cls):
        extra = sorted(k for k, v in fields.items() if v is not None)
        if extra:
            raise _bad(
                f"pass either a {cls.DESCRIPTOR.name} or keyword arguments, not both "
                f"(got {', '.join(extra)})"
            )
        return given
    if isinstance(given, Message):
        raise _bad(f"expected {cls.DESCRIPTOR.full_name}, got {given.DESCRIPTOR.full_name}")
    if given is not None:
        if first is None:
            raise _bad(f"expected {cls.DESCRIPTOR.full_name}, not {type(given).__name__}")
        fields[first] = given
    missing = [name for name in required if fields.get(name) in (None, "")]
    if missing:
        raise _bad(f"{cls.DESCRIPTOR.name}: missing required {', '.join(missing)}")
    return build(cls, fields)
