"""``GetFilterSchema`` and ``GetPropertyValues``, answered alike by activity and insights."""

from __future__ import annotations

from typing import Any

from pug_grpc.gen.common.v1 import filter_schema_pb2, filters_pb2
from pug_grpc.testing._call_context import current_call
from pug_grpc.testing._filters import profile_lookup
from pug_grpc.testing._rows import as_text
from pug_grpc.testing._store import Store
from pug_grpc.testing._wire_values import from_us

__all__ = ["filter_schema", "property_values"]

_VT = filter_schema_pb2.PropertyValueType
_CASE_TYPES = {
    "s": _VT.PROPERTY_VALUE_TYPE_STRING,
    "i": _VT.PROPERTY_VALUE_TYPE_INTEGER,
    "d": _VT.PROPERTY_VALUE_TYPE_FLOAT,
    "b": _VT.PROPERTY_VALUE_TYPE_BOOLEAN,
    "t": _VT.PROPERTY_VALUE_TYPE_DATETIME,
}
_MAX_VALUES = 1000


def _plain_type(value: Any) -> int:
    if isinstance(value, bool):
        return _VT.PROPERTY_VALUE_TYPE_BOOLEAN
    if isinstance(value, int):
        return _VT.PROPERTY_VALUE_TYPE_INTEGER
    if isinstance(value, float):
        return (
            _VT.PROPERTY_VALUE_TYPE_INTEGER if value.is_integer() else _VT.PROPERTY_VALUE_TYPE_FLOAT
        )
    if isinstance(value, str):
        return _VT.PROPERTY_VALUE_TYPE_STRING
    return _VT.PROPERTY_VALUE_TYPE_OTHER


def filter_schema(
    store: Store, request: filter_schema_pb2.GetFilterSchemaRequest
) -> filter_schema_pb2.GetFilterSchemaResponse:
    """Event kinds, event property keys and profile property keys, with counts and types."""
    project = current_call().caller.project_id
    allowed = set(request.allowed_types)
    reply = filter_schema_pb2.GetFilterSchemaResponse()
    for kind, count, last in store.event_kinds(project, request.event_kind):
        reply.events.add(name=kind, count=count, last_seen_at=from_us(last))
    for column, target in (
        ("auto_props", reply.auto_property_keys),
        ("custom_props", reply.custom_property_keys),
    ):
        for key, case, count, last in store.property_keys(project, column, request.event_kind):
            value_type = _CASE_TYPES.get(case, _VT.PROPERTY_VALUE_TYPE_OTHER)
            if not allowed or value_type in allowed:
                target.add(name=key, count=count, last_seen_at=from_us(last), value_type=value_type)
    profile_keys: dict[str, list[Any]] = {}
    for row in store.profiles(project):
        for key, value in row.properties.items():
            entry = profile_keys.setdefault(key, [0, 0, _plain_type(value)])
            entry[0] += 1
            entry[1] = max(entry[1], row.update_us)
    for key, (count, last, plain_type) in sorted(profile_keys.items()):
        if not allowed or plain_type in allowed:
            reply.profile_property_keys.add(
                name=key, count=count, last_seen_at=from_us(last), value_type=plain_type
            )
    return reply


def property_values(store: Store, request: Any) -> list[str]:
    """The most frequent values of one property (auto, custom or profile), as text."""
    project = current_call().caller.project_id
    source = request.source
    if source == filter_schema_pb2.PROPERTY_SOURCE_UNSPECIFIED:
        source = (
            filter_schema_pb2.PROPERTY_SOURCE_AUTO
            if request.property_key.startswith("$")
            else filter_schema_pb2.PROPERTY_SOURCE_CUSTOM
        )
    if source == filter_schema_pb2.PROPERTY_SOURCE_PROFILE:
        counts: dict[str, int] = {}
        wanted = filters_pb2.PropertyFilter(property=request.property_key)
        for row in store.profiles(project):
            value = profile_lookup(row.properties)(wanted)
            if value is not None:
                text = as_text(value)
                counts[text] = counts.get(text, 0) + 1
        return sorted(counts, key=lambda v: (-counts[v], v))[:_MAX_VALUES]
    column = "auto_props" if source == filter_schema_pb2.PROPERTY_SOURCE_AUTO else "custom_props"
    return store.property_values(project, column, request.property_key, request.event_kind)
