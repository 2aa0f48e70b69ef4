"""Outages while events are tracked, lost replies, and overflow when an outage outlasts the queue.

Every test numbers its events with a ``seq`` property, so the server's recordings say exactly
which events arrived, under which ids and how many times.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import tracemalloc
from collections.abc import Callable

import grpc
import pytest

from pug_grpc import BatchSettings, Pug, RetrySettings
from pug_grpc._ingest.outcomes import QUEUE_OVERFLOW
from pug_grpc.testing import LocalServer
from tests.support.reliability import (
    LeakGuard,
    audit,
    batch_of,
    client,
    pug_server,
    seq_of,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

N = 50_000
CHUNK = 1_000
PACE = 0.07
"""Tracking is spread over about 3.5 s (one chunk every 70 ms)."""
FAULT_AT = 8
OUTAGE = 2.5
"""The outage starts after 8 chunks (0.6 s) and lasts 2.5 s: events are tracked before, during
and after it."""
BIG_QUEUE = BatchSettings(max_size=500, max_wait=0.05)
"""The default byte budget (48 MiB) holds all N events: nothing may overflow."""


def within_budget(sampler: DepthSampler) -> bool:
    """The queue held no more than its byte budget (plus the newest request and the open page)."""
    return sampler.max_bytes <= BIG_QUEUE.max_queue_bytes + 2 * BIG_QUEUE.max_request_bytes


class DepthSampler:
    """Samples ``stats()`` (queue depth and bytes) every few milliseconds while the test runs."""

    def __init__(self, pug: Pug) -> None:
        self._pug = pug
        self._stop = threading.Event()
        self.max_depth = 0
        self.max_bytes = 0
        self.samples = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            stats = self._pug.stats()
            self.max_depth = max(self.max_depth, stats.queue_depth)
            self.max_bytes = max(self.max_bytes, stats.queue_bytes)
            self.samples += 1

    def __enter__(self) -> DepthSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def track_paced(pug: Pug, *, at_chunk: int, fault: Callable[[], None]) -> None:
    """Track N numbered events in chunks; run ``fault`` once ``at_chunk`` chunks are queued."""
    for chunk in range(N // CHUNK):
        if chunk == at_chunk:
            fault()
        base = chunk * CHUNK
        for seq in range(base, base + CHUNK):
            pug.track(f"user-{seq % 300}", "outage.test", {"seq": seq})
        time.sleep(PACE)


def check_delivered_once_per_ack(server: LocalServer, pug: Pug, guard: LeakGuard) -> int:
    """Every event stored, ids stable, and every extra delivery one the client never saw acked.

    Returns the number of redeliveries (lost replies).
    """
    found = audit(server.events, N)
    assert found.missing == [], f"{len(found.missing)} events lost, e.g. {found.missing[:5]}"
    assert found.unstable_ids == {}, "a retry sent an event under a new event_id"
    assert server.stored_event_count() == N
    stats = pug.stats()
    # The client was told "accepted" exactly once per event: any delivery beyond that was
    # stored by a call whose reply never reached it (a lost reply), and carried the same id.
    assert (stats.sent, stats.accepted, stats.dead_lettered, stats.overflowed) == (N, N, 0, 0)
    assert stats.enqueued == N
    assert stats.queue_depth == 0
    assert found.received == N + found.extra_deliveries
    guard.add(repr(pug), stats)
    return found.extra_deliveries


def test_unavailable_window_while_tracking_loses_nothing(leak_guard: LeakGuard) -> None:
    reports = leak_guard.reports()
    with pug_server() as server:
        pug = client(server, batch=BIG_QUEUE, on_error=reports)
        with DepthSampler(pug) as sampler:
            track_paced(pug, at_chunk=FAULT_AT, fault=lambda: server.faults.outage(OUTAGE))
            result = pug.flush(timeout=40)
        assert result.completed
        refused = [
            c for c in server.calls_to("BatchCreate") if c.code == grpc.StatusCode.UNAVAILABLE
        ]
        assert len(refused) >= 3, "the outage never hit a call: the test proved nothing"
        assert pug.stats().retried >= len(refused)
        # UNAVAILABLE is answered before anything is stored: no delivery may be doubled.
        assert check_delivered_once_per_ack(server, pug, leak_guard) == 0
        assert sampler.samples > 50
        assert sampler.max_depth > 0  # the queue grew during the outage
        assert sampler.max_bytes > 0
        assert within_budget(sampler)
        assert reports.all == []
        pug.close()


def test_server_stopped_and_restarted_on_the_same_port_loses_nothing(
    leak_guard: LeakGuard,
) -> None:
    reports = leak_guard.reports()
    with pug_server() as server:
        port = server.port
        pug = client(server, batch=BIG_QUEUE, on_error=reports)
        restarted = threading.Event()

        def stop_then_restart() -> None:
            server.stop(grace=0.2)

            def restart() -> None:
                server.start()
                restarted.set()

            timer = threading.Timer(OUTAGE, restart)
            timer.daemon = True
            timer.start()

        with DepthSampler(pug) as sampler:
            track_paced(pug, at_chunk=FAULT_AT, fault=stop_then_restart)
            assert restarted.wait(10)
            result = pug.flush(timeout=40)
        assert result.completed
        assert server.port == port
        assert pug.stats().retried >= 1, "the client never saw the server down"
        lost_replies = check_delivered_once_per_ack(server, pug, leak_guard)
        print(f"redeliveries after the restart (replies lost at stop): {lost_replies}")
        assert within_budget(sampler)
        assert reports.all == []
        pug.close()


def test_lost_reply_redelivers_exactly_that_batch_with_the_same_ids(
    leak_guard: LeakGuard,
) -> None:
    reports = leak_guard.reports()
    with pug_server() as server:
        server.faults.fail_after_accept("BatchCreate")
        pug = client(server, batch=BatchSettings(max_size=100, max_wait=5), on_error=reports)
        for seq in range(250):
            pug.track("user-1", "lost.reply", {"seq": seq})
        assert pug.flush(timeout=10).completed
        calls = server.calls_to("BatchCreate")
        failed = [c for c in calls if c.code == grpc.StatusCode.UNAVAILABLE]
        assert len(failed) == 1, "the reply of exactly one stored batch was lost"
        first = batch_of(failed[0])
        lost_ids = [e.event_id for e in first.events]
        # Batches grow with the backlog: the first request goes once it holds max_size events,
        # and may hold every event the worker had taken by then.
        assert 100 <= len(lost_ids) <= 250
        # The retry is the same request: same events, same ids, same content, sent once more
        # after the failure; no other request carries any of its events.
        wire = first.SerializeToString()
        again = [c for c in calls if c is not failed[0] and batch_of(c).SerializeToString() == wire]
        assert len(again) == 1
        assert again[0].code == grpc.StatusCode.OK
        assert again[0].received_at >= failed[0].received_at
        others = {e.event_id for c in calls if c is not failed[0] and c is not again[0]
                  for e in batch_of(c).events}  # fmt: skip
        assert not others & set(lost_ids)
        assert len(others) == 250 - len(lost_ids)
        assert [c.code for c in calls if c is not failed[0]] == [grpc.StatusCode.OK] * (
            len(calls) - 1
        )

        found = audit(server.events, 250)
        assert found.missing == []
        assert found.unstable_ids == {}
        assert sorted(found.duplicated_ids) == sorted(lost_ids)
        assert set(found.duplicated_ids.values()) == {2}
        assert server.stored_event_count() == 250
        stats = pug.stats()
        assert (stats.sent, stats.accepted, stats.retried, stats.dead_lettered) == (250, 250, 1, 0)
        assert reports.all == []
        pug.close()


QUEUE_BYTES = 1024 * 1024
"""The queue's byte budget in the overflow test: a few thousand of its events."""
CAUGHT_UP = 13_000
"""Events held once the worker has caught up: up to 8 requests of 1,000 retrying (leased before
the outage was seen, and counted in the byte budget), the newest request and the open page."""
_COUNT = re.compile(r"(\d+) oldest item")


