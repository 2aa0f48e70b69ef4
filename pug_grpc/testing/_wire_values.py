"""Conversions between wire values (timestamps, property values, Structs) and stored ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from pug_grpc.gen.common.v1 import property_value_pb2
from pug_grpc.testing._rows import TypedValue, as_text

__all__ = [
    "device_and_place",
    "first_text",
    "from_us",
    "plain",
    "struct_from",
    "struct_to_dict",
    "to_us",
    "typed_value",
]


def to_us(ts: timestamp_pb2.Timestamp) -> int:
    """A timestamp as integer microseconds since the epoch."""
    return ts.seconds * 1_000_000 + ts.nanos // 1_000


def from_us(us: int) -> timestamp_pb2.Timestamp:
    """The inverse of :func:`to_us`."""
    seconds, micros = divmod(us, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1_000)


def typed_value(value: property_value_pb2.PropertyValue) -> TypedValue:
    """A wire property value with its case kept (an unset value reads as a timestamp of 0)."""
    case = value.WhichOneof("value")
    if case == "string_value":
        return ("s", value.string_value)
    if case == "int_value":
        return ("i", value.int_value)
    if case == "double_value":
        return ("d", value.double_value)
    if case == "bool_value":
        return ("b", value.bool_value)
    return ("t", str(value.timestamp_value.ToJsonString()))


def plain(value: TypedValue) -> Any:
    """The JSON-compatible form used in ``google.protobuf.Struct`` replies."""
    case, raw = value
    if case == "i":
        return float(raw)
    return raw


def struct_from(values: Mapping[str, Any], *, typed: bool = False) -> struct_pb2.Struct:
    """A Struct of plain values, or of typed values when ``typed``."""
    result = struct_pb2.Struct()
    if typed:
        result.update({k: plain(v) for k, v in values.items()})
    else:
        result.update(values)
    return result


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a plain dict."""
    converted = json_format.MessageToDict(value)
    return converted if isinstance(converted, dict) else {}


def first_text(props: Mapping[str, TypedValue], *names: str) -> str:
    """The text of the first of ``names`` present in ``props``, or ``""``."""
    for name in names:
        value = props.get(name)
        if value is not None:
            return as_text(value)
    return ""


def device_and_place(auto: Mapping[str, TypedValue]) -> dict[str, str]:
    """The browser, OS, device and place fields of activity summaries, from the latest event."""
    return {
        "browser": first_text(auto, "$browser"),
        "browser_version": first_text(auto, "$browserVersion"),
        "os": first_text(auto, "$os"),
        "os_version": first_text(auto, "$osVersion"),
        "device": first_text(auto, "$device"),
        "country": first_text(auto, "$country"),
        "city": first_text(auto, "$city"),
    }
