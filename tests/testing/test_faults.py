"""Fault injection: failures, push-back, latency, outages, partial drops and lost replies.

Each knob is exercised through real loopback calls with the generated stubs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2_grpc as sdk_profiles_pb2_grpc

from pug_grpc.testing import LocalServer
from tests.support.clock import FakeClock
from tests.support.server import details, event, key_md

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def stub(pug_server: LocalServer) -> Iterator[events_pb2_grpc.EventsServiceStub]:
    with pug_server.channel() as channel:
        yield events_pb2_grpc.EventsServiceStub(channel)


def _send(
    stub: events_pb2_grpc.EventsServiceStub, server: LocalServer, n: int = 1
) -> events_pb2.BatchCreateResponse:
    request = events_pb2.BatchCreateRequest(events=[event() for _ in range(n)])
    return stub.BatchCreate(request, metadata=key_md(server), timeout=10)


def test_fail_next_n_calls_with_code_and_pushback(
    pug_server: LocalServer,
    stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    pug_server.faults.fail_next(
        "BatchCreate", times=2, code=grpc.StatusCode.RESOURCE_EXHAUSTED, pushback_ms=250
    )
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as caught:
            _send(stub, pug_server)
        found = details(caught.value)
        assert (found.code, found.reason) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "RESOURCE_EXHAUSTED",
        )
        assert found.trailers["grpc-retry-pushback-ms"] == "250"
        assert found.request_id
    assert _send(stub, pug_server).accepted == 1
    assert [c.code for c in pug_server.calls] == [
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.OK,
    ]
    assert len(pug_server.events) == 1


def test_failures_target_only_their_method(
    pug_server: LocalServer,
    stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    pug_server.faults.fail_next("ProfilesSDKService.Identify", code=grpc.StatusCode.INTERNAL)
    assert _send(stub, pug_server).accepted == 1
    with pug_server.channel() as channel:
        identify = sdk_profiles_pb2_grpc.ProfilesSDKServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            identify.Identify(
                sdk_profiles_pb2.IdentifyRequest(external_id="u"), metadata=key_md(pug_server)
            )
        assert caught.value.code() == grpc.StatusCode.INTERNAL


def test_unknown_or_ambiguous_method_names_are_refused(pug_server: LocalServer) -> None:
    with pytest.raises(ValueError, match="not served"):
        pug_server.faults.fail_next("BatchCreat")
    with pytest.raises(ValueError, match="ambiguous"):
        pug_server.faults.fail_next("GetFilterSchema")
    pug_server.faults.fail_next("/shared.activity.v1.ActivityService/GetFilterSchema")


def test_latency_delays_calls(
    pug_server: LocalServer,
    stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    pug_server.faults.set_latency(0.3)
    started = time.monotonic()
    _send(stub, pug_server)
    assert time.monotonic() - started >= 0.3
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchCreate(
            events_pb2.BatchCreateRequest(events=[event()]),
            metadata=key_md(pug_server),
            timeout=0.1,
        )
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    pug_server.faults.set_latency(0)
    assert pug_server.faults.latency_for("/sdk.events.v1.EventsService/BatchCreate") == 0
    assert _send(stub, pug_server).accepted == 1


def test_outage_window_answers_unavailable() -> None:
    monotonic = FakeClock()
    with LocalServer(monotonic=monotonic) as server, server.channel() as channel:
        stub = events_pb2_grpc.EventsServiceStub(channel)
        server.faults.outage(30)
        with pytest.raises(grpc.RpcError) as caught:
            _send(stub, server)
        assert details(caught.value).code == grpc.StatusCode.UNAVAILABLE
        monotonic.advance(30)
        assert _send(stub, server).accepted == 1
        server.faults.outage()
        monotonic.advance(3600)
        with pytest.raises(grpc.RpcError):
            _send(stub, server)
        server.faults.end_outage()
        assert _send(stub, server).accepted == 1


def test_transient_authentication_faults_speak_as_pug(
    pug_server: LocalServer,
    stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    pug_server.faults.fail_next("BatchCreate", code=grpc.StatusCode.UNAUTHENTICATED)
    pug_server.faults.fail_next(
        "BatchCreate",
        code=grpc.StatusCode.UNAUTHENTICATED,
        message="failed to verify project access",
    )
    messages = []
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as caught:
            _send(stub, pug_server)
        found = details(caught.value)
        assert (found.code, found.reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
        messages.append(found.message)
    assert messages == ["failed to validate API key", "failed to verify project access"]
    assert _send(stub, pug_server).accepted == 1  # the key was fine all along


def test_injected_failures_take_a_reason(
    pug_server: LocalServer,
    stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    pug_server.faults.fail_next(
        code=grpc.StatusCode.INTERNAL, message="failed to accept events", reason="NATS_DOWN"
    )
    with pytest.raises(grpc.RpcError) as caught:
        _send(stub, pug_server)
    found = details(caught.value)
    assert (found.code, found.message, found.reason) == (
        grpc.StatusCode.INTERNAL,
        "failed to accept events",
        "NATS_DOWN",
    )


def test_partial_drops_are_reported_with_their_reason(
    pug_server: LocalServer,
    stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    pug_server.faults.drop_events(7, reason="salt_unavailable")
    first = _send(stub, pug_server, 5)
    assert (first.accepted, first.dropped, dict(first.dropped_by_reason)) == (
        0,
        5,
        {"salt_unavailable": 5},
    )
    second = _send(stub, pug_server, 5)
    assert (second.accepted, second.dropped, dict(second.dropped_by_reason)) == (
        3,
        2,
        {"salt_unavailable": 2},
    )
    assert pug_server.stored_event_count() == 3


def test_accept_then_fail_reply_stores_the_batch(
    pug_server: LocalServer,
    stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    pug_server.faults.fail_after_accept()
    request = events_pb2.BatchCreateRequest(events=[event(), event()])
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchCreate(request, metadata=key_md(pug_server), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert pug_server.stored_row_count() == 2
    assert (
        stub.BatchCreate(request, metadata=key_md(pug_server), timeout=10).accepted == 2
    )  # the retry
    ids = [e.event_id for e in pug_server.events]
    assert len(ids) == 4
    assert len(set(ids)) == 2
    assert pug_server.stored_row_count() == 4  # the redelivery is stored again, as in Pug
    assert pug_server.stored_event_count() == 2  # until the merge folds it


def test_clear_and_reset(
    pug_server: LocalServer,
    stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    _send(stub, pug_server)
    pug_server.faults.fail_next(times=5)
    pug_server.faults.outage()
    pug_server.reset()
    assert pug_server.events == []
    assert pug_server.calls == []
    assert _send(stub, pug_server).accepted == 1
    assert pug_server.stored_event_count() == 2
