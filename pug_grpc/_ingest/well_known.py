"""Well-known events: typed or string-form properties checked against Pug's catalog.

The catalog messages never travel themselves: each set field becomes one custom property
keyed by the field name. Building the message first lets protovalidate apply the catalog's
own rules, so a well-known event is refused on the client exactly where the schema says so.
"""

from __future__ import annotations

import datetime as dt
import keyword
import logging
import math
from collections.abc import Mapping
from typing import Any, Final

from google.protobuf import duration_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from pug_grpc._ingest.properties import Scalar, format_duration
from pug_grpc._ingest.validation import field_path
from pug_grpc.gen.catalog import OTHER_PLATFORM_KINDS, SERVER_KINDS, WellKnownEvent
from pug_grpc.gen.common.events.v1 import options_pb2

__all__ = [
    "CatalogError",
    "is_well_known",
    "pii_fields",
    "properties_of_event",
    "properties_of_kind",
]

_log = logging.getLogger("pug_grpc.catalog")
_INT_RANGES: Final = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}
_MAX_DURATION_S: Final = 315_576_000_000
_DURATION: Final = "google.protobuf.Duration"


class CatalogError(ValueError):
    """A well-known event broke a catalog rule; the message names the kind, field and rule."""

    def __init__(self, kind: str, reason: str, rule: str) -> None:
        super().__init__(f"well-known event {kind!r}: {reason}")
        self.kind = kind
        self.rule = rule


def is_well_known(kind: str) -> bool:
    """Say whether ``kind`` has a server-side schema; other-platform kinds are custom events."""
    if kind in SERVER_KINDS:
        return True
    if kind in OTHER_PLATFORM_KINDS:
        _log.debug("kind %r is catalogued for other platforms only: sent as a custom event", kind)
    return False


def _attribute(field_name: str) -> str:
    return field_name + "_" if keyword.iskeyword(field_name) else field_name


def properties_of_event(event: WellKnownEvent, *, send_pii: bool = True) -> dict[str, Scalar]:
    """The custom properties of a typed event; raises :class:`CatalogError` if it is invalid."""
    descriptor = event.PROPERTIES.DESCRIPTOR
    values = {f.name: getattr(event, _attribute(f.name), None) for f in descriptor.fields}
    return _checked(event.KIND, event.PROPERTIES, values, send_pii=send_pii)


def properties_of_kind(
    kind: str, properties: Mapping[str, Any], *, send_pii: bool = True
) -> tuple[dict[str, Scalar], dict[str, Any]]:
    """Split string-form properties into checked catalog fields and extra (custom) ones."""
    message_class = SERVER_KINDS[kind]
    fields = message_class.DESCRIPTOR.fields_by_name
    known = {k: v for k, v in properties.items() if k in fields}
    extra = {k: v for k, v in properties.items() if k not in fields}
    return _checked(kind, message_class, known, send_pii=send_pii), extra


def _checked(
    kind: str, message_class: type[Message], values: Mapping[str, Any], *, send_pii: bool
) -> dict[str, Scalar]:
    fields = message_class.DESCRIPTOR.fields_by_name
    converted = {
        name: _convert(kind, fields[name], value)
        for name, value in values.items()
        if value is not None
    }
    message = message_class(**converted)
    import protovalidate  # on first use: it costs about 12 MB, and plain events never need it

    try:
        violations = protovalidate.collect_violations(message)
    except protovalidate.EvaluationError as exc:  # the catalog's rules are plain; be safe anyway
        raise CatalogError(kind, f"rules could not be evaluated: {exc}", "evaluation") from None
    if violations:
        first = violations[0]
        names = ", ".join(f"{field_path(v)}: {v.proto.rule_id}" for v in violations)
        where = field_path(first) or "(message)"
        raise CatalogError(kind, f"{where} {first.proto.message} ({names})", first.proto.rule_id)
    out: dict[str, Scalar] = {}
    for name, value in converted.items():
        field = fields[name]
        if not send_pii and _is_pii(field):
            continue
        if isinstance(value, duration_pb2.Duration):
            out[name] = format_duration(value.ToTimedelta())
        else:
            out[name] = value
    return out


def pii_fields(kind: str) -> frozenset[str]:
    """The fields of a server kind tagged as personal data (withheld when ``send_pii=False``)."""
    found = _pii_cache.get(kind)
    if found is None:
        fields = SERVER_KINDS[kind].DESCRIPTOR.fields
        found = _pii_cache[kind] = frozenset(f.name for f in fields if _is_pii(f))
    return found


_pii_cache: dict[str, frozenset[str]] = {}


def _is_pii(field: Any) -> bool:
    options = field.GetOptions()
    return bool(options.HasExtension(options_pb2.pii) and options.Extensions[options_pb2.pii])


def _convert(kind: str, field: Any, value: Any) -> Any:
    def refuse(expected: str) -> CatalogError:
        got = type(value).__name__
        return CatalogError(kind, f"{field.name} expects {expected}, got {got}", "type")

    if field.message_type is not None and field.message_type.full_name == _DURATION:
        return _duration(kind, field.name, value, refuse)
    if field.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise refuse("a string")
        return value
    if field.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise refuse("a bool")
        return value
    if field.type in _INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise refuse("an integer")
        low, high = _INT_RANGES[field.type]
        if not low <= value <= high:
            raise CatalogError(kind, f"{field.name} is outside [{low}, {high}]", "range")
        return int(value)
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise refuse("a number")
        number = float(value)
        if not math.isfinite(number):
            raise CatalogError(kind, f"{field.name} must be finite", "double.finite")
        return number
    raise refuse(f"a supported value for {field.full_name}")  # pragma: no cover


def _duration(kind: str, name: str, value: Any, refuse: Any) -> duration_pb2.Duration:
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        value = dt.timedelta(seconds=seconds) if math.isfinite(seconds) else value
    else:
        raise refuse("a timedelta or seconds")
    if not math.isfinite(seconds) or abs(seconds) > _MAX_DURATION_S:
        raise CatalogError(kind, f"{name} is not a representable duration", "duration")
    duration = duration_pb2.Duration()
    duration.FromTimedelta(value)
    return duration
