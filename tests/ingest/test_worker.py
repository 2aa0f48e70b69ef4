"""The batching worker, driven deterministically (fake clock and sleep) against loopback servers."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

from pug_grpc._errors import PugError, PugUnavailableError
from pug_grpc._ingest.messages import RawEvent
from pug_grpc._ingest.outcomes import (
    EVENTS_DROPPED,
    QUEUE_OVERFLOW,
    UNDELIVERED,
    Counters,
    PugDeliveryError,
)
from pug_grpc._ingest.retry import PERMANENT_CODES
from pug_grpc._ingest.settings import BatchSettings, RetrySettings
from pug_grpc._ingest.worker import Delivery, GrpcSink, Worker, safe_reporter
from tests.support.loopback import FakeClock, Loopback, channel_to, serve

SESSION = "0190a6c5-4f1e-7abc-8def-0123456789ab"
UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def raw(i: int, kind: str = "k", event_id: str | None = None) -> RawEvent:
    return (event_id, kind, f"user-{i}", SESSION, 1_700_000_000 * 10**9 + i, {"i": i})


@dataclass
class Harness:
    lb: Loopback
    channel: grpc.Channel
    clock: FakeClock
    counters: Counters
    delivery: Delivery
    worker: Worker
    reports: list[tuple[BaseException, list[Any]]] = field(default_factory=list)

    def run(self) -> None:
        """Process everything queued, without waiting."""
        while self.worker.depth()[0]:
            self.worker.step(0)

    def sent_ids(self) -> list[list[str]]:
        return [[e.event_id for e in b.events] for b in self.lb.recorder.batches()]

    def users(self) -> list[list[str]]:
        return [[e.distinct_id for e in b.events] for b in self.lb.recorder.batches()]


@pytest.fixture
def lb() -> Iterator[Loopback]:
    with serve() as server:
        yield server


def make(
    lb: Loopback,
    *,
    batch: BatchSettings | None = None,
    retry: RetrySettings | None = None,
    on_error: Any = None,
) -> Harness:
    clock = FakeClock()
    counters = Counters()
    channel = channel_to(lb)
    reports: list[tuple[BaseException, list[Any]]] = []
    report = safe_reporter(on_error or (lambda e, items: reports.append((e, list(items)))))
    abort = threading.Event()  # wired as the client wires it: close() past its deadline sets it
    batch = batch or BatchSettings(max_size=3, max_wait=10)
    delivery = Delivery(
        sink=GrpcSink(channel, timeout=5),
        retry=retry or RetrySettings(max_attempts=4, initial_backoff=1, max_backoff=1),
        counters=counters,
        report=report,
        clock=clock,
        sleep=clock.sleep,
        uniform=lambda low, high: high,
        max_request_bytes=batch.max_request_bytes,
        should_abort=abort.is_set,
    )
    worker = Worker(
        delivery=delivery, batch=batch, counters=counters, report=report, clock=clock, abort=abort
    )
    return Harness(lb, channel, clock, counters, delivery, worker, reports)


@pytest.fixture
def h(lb: Loopback) -> Iterator[Harness]:
    harness = make(lb)
    yield harness
    harness.channel.close()


def test_batch_goes_out_when_full(h: Harness) -> None:
    for i in range(7):
        h.worker.submit(raw(i))
    h.run()
    assert h.users() == [["user-0", "user-1", "user-2"], ["user-3", "user-4", "user-5"]]
    assert h.worker.depth() == (0, 1)
    stats = h.counters.snapshot(waiting=0, in_flight=1)
    assert (stats.enqueued, stats.sent, stats.accepted, stats.batches) == (7, 6, 6, 2)


def test_batch_goes_out_after_max_wait(h: Harness) -> None:
    h.worker.submit(raw(0))
    h.worker.step(0)
    h.clock.advance(5)
    h.worker.submit(raw(1))
    h.worker.step(0)
    h.clock.advance(4.9)
    h.worker.step(0)
    assert h.lb.recorder.batches() == []  # 9.9 s after the first event: not yet
    h.clock.advance(0.1)
    h.worker.step(0)
    assert h.users() == [["user-0", "user-1"]]


def test_events_get_uuid7_ids_and_keep_given_ones(h: Harness) -> None:
    given = "11111111-2222-4333-8444-555555555555"
    h.worker.submit(raw(0))
    h.worker.submit(raw(1, event_id=given))
    h.worker.submit(raw(2))
    h.run()
    ids = h.sent_ids()[0]
    assert UUID7.fullmatch(ids[0])
    assert UUID7.fullmatch(ids[2])
    assert ids[1] == given
    assert len(set(ids)) == 3


def test_flush_sends_a_partial_batch_and_reports_what_happened(lb: Loopback) -> None:
    h = make(lb)
    h.lb.recorder.default = _poison_aware
    h.worker.start()
    try:
        for i in range(4):
            h.worker.submit(raw(i, kind="poison" if i == 1 else "k"))
        result = h.worker.flush(5)  # the fake clock never reaches max_wait: only flush sends
        assert result.completed
        delivered = {e.event_id for e in lb.recorder.events() if e.kind == "k"}
        assert set(result.delivered) == delivered
        assert len(delivered) == 3
        assert len(result.dead_lettered) == 1
        assert h.reports[0][1][0].event_id == result.dead_lettered[0]
        # A second flush only reports what was pending at its call.
        h.worker.submit(raw(9))
        again = h.worker.flush(5)
        assert len(again.delivered) == 1
        assert again.dead_lettered == ()
    finally:
        assert h.worker.close(5)
        h.channel.close()


def _poison_aware(request: Any, context: grpc.ServicerContext) -> Any:
    if any(e.kind == "poison" for e in request.events):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad event")
    return events_pb2.BatchCreateResponse(accepted=len(request.events))


def test_invalid_argument_bisects_down_to_the_bad_events(lb: Loopback) -> None:
    h = make(lb, batch=BatchSettings(max_size=10, max_wait=10))
    lb.recorder.default = _poison_aware
    for i in range(10):
        h.worker.submit(raw(i, kind="poison" if i in (2, 7) else "k"))
    h.run()
    ok_batches = [b for b in lb.recorder.batches() if all(e.kind == "k" for e in b.events)]
    delivered = [e.distinct_id for b in ok_batches for e in b.events]
    assert sorted(delivered, key=lambda u: int(u.split("-")[1])) == [
        f"user-{i}" for i in range(10) if i not in (2, 7)
    ]
    assert len(delivered) == 8  # each good event delivered exactly once
    dead = sorted([x.distinct_id for x in items] for _, items in h.reports)
    assert dead == [["user-2"], ["user-7"]]  # isolated: one report per bad event
    assert all(isinstance(e, PugError) and e.code == grpc.StatusCode.INVALID_ARGUMENT
               for e, _ in h.reports)  # fmt: skip
    stats = h.counters.snapshot(waiting=0, in_flight=0)
    assert (stats.dead_lettered, stats.accepted) == (2, 8)
    h.channel.close()


@pytest.mark.parametrize(
    "code", sorted(PERMANENT_CODES - {grpc.StatusCode.INVALID_ARGUMENT}, key=lambda c: c.name)
)
def test_permanent_codes_dead_letter_the_batch(code: grpc.StatusCode, h: Harness) -> None:
    h.lb.recorder.fail_next(code)
    for i in range(3):
        h.worker.submit(raw(i))
    h.run()
    assert len(h.lb.recorder.calls) == 1  # not retried
    (error, events), *_ = h.reports
    assert isinstance(error, PugError)
    assert error.code == code
    assert isinstance(error.__cause__, grpc.RpcError)
    assert [e.distinct_id for e in events] == ["user-0", "user-1", "user-2"]
    assert h.counters.snapshot(waiting=0, in_flight=0).dead_lettered == 3


def test_non_grpc_errors_dead_letter(h: Harness) -> None:
    h.channel.close()  # calling a closed channel raises ValueError, not an RpcError
    for i in range(3):
        h.worker.submit(raw(i))
    h.run()
    (error, events), *_ = h.reports
    assert isinstance(error, ValueError)
    assert not isinstance(error, grpc.RpcError)
    assert len(events) == 3


def test_retried_batch_keeps_ids_and_stays_ahead(h: Harness) -> None:
    h.lb.recorder.fail_next(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)
    for i in range(6):
        h.worker.submit(raw(i))
    h.run()
    ids = h.sent_ids()
    assert len(ids) == 4
    assert ids[0] == ids[1] == ids[2]  # the same event ids on every attempt
    assert h.users()[2] == ["user-0", "user-1", "user-2"]  # first batch delivered first...
    assert h.users()[3] == ["user-3", "user-4", "user-5"]  # ...newer events after it
    assert h.clock.sleeps == [1, 1]
    stats = h.counters.snapshot(waiting=0, in_flight=0)
    assert (stats.retried, stats.batches, stats.accepted) == (2, 2, 6)


def test_exhausted_retries_dead_letter(lb: Loopback) -> None:
    h = make(lb, retry=RetrySettings(max_attempts=2, initial_backoff=0.1, max_backoff=0.1))
    lb.recorder.default = grpc.StatusCode.UNAVAILABLE
    for i in range(3):
        h.worker.submit(raw(i))
    h.run()
    assert len(lb.recorder.calls) == 2
    (error, events), *_ = h.reports
    assert isinstance(error, PugUnavailableError)
    assert len(events) == 3
    h.channel.close()


def test_server_drops_are_counted_and_reported(h: Harness) -> None:
    reply = events_pb2.BatchCreateResponse(
        accepted=1, dropped=2, dropped_by_reason={"salt_unavailable": 1, "day_out_of_range": 1}
    )
    h.lb.recorder.fail_next(reply)
    for i in range(3):
        h.worker.submit(raw(i))
    h.run()
    (error, events), *_ = h.reports
    assert isinstance(error, PugDeliveryError)
    assert error.reason == EVENTS_DROPPED
    assert dict(error.dropped_by_reason) == {"salt_unavailable": 1, "day_out_of_range": 1}
    assert error.dropped == 2
    assert events == []  # the server does not say which events it dropped
    stats = h.counters.snapshot(waiting=0, in_flight=0)
    assert (stats.sent, stats.accepted, stats.dropped) == (3, 1, 2)
    assert stats.dropped_by_reason == {"salt_unavailable": 1, "day_out_of_range": 1}
    assert stats.dead_lettered == 0


def test_overflow_drops_the_oldest_and_reports_them(lb: Loopback) -> None:
    h = make(lb, batch=BatchSettings(max_size=10, max_wait=0, max_queue_size=5))
    for i in range(8):
        h.worker.submit(raw(i))
    stats = h.counters.snapshot(waiting=h.worker.depth()[0], in_flight=0)
    assert (stats.overflowed, stats.queue_depth, stats.enqueued) == (3, 5, 8)
    h.run()
    assert h.users() == [[f"user-{i}" for i in range(3, 8)]]
    (error, events), *_ = h.reports
    assert isinstance(error, PugDeliveryError)
    assert error.reason == QUEUE_OVERFLOW
    assert [e.distinct_id for e in events] == ["user-0", "user-1", "user-2"]
    h.channel.close()


def test_identify_is_delivered_in_call_order(h: Harness) -> None:
    h.worker.submit(raw(0))
    h.worker.submit(profiles_pb2.IdentifyRequest(external_id="a"))
    h.worker.submit(raw(1))
    h.worker.submit(raw(2))
    h.worker.submit(profiles_pb2.IdentifyRequest(external_id="b", anonymous_id="anon-1"))
    h.run()
    order = [
        c.request.external_id
        if c.method == "Identify"
        else [e.distinct_id for e in c.request.events]
        for c in h.lb.recorder.calls
    ]
    assert order == [["user-0"], "a", ["user-1", "user-2"], "b"]
    assert h.counters.snapshot(waiting=0, in_flight=0).identified == 2


def test_failed_identify_is_dead_lettered(h: Harness) -> None:
    h.lb.recorder.fail_next(grpc.StatusCode.PERMISSION_DENIED)
    request = profiles_pb2.IdentifyRequest(external_id="a")
    h.worker.submit(request)
    h.run()
    (error, items), *_ = h.reports
    assert isinstance(error, PugError)
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    assert items == [request]


def test_on_error_that_raises_does_not_break_the_worker(lb: Loopback) -> None:
    seen = []

    def on_error(error: BaseException, items: list[Any]) -> None:
        seen.append(error)
        raise RuntimeError("user bug")

    h = make(lb, on_error=on_error)
    lb.recorder.fail_next(grpc.StatusCode.NOT_FOUND)
    for i in range(6):
        h.worker.submit(raw(i))
    h.run()
    assert len(seen) == 1
    assert h.users()[1] == ["user-3", "user-4", "user-5"]
    h.channel.close()


def test_big_batches_are_split_to_fit_the_request_size(lb: Loopback) -> None:
    h = make(lb, batch=BatchSettings(max_size=8, max_wait=10, max_request_bytes=3000))
    for i in range(8):
        h.worker.submit((None, "k", f"user-{i}", SESSION, 1, {"blob": "x" * 1000}))
    h.run()
    sizes = [len(b.events) for b in lb.recorder.batches()]
    assert sum(sizes) == 8
    assert len(sizes) > 1
    assert all(b.ByteSize() <= 3000 for b in lb.recorder.batches())
    h.channel.close()


def test_close_drains_everything(h: Harness) -> None:
    h.worker.start()
    for i in range(5):
        h.worker.submit(raw(i))
    assert h.worker.close(5)
    assert len(h.lb.recorder.events()) == 5
    assert h.worker.flush(1).completed
    assert h.worker.step(0) is False


def test_close_past_its_timeout_reports_undelivered(lb: Loopback) -> None:
    release = threading.Event()

    def stall(request: Any, context: grpc.ServicerContext) -> Any:
        release.wait(10)
        return events_pb2.BatchCreateResponse(accepted=len(request.events))

    lb.recorder.default = stall
    h = make(lb, batch=BatchSettings(max_size=2, max_wait=10))
    h.worker.start()
    try:
        for i in range(5):
            h.worker.submit(raw(i))
        assert lb.recorder.wait_for(lambda r: len(r.calls) >= 1)
        assert h.worker.close(0.2, on_abort=h.channel.close) is False
    finally:
        release.set()
    undelivered = [items for e, items in h.reports
                   if isinstance(e, PugDeliveryError) and e.reason == UNDELIVERED]  # fmt: skip
    assert sum(len(i) for i in undelivered) == 5
    stats = h.counters.snapshot(waiting=0, in_flight=0)
    assert stats.dead_lettered == 5
