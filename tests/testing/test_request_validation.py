"""The local server refuses exactly what protovalidate refuses (property-based), and no more."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import hypothesis.strategies as st
import protovalidate
import pytest
from hypothesis import HealthCheck, given, settings
from pug_grpc.gen.common.v1 import filters_pb2
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2_grpc as sdk_profiles_pb2_grpc

from pug_grpc.testing import LocalServer, local_server
from pug_grpc.testing._request_validation import RequestValidator, rewrite_enum_names
from tests.support.server import details, key_md

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with local_server(record=False) as running:
        yield running


@pytest.fixture(scope="module")
def channel(server: LocalServer) -> Iterator[grpc.Channel]:
    with server.channel() as opened:
        yield opened


REPEATED_UUID = str(uuid.uuid4())
"""Drawn more than once, in either case, it makes a batch repeat an event_id."""
_ids = st.one_of(
    st.just(""),
    st.uuids().map(str),
    st.text(max_size=40),
    st.sampled_from(
        ["cookieless-1", "anon-1", "user 1", "ÿ", REPEATED_UUID.upper(), REPEATED_UUID]
    ),
)
_keys = st.one_of(st.text(max_size=8), st.sampled_from(["$lib", "$", "plan", "$ip", "a.b"]))
_values = st.one_of(
    st.text(max_size=1030).map(lambda s: ("string_value", s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: ("int_value", i)),
    st.floats().map(lambda f: ("double_value", f)),
    st.booleans().map(lambda b: ("bool_value", b)),
    st.just(("unset", None)),
)


@st.composite
def _events(draw: st.DrawFn) -> events_pb2.Event:
    built = events_pb2.Event()
    for name in ("event_id", "distinct_id", "session_id"):
        value = draw(st.none() | _ids)
        if value is not None:
            setattr(built, name, value)
    kind = draw(st.none() | st.sampled_from(["page_view", "a.b-c_d", "", "bad kind", "é"]))
    if kind is not None:
        built.kind = kind
    if draw(st.booleans()):
        built.occur_time.seconds = draw(st.integers(0, 253402300799))
    if draw(st.booleans()):
        built.cookieless = draw(st.booleans())
    for target in (built.auto_properties, built.custom_properties):
        for key, (case, value) in draw(st.dictionaries(_keys, _values, max_size=3)).items():
            if case == "unset":
                target[key].Clear()
            else:
                setattr(target[key], case, value)
    return built


def _names_only(violation: protovalidate.Violation) -> str:
    path = violation.proto.field
    return "" if path is None else ".".join(e.field_name for e in path.elements)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=st.lists(_events(), min_size=0, max_size=3))
def test_batch_verdict_equals_protovalidate(
    server: LocalServer, channel: grpc.Channel, events: list[events_pb2.Event]
) -> None:
    request = events_pb2.BatchCreateRequest(events=events)
    expected = protovalidate.collect_violations(request)
    ids = [e.event_id.lower() for e in events]
    repeated = len(set(ids)) < len(ids)
    stub = events_pb2_grpc.EventsServiceStub(channel)
    try:
        reply = stub.BatchCreate(request, metadata=key_md(server), timeout=10)
    except grpc.RpcError as error:
        found = details(error)
        assert (found.code, found.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_EVENT_BATCH",
        ), found.message
        if expected:
            # Field paths are names only, as Pug sends them; indexes are in the message.
            paths = [_names_only(v) for v in expected]
            assert sorted(field for field, _ in found.violations) == sorted(paths)
        else:
            assert repeated, found.message
            assert "duplicate event_id" in found.message
            assert found.violations == []
    else:
        assert not expected, [v.proto.rule_id for v in expected]
        assert not repeated
        assert reply.accepted + reply.dropped == len(events)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    external_id=_ids,
    anonymous_id=st.none() | st.sampled_from(["", "anon-", "anon-x" * 60, "visitor"]),
    device_id=st.none() | st.text(max_size=40),
)
def test_identify_verdict_equals_protovalidate(
    server: LocalServer,
    channel: grpc.Channel,
    external_id: str,
    anonymous_id: str | None,
    device_id: str | None,
) -> None:
    request = sdk_profiles_pb2.IdentifyRequest(external_id=external_id)
    if anonymous_id is not None:
        request.anonymous_id = anonymous_id
    if device_id is not None:
        request.device_id = device_id
    expected = bool(protovalidate.collect_violations(request)) or not external_id
    stub = sdk_profiles_pb2_grpc.ProfilesSDKServiceStub(channel)
    if expected:
        with pytest.raises(grpc.RpcError) as caught:
            stub.Identify(request, metadata=key_md(server), timeout=10)
        assert details(caught.value).code == grpc.StatusCode.INVALID_ARGUMENT
    else:
        stub.Identify(request, metadata=key_md(server), timeout=10)


def test_enum_names_are_rewritten_to_numbers() -> None:
    from google.protobuf import descriptor_pool

    expression = (
        "this.operator == common.v1.FilterOperator.FILTER_OPERATOR_IN"
        " || this.kind == shared.insights.v1.UserFlowQuery.NodeKind.NODE_KIND_PROPERTY"
        " || this.x == common.v1.FilterOperator.NO_SUCH_VALUE || e.kind != ''"
    )
    assert filters_pb2.FILTER_OPERATOR_IN == 11
    assert rewrite_enum_names(expression, descriptor_pool.Default()) == (
        "this.operator == 11 || this.kind == 2"
        " || this.x == common.v1.FilterOperator.NO_SUCH_VALUE || e.kind != ''"
    )


def test_unevaluable_rules_count_as_not_validated(caplog: pytest.LogCaptureFixture) -> None:
    validator = RequestValidator()
    odd = filters_pb2.PropertyFilter(
        property="amount", operator=filters_pb2.FILTER_OPERATOR_GT, value="not-a-number"
    )
    with pytest.raises(protovalidate.EvaluationError):
        protovalidate.collect_violations(odd)
    with caplog.at_level("DEBUG", logger="pug_grpc.testing"):
        assert validator.violations(odd) == []
    assert "treated as not validated" in caplog.text
    missing_values = filters_pb2.PropertyFilter(
        property="amount", operator=filters_pb2.FILTER_OPERATOR_IN
    )
    assert [v.reason for v in validator.violations(missing_values)] == [
        "property_filter.values_required"
    ]
