"""The hand-written checks agree with protovalidate on what we would actually send.

For random inputs (edge cases included) the fast check's verdict must equal protovalidate's
verdict on the ``BatchCreateRequest`` / ``IdentifyRequest`` our builders produce from them.
"""

from __future__ import annotations

import datetime as dt
import string
import uuid
from typing import Any

import protovalidate
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pug_grpc.gen.common.v1 import filters_pb2
from pug_grpc.gen.sdk.events.v1 import events_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

from pug_grpc._ingest.messages import build_event, timestamp_ns
from pug_grpc._ingest.validation import (
    event_problem,
    identify_problem,
    is_uuid,
    valid_kind,
    violations,
)
from pug_grpc._timestamps import MAX_TIMESTAMP_NS, MIN_TIMESTAMP_NS

GOOD_UUID = "0190a6c5-4f1e-7abc-8def-0123456789ab"
PARITY = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_KIND_CHARS = string.ascii_letters + string.digits + "_.-"
_tricky_text = st.sampled_from(
    ["", " ", "\n", "a\n", "\na", "a b", "é", "\x00", "\ud800", "a\ud800", "cookieless-",
     "cookieless-x", "Cookieless-x", " cookieless-x", "$", "ä" * 3, "-", ".", "_", "a-b.c_d",
     "\u0661", "\uff46\uff55\uff4c\uff4c", "a\tb", "a\r", "$ip", "anon-", "anon-x", "ANON-x"]
)  # fmt: skip


def _uuidish() -> st.SearchStrategy[Any]:
    hexes = st.text(alphabet="0123456789abcdefABCDEF", min_size=32, max_size=32)
    return st.one_of(
        st.just(GOOD_UUID),
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
        st.uuids().map(lambda u: "{" + str(u) + "}"),
        st.uuids().map(lambda u: str(u) + "\n"),
        st.uuids().map(lambda u: " " + str(u)),
        hexes.map(lambda h: f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"),
        hexes.map(lambda h: f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:31]}g"),
        st.text(min_size=36, max_size=36),
        _tricky_text,
    )


_text = st.one_of(_tricky_text, st.text(max_size=12), st.text(alphabet=_KIND_CHARS, max_size=8))
_kinds = st.one_of(
    st.text(alphabet=_KIND_CHARS, min_size=1, max_size=20),
    _text,
    st.text(alphabet=_KIND_CHARS, min_size=1, max_size=5).map(lambda k: k + "\n"),
)
_distinct = st.one_of(_text, st.text(min_size=1, max_size=30), st.integers().map(str))
_timestamps = st.one_of(
    st.integers(min_value=MIN_TIMESTAMP_NS, max_value=MAX_TIMESTAMP_NS),
    st.sampled_from([0, -1, 1, MIN_TIMESTAMP_NS, MAX_TIMESTAMP_NS, 999_999_999, -(10**9)]),
)
_scalar_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=1100),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
    st.decimals(allow_nan=True),
    st.uuids(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.floats(), max_size=3),
)
_properties = st.one_of(
    st.none(),
    st.dictionaries(st.one_of(_text, st.integers()), _scalar_values, max_size=6),
)


def _sent(raw: tuple[Any, ...]) -> events_pb2.BatchCreateRequest:
    return events_pb2.BatchCreateRequest(events=[build_event(raw, GOOD_UUID)])  # type: ignore[arg-type]


@PARITY
@given(
    distinct_id=_distinct,
    kind=_kinds,
    session_id=_uuidish(),
    event_id=st.one_of(st.none(), _uuidish()),
    occur_ns=_timestamps,
    properties=_properties,
)
@example(distinct_id="u", kind="k", session_id=GOOD_UUID, event_id="", occur_ns=0, properties=None)
@example(distinct_id=" ", kind="0", session_id=GOOD_UUID, event_id=None, occur_ns=0,
         properties={})  # fmt: skip
@example(
    distinct_id="cookieless-1", kind="k", session_id=GOOD_UUID, event_id=None, occur_ns=1,
    properties={"$ip": "1.2.3.4"},
)  # fmt: skip
@example(distinct_id="u", kind="abc\n", session_id=GOOD_UUID, event_id="", occur_ns=1,
         properties=None)  # fmt: skip