def test_outage_outlasting_the_queue_overflows_counted_reported_and_bounded(
    leak_guard: LeakGuard,
) -> None:
    reports = leak_guard.reports(keep=3)  # keep the collector itself from growing with N
    batch = BatchSettings(max_size=500, max_wait=0.05, max_queue_bytes=QUEUE_BYTES)
    retry = RetrySettings(max_attempts=10_000, initial_backoff=0.02, max_backoff=0.1)
    with pug_server() as server:
        pug = client(server, batch=batch, retry=retry, on_error=reports)
        server.faults.outage()  # until told otherwise
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            traced: list[int] = []
            held: list[int] = []
            dropped: list[int] = []
            for seq in range(N):
                pug.track(f"user-{seq % 300}", "overflow.test", {"seq": seq, "page": "/p"})
                if seq % 5_000 == 4_999:
                    # Sampled once the worker has taken what was handed over (the hand-off
                    # fills only while callers outrun the worker, as they do under tracemalloc).
                    assert wait_until(lambda: pug.stats().queued <= CAUGHT_UP, 20)
                    traced.append(tracemalloc.get_traced_memory()[0])
                    snapshot = pug.stats()
                    held.append(snapshot.queue_bytes)
                    dropped.append(snapshot.overflowed)
        finally:
            tracemalloc.stop()
        assert wait_until(lambda: len(server.calls) >= 2, 5), "the worker never tried to send"
        # The queue is bounded by its bytes: the budget, plus the newest request (the one whose
        # arrival made the oldest go) and the page being filled.
        assert wait_until(lambda: pug.stats().queued <= CAUGHT_UP, 10)
        during = pug.stats()
        bound = QUEUE_BYTES + 2 * batch.max_request_bytes
        print(f"queue bytes every 5,000 events: {held}; at the end {during}")
        assert max(held) <= bound
        assert during.queue_bytes <= bound
        assert during.overflowed > 0
        assert during.queued <= CAUGHT_UP
        assert during.in_flight <= 1_000, "one request probes the outage, no more"
        server.faults.end_outage()
        assert pug.flush(timeout=30).completed

        # Memory: once the queue is full it stops growing, however many more events come.
        # (an unbounded queue would grow about 8 times as much after 10,000 as before it)
        # Measured from the first sample at which the queue was full (it had dropped some).
        full_at = next(i for i, n in enumerate(dropped) if n > 0)
        assert full_at <= 4, dropped  # full by 25,000 events: at least five samples after it
        filling = traced[full_at] - baseline
        steady = max(traced[full_at:]) - traced[full_at]
        shown = [round((t - baseline) / 1e6, 2) for t in traced]
        print(f"traced memory growth every 5,000 events: {shown} MB")
        assert filling > 0
        assert steady < filling * 0.5, (filling, steady)

        stats = pug.stats()
        stored = {seq_of(e) for e in server.events}
        assert stats.overflowed > 0
        assert len(stored) + stats.overflowed == N, "every event is stored or counted as overflow"
        assert stats.sent == len(stored) == server.stored_event_count()
        assert (stats.dead_lettered, stats.undelivered, stats.unconfirmed) == (0, 0, 0)
        # Reported, never silent: the QUEUE_OVERFLOW reports add up to the counter.
        overflow_reports = reports.of(QUEUE_OVERFLOW)
        assert overflow_reports
        counts = [_COUNT.search(str(r.error)) for r in overflow_reports]
        assert all(counts)
        assert sum(int(m.group(1)) for m in counts if m) == stats.overflowed
        assert reports.item_counts[QUEUE_OVERFLOW] <= stats.overflowed
        reported_seqs = {seq_of(i) for r in overflow_reports for i in r.items}  # type: ignore[arg-type]
        assert reported_seqs
        assert not reported_seqs & stored
        # The oldest waiting requests were dropped whole: what was stored is the requests that
        # were already out when the outage was seen (retried, never dropped) and the newest
        # events, each a run of consecutive numbers.
        ordered = sorted(stored)
        runs = 1 + sum(b != a + 1 for a, b in itertools.pairwise(ordered))
        assert runs <= batch.max_in_flight + 2, f"{runs} runs: not the oldest were dropped"
        gaps = [b for a, b in itertools.pairwise(ordered) if b != a + 1]
        newest_run = gaps[-1] if gaps else 0
        assert ordered[-1] == N - 1, "the newest event was kept"
        assert max(reported_seqs) < newest_run, "a reported event is newer than one kept"
        pug.close()
