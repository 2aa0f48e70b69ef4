"""Every Python value type maps to the documented ``PropertyValue`` case (or is dropped)."""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from fractions import Fraction
from pathlib import PurePosixPath
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from pug_grpc.gen.common.v1 import property_value_pb2
from pug_grpc.gen.sdk.events.v1 import events_pb2

from pug_grpc._ingest.messages import AUTO_PROPERTIES, build_event
from pug_grpc._ingest.properties import Instant, format_duration, normalize_properties, to_struct
from pug_grpc._ingest.validation import violations
from pug_grpc._version import __version__

GOOD_UUID = "0190a6c5-4f1e-7abc-8def-0123456789ab"
UTC = dt.UTC


class Color(enum.Enum):
    RED = "red"
    BLUE = 2
    ODD = (1, 2)


class Size(enum.IntEnum):
    LARGE = 3


def _event(props: dict[Any, Any]) -> events_pb2.Event:
    return build_event((None, "k", "d", GOOD_UUID, 0, props), GOOD_UUID)


def _value(value: Any) -> property_value_pb2.PropertyValue | None:
    return _event({"p": value}).custom_properties.get("p")


def _case(value: Any) -> tuple[str | None, Any]:
    pv = _value(value)
    if pv is None:
        return (None, None)
    which = pv.WhichOneof("value")
    got = getattr(pv, which) if which else None
    if which == "timestamp_value":
        got = got.seconds * 10**9 + got.nanos
    return (which, got)


NAIVE = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)
NAIVE_NS = int(NAIVE.replace(tzinfo=UTC).timestamp()) * 10**9 + 123456000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", ("string_value", "text")),
        (True, ("bool_value", True)),  # bool before int
        (False, ("bool_value", False)),
        (0, ("int_value", 0)),
        (2**63 - 1, ("int_value", 2**63 - 1)),
        (-(2**63), ("int_value", -(2**63))),
        (2**63, ("string_value", str(2**63))),  # outside int64: string
        (-(2**63) - 1, ("string_value", str(-(2**63) - 1))),
        (1.5, ("double_value", 1.5)),
        (-0.0, ("double_value", -0.0)),
        (float("nan"), (None, None)),  # dropped
        (float("inf"), (None, None)),
        (float("-inf"), (None, None)),
        (None, (None, None)),  # omitted
        (NAIVE, ("timestamp_value", NAIVE_NS)),  # naive means UTC
        (NAIVE.replace(tzinfo=dt.timezone(dt.timedelta(hours=2))),
         ("timestamp_value", NAIVE_NS - 2 * 3600 * 10**9)),
        (dt.date(2024, 5, 6), ("timestamp_value", 1714953600 * 10**9)),
        (dt.time(7, 8, 9), ("string_value", "07:08:09")),
        (dt.timedelta(seconds=1, milliseconds=500), ("string_value", "1.5s")),
        (Decimal("42"), ("int_value", 42)),
        (Decimal("19.99"), ("double_value", 19.99)),
        (Decimal("NaN"), (None, None)),
        (Decimal("Infinity"), (None, None)),
        (Decimal(2**70), ("double_value", float(2**70))),
        (Fraction(1, 4), ("double_value", 0.25)),
        (uuid.UUID(GOOD_UUID), ("string_value", GOOD_UUID)),
        (Color.RED, ("string_value", "red")),
        (Color.BLUE, ("int_value", 2)),
        (Color.ODD, ("string_value", "ODD")),
        (Size.LARGE, ("int_value", 3)),
        (PurePosixPath("/a/b"), ("string_value", "/a/b")),
        ([1, "a", None], ("string_value", '[1,"a",null]')),
        ((1, 2), ("string_value", "[1,2]")),
        ({"b": 1, "a": [True]}, ("string_value", '{"b":1,"a":[true]}')),
        ({3, 1, 2}, ("string_value", "[1,2,3]")),
        ({"when": NAIVE, "id": uuid.UUID(GOOD_UUID)},
         ("string_value", json.dumps({"when": NAIVE.isoformat(), "id": GOOD_UUID},
                                     separators=(",", ":")))),
        ([float("nan")], (None, None)),  # not JSON
        ([object()], (None, None)),
        (b"bytes", (None, None)),  # not a well-defined scalar
        (object(), (None, None)),
        ("a\ud800", (None, None)),  # not valid text
    ],
)  # fmt: skip
def test_value_mapping(value: Any, expected: tuple[str | None, Any]) -> None:
    assert _case(value) == expected


