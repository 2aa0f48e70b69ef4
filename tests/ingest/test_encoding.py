"""The hand-written event encoding (``_wire``) parses back to exactly what ``build_event`` builds.

The worker sends events encoded by :class:`EventEncoder`; :func:`build_event` (the protobuf API)
remains the reference for what an event must contain, so every input here is encoded both ways
and compared after parsing with the protobuf runtime.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]
from hypothesis import given, settings
from hypothesis import strategies as st
from pug_grpc.gen.common.v1 import property_value_pb2
from pug_grpc.gen.sdk.events.v1 import events_pb2

from pug_grpc._ingest.encoding import EventEncoder, property_value, varint
from pug_grpc._ingest.messages import AUTO_PROPERTIES, RawEvent, build_event, uuid7_batch
from pug_grpc._ingest.properties import INT64_MAX, INT64_MIN, MAX_STRING_LEN

SESSION = "0190a6c5-4f1e-7abc-8def-0123456789ab"
EVENT_ID = "0190a6c5-4f1e-7abc-8def-ba9876543210"
FIELD = {str: "string_value", int: "int_value", float: "double_value", bool: "bool_value"}
UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class Plan(enum.Enum):
    PRO = "pro"


def parsed(encoder: EventEncoder, raw: RawEvent) -> events_pb2.Event:
    """What the server would see: the framed event, parsed as a one-event request."""
    request = events_pb2.BatchCreateRequest.FromString(encoder.encode(raw, EVENT_ID))
    assert len(request.events) == 1
    return request.events[0]


def assert_same(raw: RawEvent, encoder: EventEncoder | None = None) -> events_pb2.Event:
    encoder = encoder or EventEncoder(AUTO_PROPERTIES)
    got = parsed(encoder, raw)
    want = build_event(raw, EVENT_ID)
    assert got == want
    return got


texts = st.text(max_size=40) | st.text(alphabet="abc$é", max_size=8) | st.sampled_from(["", "x"])
values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
    | st.text(min_size=MAX_STRING_LEN - 2, max_size=MAX_STRING_LEN + 3)
    | st.datetimes(timezones=st.just(dt.UTC) | st.none())
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.uuids()
    | st.just(Plan.PRO)
    | st.lists(st.integers(), max_size=3)
    | st.just(b"bytes")
)
keys = texts | st.integers(min_value=0, max_value=3) | st.just("$lib") | st.just("é")
properties = st.dictionaries(keys, values, max_size=8)
instants = st.integers(min_value=-62_135_596_800 * 10**9, max_value=253_402_300_799 * 10**9)


@settings(max_examples=400, deadline=None)
@given(
    props=properties,
    kind=st.from_regex(r"[a-zA-Z0-9_.\-]{1,20}", fullmatch=True),
    distinct_id=st.text(min_size=1, max_size=20).filter(lambda s: s.isascii() or s.isprintable()),
    occur_ns=instants,
    given_id=st.sampled_from([None, "", "11111111-2222-4333-8444-555555555555"]),
)
def test_encoded_events_parse_back_to_what_the_protobuf_api_builds(
    props: dict[Any, Any], kind: str, distinct_id: str, occur_ns: int, given_id: str | None
) -> None:
    try:
        distinct_id.encode()
    except UnicodeEncodeError:
        return  # refused at call time: never queued
    assert_same((given_id, kind, distinct_id, SESSION, occur_ns, props))


@settings(max_examples=200, deadline=None)
@given(st.lists(properties, min_size=2, max_size=6))
def test_remembered_entries_never_leak_between_types_or_events(many: list[dict[Any, Any]]) -> None:
    encoder = EventEncoder(AUTO_PROPERTIES)  # one encoder: its caches carry over between events
    for props in many:
        assert_same((None, "k", "user-1", SESSION, 1_700_000_000_123_456_789, props), encoder)


def test_equal_values_of_different_types_keep_their_own_case() -> None:
    encoder = EventEncoder(AUTO_PROPERTIES)
    values: list[Any] = [1, True, 1.0, "1", 0, False, -0.0]
    for props in [
        {"v": v} for v in values
    ] * 2:  # the second round is served from the encoder's caches
        got = assert_same((None, "k", "user-1", SESSION, 5, props), encoder)
        assert got.custom_properties["v"].WhichOneof("value") == FIELD[type(props["v"])]
    negative_zero = parsed(encoder, (None, "k", "u", SESSION, 5, {"v": -0.0}))
    assert math.copysign(1, negative_zero.custom_properties["v"].double_value) == -1


@pytest.mark.parametrize(
    "occur_ns",
    [0, 1, 10**9, 10**9 + 1, -1, -(10**9), -(10**9) - 1, 1_700_000_000 * 10**9, 2**62],
)
def test_timestamps_at_the_edges(occur_ns: int) -> None:
    assert_same((None, "k", "user-1", SESSION, occur_ns, {"at": dt.datetime(1969, 12, 31)}))


def test_every_case_of_property_value() -> None:
    for value in ("", "text", "é", 0, -1, INT64_MIN, INT64_MAX, 0.0, -2.5, True, False):
        got = property_value_pb2.PropertyValue.FromString(property_value(value))
        assert got.WhichOneof("value") == FIELD[type(value)]
        assert getattr(got, FIELD[type(value)]) == value


def test_varint_matches_the_protobuf_runtime() -> None:
    samples = [*range(300), 2**14 - 1, 2**14, 2**21, 2**28 - 1, 2**28, 2**35 - 1, 2**35]
    samples += [2**k - 1 for k in range(36, 65)] + [2**63, 2**64 - 1, (-1) & (2**64 - 1)]
    for value in samples:
        assert varint(value) == _VarintBytes(value), value


def test_events_with_odd_values_take_the_full_rules() -> None:
    props = {"plan": "pro", "when": dt.date(2024, 1, 2), "price": Decimal("9.50"), 3: "x"}
    got = assert_same((None, "k", "user-1", SESSION, 5, props))
    assert set(got.custom_properties) == {"plan", "when", "price"}


def test_batch_ids_are_uuid7_unique_and_time_ordered_by_millisecond() -> None:
    ids = uuid7_batch(2000, now_ns=1_700_000_000_123_456_789)
    assert len(set(ids)) == 2000
    for text in ids:
        assert UUID7.fullmatch(text)
        parsed_id = uuid.UUID(text)
        assert parsed_id.version == 7
        assert parsed_id.int >> 80 == 1_700_000_000_123  # the shared millisecond prefix
    later = uuid7_batch(1, now_ns=1_700_000_000_124_000_000)[0]
    assert later > max(ids)