def test_fast_event_check_agrees_with_protovalidate(
    *,
    distinct_id: str,
    kind: str,
    session_id: str,
    event_id: str | None,
    occur_ns: int,
    properties: dict[Any, Any] | None,
) -> None:
    problem = event_problem(distinct_id, kind, session_id, event_id)
    raw = (event_id, kind, distinct_id, session_id, occur_ns, properties)
    try:
        request = _sent(raw)
    except (TypeError, ValueError):
        # Not even encodable (a lone surrogate): the fast check must have refused it.
        assert problem
        return
    found = violations(request)
    assert bool(problem) == bool(found), (problem, found)
    if not problem:
        event = request.events[0]
        assert "$ip" not in event.auto_properties
        assert "$ip" not in event.custom_properties


@PARITY
@given(
    external_id=st.one_of(_text, st.text(max_size=40)),
    anonymous_id=st.one_of(
        _text,
        st.text(max_size=300).map(lambda t: "anon-" + t),
        st.integers(min_value=250, max_value=260).map(lambda n: "anon-" + "x" * (n - 5)),
    ),
    device_id=st.one_of(_text, st.text(min_size=30, max_size=40)),
)
def test_fast_identify_check_agrees_with_protovalidate(
    external_id: str, anonymous_id: str, device_id: str
) -> None:
    problem = identify_problem(external_id, anonymous_id, device_id)
    request = profiles_pb2.IdentifyRequest()
    try:
        # Built as the client builds it: empty strings stay unset.
        if external_id:
            request.external_id = external_id
        if anonymous_id:
            request.anonymous_id = anonymous_id
        if device_id:
            request.device_id = device_id
    except (TypeError, ValueError):
        assert problem
        return
    assert bool(problem) == bool(violations(request)), (problem, violations(request))


@pytest.mark.parametrize(
    ("value", "ok"),
    [(GOOD_UUID, True), (GOOD_UUID.upper(), True), (str(uuid.UUID(int=0)), True),
     (uuid.uuid4().hex, False), (GOOD_UUID + "\n", False), (uuid.uuid4(), False), (None, False)],
)  # fmt: skip
def test_is_uuid(value: object, ok: bool) -> None:
    assert is_uuid(value) is ok


@pytest.mark.parametrize(
    ("kind", "ok"),
    [("page.view", True), ("A-b_c.9", True), ("", False), ("a b", False), ("a\n", False),
     ("é", False), (["k"], False), (None, False), ("\u0661", False)],
)  # fmt: skip
def test_valid_kind(kind: object, ok: bool) -> None:
    assert valid_kind(kind) is ok
    assert valid_kind(kind) is ok  # the cached answer agrees


def test_violations_names_the_field() -> None:
    request = events_pb2.BatchCreateRequest(
        events=[events_pb2.Event(event_id="nope", kind="k", distinct_id="d", session_id=GOOD_UUID)]
    )
    found = violations(request)
    assert any(v.startswith("events[0].event_id:") for v in found)
    assert any(v.startswith("events[0].occur_time:") for v in found)


def test_violations_survives_enum_name_cel_expressions() -> None:
    """protovalidate 2.1 raises EvaluationError on these rules; the wrapper must not crash."""
    message = filters_pb2.PropertyFilter(
        property="plan", operator=filters_pb2.FILTER_OPERATOR_LT, value="abc"
    )
    with pytest.raises(protovalidate.EvaluationError):
        protovalidate.collect_violations(message)  # the caveat is real...
    assert violations(message) == []  # ...and counts as passed here, not as a crash


def test_timestamp_range_edges() -> None:
    assert timestamp_ns(dt.datetime(1, 1, 1)) == MIN_TIMESTAMP_NS
    assert timestamp_ns(dt.datetime(9999, 12, 31, 23, 59, 59, 999999)) <= MAX_TIMESTAMP_NS
    for bad in (1.7e12 * 1000, float("nan"), float("inf"), -1e12, True, "2024-01-01", None):
        with pytest.raises(ValueError, match="timestamp"):
            timestamp_ns(bad)
    aware = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    with pytest.raises(ValueError, match="range"):
        timestamp_ns(aware)