def test_strings_are_truncated_to_1024_code_points(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="pug_grpc"):
        assert _case("é" * 1025) == ("string_value", "é" * 1024)
        assert _case("😀" * 1024) == ("string_value", "😀" * 1024)
        long_json = _case(["x" * 2000])
    assert long_json[0] == "string_value"
    assert len(long_json[1]) == 1024
    assert "truncated" in caplog.text


def test_bad_keys_are_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="pug_grpc"):
        event = _event({"ok": 1, "$ip": "1.2.3.4", "$lib": "x", 7: "seven", None: 1, "": 2})
    assert dict(event.custom_properties).keys() == {"ok", ""}
    assert "$ip" not in event.auto_properties
    assert "reserved" in caplog.text
    assert "not a string" in caplog.text
    assert "1.2.3.4" not in caplog.text  # values are never logged


def test_auto_properties() -> None:
    event = _event({})
    auto = {k: v.string_value for k, v in event.auto_properties.items()}
    assert auto == {"$lib": "pug-grpc", "$sdkVersion": __version__, "$platform": "server"}
    assert auto == dict(AUTO_PROPERTIES)
    assert "$ip" not in auto


def test_format_duration() -> None:
    assert format_duration(dt.timedelta(seconds=3)) == "3s"
    assert format_duration(dt.timedelta(microseconds=1)) == "0.000001s"
    assert format_duration(dt.timedelta(seconds=-1.5)) == "-1.5s"
    assert format_duration(dt.timedelta(days=1)) == "86400s"


def test_instant_is_a_timestamp() -> None:
    assert normalize_properties({"t": dt.datetime(1970, 1, 1, 0, 0, 1)}) == {"t": Instant(10**9)}


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.one_of(st.text(max_size=5), st.integers()),
        st.recursive(
            st.one_of(
                st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=1500),
                st.datetimes(), st.dates(), st.times(), st.timedeltas(), st.decimals(),
                st.uuids(), st.fractions(), st.binary(max_size=3),
            ),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
            max_leaves=6,
        ),
        max_size=8,
    )
)  # fmt: skip
def test_any_properties_build_a_valid_event(props: dict[Any, Any]) -> None:
    """Whatever the caller passes, the event we build passes protovalidate (never raises)."""
    request = events_pb2.BatchCreateRequest(events=[_event(props)])
    assert violations(request) == []


def test_traits_become_a_struct() -> None:
    traits = {
        "plan": "pro",
        "seats": 3,
        "ratio": 0.5,
        "active": True,
        "none": None,
        "since": dt.datetime(2024, 1, 2, 3, 4, 5),
        "day": dt.date(2024, 1, 2),
        "price": Decimal("9.5"),
        "id": uuid.UUID(GOOD_UUID),
        "color": Color.RED,
        "tags": ("a", "b"),
        "nested": {"x": [1, {"y": 2}]},
        "big": 2**60,
        "nan": float("nan"),
        "blob": b"x",
        5: "non-string key",
    }
    got = json_format.MessageToDict(to_struct(traits))
    assert got == {
        "plan": "pro",
        "seats": 3.0,
        "ratio": 0.5,
        "active": True,
        "none": None,
        "since": "2024-01-02T03:04:05Z",
        "day": "2024-01-02",
        "price": 9.5,
        "id": GOOD_UUID,
        "color": "red",
        "tags": ["a", "b"],
        "nested": {"x": [1.0, {"y": 2.0}]},
        "big": str(2**60),
    }
