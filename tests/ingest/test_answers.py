"""What each kind of answer does to a request: ids, retries, dead letters, drops, identifies.

Driven by hand (fake clock, manual sink): every answer is one the real server or grpcio gives.
"""

from __future__ import annotations

import re

import grpc
import pytest
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

from pug_grpc import PugDeliveryError, PugError
from pug_grpc._ingest.sink import Reply
from pug_grpc._retry import TRANSIENT_CODES
from tests.support.pipeline import Status, harness

UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
PERMANENT = sorted(
    frozenset(grpc.StatusCode)
    - TRANSIENT_CODES
    - {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT},  # INVALID_ARGUMENT splits
    key=lambda c: c.name,
)


def test_events_get_uuid7_ids_and_keep_the_ones_given() -> None:
    given = "11111111-2222-4333-8444-555555555555"
    h = harness()
    h.track(3, ids=[None, given, None])
    h.pipeline.seal()
    h.step()
    ids = [e.event_id for e in h.sink.calls[0].events]
    assert ids[1] == given
    assert UUID7.fullmatch(ids[0])
    assert UUID7.fullmatch(ids[2])
    assert len(set(ids)) == 3


@pytest.mark.parametrize("code", PERMANENT)
def test_a_permanent_code_dead_letters_the_request_at_once(code: grpc.StatusCode) -> None:
    h = harness()
    h.track(3)
    h.pipeline.seal()
    h.step()
    h.sink.open()[0].fail(code, "no")
    h.clock.advance(600)
    h.step()
    assert len(h.sink.calls) == 1  # never retried
    (error, items), *_ = h.reports
    assert isinstance(error, PugError)
    assert error.code == code
    assert isinstance(error.__cause__, grpc.RpcError)
    assert [e.distinct_id for e in items] == ["user-0", "user-1", "user-2"]
    assert h.outcomes() == {"dead_lettered": 3}
    h.check_accounts()


def test_an_error_that_is_not_grpcs_dead_letters_with_that_error() -> None:
    h = harness()
    h.track(3)
    h.pipeline.seal()
    h.step()
    h.sink.open()[0].done(Reply(error=ValueError("Cannot invoke RPC on closed channel!")))
    (error, items), *_ = h.reports
    assert "closed channel" in str(error)
    assert len(items) == 3
    assert h.outcomes() == {"dead_lettered": 3}
    h.check_accounts()


def test_a_retried_request_keeps_its_ids_and_does_not_hold_back_newer_events() -> None:
    h = harness()
    h.track(3)
    h.pipeline.seal()
    h.step()
    first = h.sink.open()[0]
    first_ids = [e.event_id for e in first.events]
    first.fail(grpc.StatusCode.INTERNAL, "failed to accept events")
    h.track(3)  # newer events arrive while the first request waits for its retry
    h.pipeline.seal()
    wake = h.step()
    newer = h.sink.calls[1]
    assert not set(e.event_id for e in newer.events) & set(first_ids)  # sent during the wait
    assert wake is not None
    assert wake > h.clock.now
    h.clock.now = wake
    h.step()
    retry = h.sink.calls[2]
    assert [e.event_id for e in retry.events] == first_ids  # the same ids on every attempt
    for call in h.sink.open():
        call.ok()
    assert h.outcomes() == {"accepted": 6}
    assert h.ledger.retried == 1
    h.check_accounts()


def test_server_drops_are_counted_per_reason_and_reported() -> None:
    h = harness()
    h.track(3)
    h.pipeline.seal()
    h.step()
    h.sink.open()[0].ok(accepted=1, dropped=2, salt_unavailable=1, day_out_of_range=1)
    (error, items), *_ = h.reports
    assert isinstance(error, PugDeliveryError)
    assert error.reason == "EVENTS_DROPPED"
    assert dict(error.dropped_by_reason) == {"salt_unavailable": 1, "day_out_of_range": 1}
    assert items == []  # the server does not say which events it dropped
    assert h.outcomes() == {"accepted": 1, "dropped": 2}
    assert h.ledger.totals.dropped_by_reason == {"salt_unavailable": 1, "day_out_of_range": 1}


def test_a_failed_identify_is_dead_lettered_with_its_request() -> None:
    h = harness()
    request = profiles_pb2.IdentifyRequest(external_id="a", anonymous_id="anon-1")
    with h.pipeline._lock:
        window = h.ledger.take(1)
    h.pipeline.take_identify(request.SerializeToString(), window)
    h.step()
    (call,) = h.sink.open()
    call.done(Reply(error=Status(grpc.StatusCode.PERMISSION_DENIED, "no")))
    (error, items), *_ = h.reports
    assert isinstance(error, PugError)
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    assert items == [request]
    assert h.outcomes() == {"dead_lettered": 1}


def test_a_delivered_identify_counts_as_identified() -> None:
    h = harness()
    with h.pipeline._lock:
        window = h.ledger.take(1)
    h.pipeline.take_identify(
        profiles_pb2.IdentifyRequest(external_id="a").SerializeToString(), window
    )
    h.step()
    h.sink.open()[0].done(Reply())
    assert h.outcomes() == {"identified": 1}
    h.check_accounts()
