"""Conversions between wire messages and stored rows, and the server-side event enrichment."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from pug_grpc.gen.common.v1 import property_value_pb2
from pug_grpc.gen.sdk.events.v1 import events_pb2
from pug_grpc.testing._store import EventRow, TypedValue

__all__ = [
    "event_row",
    "from_us",
    "struct_from",
    "struct_to_dict",
    "to_us",
    "typed_value",
]

_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def to_us(ts: timestamp_pb2.Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1_000


def from_us(us: int) -> timestamp_pb2.Timestamp:
    seconds, micros = divmod(us, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1_000)


def _rfc3339(ts: timestamp_pb2.Timestamp) -> str:
    return str(ts.ToJsonString())


def typed_value(value: property_value_pb2.PropertyValue) -> TypedValue:
    case = value.WhichOneof("value")
    if case == "string_value":
        return ("s", value.string_value)
    if case == "int_value":
        return ("i", value.int_value)
    if case == "double_value":
        return ("d", value.double_value)
    if case == "bool_value":
        return ("b", value.bool_value)
    return ("t", _rfc3339(value.timestamp_value))


def plain(value: TypedValue) -> Any:
    """The JSON-compatible form used in ``google.protobuf.Struct`` replies."""
    case, raw = value
    if case == "i":
        return float(raw)
    return raw


def struct_from(values: Mapping[str, Any], *, typed: bool = False) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    if typed:
        result.update({k: plain(v) for k, v in values.items()})
    else:
        result.update(values)
    return result


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    converted = json_format.MessageToDict(value)
    return converted if isinstance(converted, dict) else {}


def _attribution(auto: dict[str, TypedValue]) -> None:
    url = auto.get("$url")
    if url is not None and url[0] == "s":
        parts = urlsplit(str(url[1]))
        if parts.hostname:
            auto.setdefault("$hostname", ("s", parts.hostname))
        auto.setdefault("$pathname", ("s", parts.path or "/"))
        query = parse_qs(parts.query)
        for name in _UTM:
            if query.get(name):
                auto.setdefault("$" + name, ("s", query[name][0]))
    referrer = auto.get("$referrer")
    referring_host = ""
    if referrer is not None and referrer[0] == "s" and referrer[1]:
        referring_host = urlsplit(str(referrer[1])).hostname or ""
        if referring_host:
            auto.setdefault("$referring_domain", ("s", referring_host))
    if url is not None or referrer is not None:
        medium = str(auto.get("$utm_medium", ("s", ""))[1]).lower()
        if medium in ("cpc", "ppc", "paid", "paidsearch"):
            channel = "paid"
        elif medium == "email":
            channel = "email"
        elif referring_host and referring_host != auto.get("$hostname", ("s", ""))[1]:
            channel = "referral"
        else:
            channel = "direct"
        auto.setdefault("$channel", ("s", channel))


def event_row(
    event: events_pb2.Event, *, received_us: int, metadata: Mapping[str, str]
) -> EventRow:
    """Store form of an accepted event: ``$ip`` stripped, user agent and attribution filled."""
    auto = {k: typed_value(v) for k, v in event.auto_properties.items() if k != "$ip"}
    user_agent = metadata.get("user-agent", "")
    if user_agent:
        auto.setdefault("$user_agent", ("s", user_agent))
    _attribution(auto)
    distinct_id = event.distinct_id
    if event.cookieless:
        # The real server derives a daily visitor id from a salted hash; a stable stand-in.
        day = dt.datetime.fromtimestamp(event.occur_time.seconds, dt.UTC).date().isoformat()
        digest = hashlib.sha256(f"{day}|{user_agent}".encode()).hexdigest()[:16]
        distinct_id = "cookieless-" + digest
    return EventRow(
        event_id=event.event_id,
        kind=event.kind,
        distinct_id=distinct_id,
        session_id=event.session_id,
        occur_us=to_us(event.occur_time),
        auto_props=auto,
        custom_props={k: typed_value(v) for k, v in event.custom_properties.items()},
        received_us=received_us,
    )
