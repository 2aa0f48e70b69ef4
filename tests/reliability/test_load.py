"""A slow server must not slow the caller down; sixteen threads must not lose or miscount."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter

import pytest

from pug_grpc import BatchSettings, FlushResult, Pug, Stats
from tests.support.reliability import (
    LeakGuard,
    audit,
    batch_of,
    client,
    pug_server,
    seq_of,
)

pytestmark = pytest.mark.timeout(60)

LATENCY = 0.5
SLOW_N = 3_000


def timed_tracks(pug: Pug, seqs: range, out: list[int]) -> None:
    for seq in seqs:
        start = time.perf_counter_ns()
        pug.track(f"user-{seq % 50}", "latency.test", {"seq": seq, "plan": "pro"})
        out.append(time.perf_counter_ns() - start)


def test_a_slow_server_does_not_slow_track_and_loses_nothing(
    leak_guard: LeakGuard,
) -> None:
    reports = leak_guard.reports()
    batch = BatchSettings(max_size=1000, max_wait=0.05)
    with pug_server() as fast_server, pug_server() as slow_server:
        slow_server.faults.set_latency(LATENCY)
        fast = client(fast_server, batch=batch, on_error=reports)
        slow = client(slow_server, batch=batch, on_error=reports)
        fast_ns: list[int] = []
        slow_ns: list[int] = []
        # Interleaved chunks: both workers run throughout, so the two figures share conditions.
        for base in range(0, SLOW_N, 250):
            timed_tracks(fast, range(base, base + 250), fast_ns)
            timed_tracks(slow, range(base, base + 250), slow_ns)
        fast_p50, slow_p50 = statistics.median(fast_ns), statistics.median(slow_ns)
        ratio = slow_p50 / fast_p50
        slow_p99 = statistics.quantiles(slow_ns, n=100)[98]
        print(
            f"track() median: fast server {fast_p50 / 1e3:.1f} µs, {LATENCY * 1e3:.0f} ms server "
            f"{slow_p50 / 1e3:.1f} µs (ratio {ratio:.2f}); slow p99 {slow_p99 / 1e3:.1f} µs, "
            f"max {max(slow_ns) / 1e6:.2f} ms"
        )
        assert ratio < 3.0
        assert max(slow_ns) < LATENCY * 1e9 / 10, "a track() call waited on the network"

        assert fast.flush(timeout=10).completed
        assert slow.flush(timeout=20).completed
        for server, pug in ((fast_server, fast), (slow_server, slow)):
            found = audit(server.events, SLOW_N)
            assert found.missing == []
            assert found.duplicated_ids == {}
            assert pug.stats().sent == SLOW_N
        assert all(c.received_at for c in slow_server.calls)
        assert len(slow_server.calls_to("BatchCreate")) >= 3  # it really was slow, call after call
        assert reports.all == []
        fast.close()
        slow.close()


THREADS = 16
PER_THREAD = 2_000
IDENTIFIES = 5


def test_sixteen_threads_deliver_everything_with_consistent_stats(
    leak_guard: LeakGuard,
) -> None:
    reports = leak_guard.reports()
    with pug_server() as server:
        batch = BatchSettings(max_size=500, max_wait=0.05, max_queue_size=THREADS * PER_THREAD * 2)
        pug = client(server, batch=batch, on_error=reports)
        start = threading.Barrier(THREADS + 1)
        flushes: list[FlushResult] = []
        errors: list[BaseException] = []
        begun = [0] * THREADS  # calls each thread has started (one writer per slot)

        def work(t: int) -> None:
            try:
                start.wait(10)
                for i in range(PER_THREAD):
                    begun[t] += 1
                    pug.track(f"thread-{t}", "concurrency.test", {"seq": t * PER_THREAD + i})
                    if i % (PER_THREAD // IDENTIFIES) == 0:
                        begun[t] += 1
                        pug.identify(f"thread-{t}", {"step": i})
                flushes.append(pug.flush(timeout=30))
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        snapshots: list[tuple[Stats, int]] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(0.002):
                snap = pug.stats()
                snapshots.append((snap, sum(begun)))  # calls begun by the time it was taken

        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        poller = threading.Thread(target=poll)
        for thread in [*threads, poller]:
            thread.start()
        start.wait(10)
        for thread in threads:
            thread.join(40)
        stop.set()
        poller.join(5)
        assert errors == []
        assert len(flushes) == THREADS
        assert all(f.completed for f in flushes)

        total = THREADS * PER_THREAD
        found = audit(server.events, total)
        assert found.missing == []
        assert found.duplicated_ids == {}
        assert len(server.events) == total == server.stored_event_count()
        per_thread = Counter(e.distinct_id for e in server.events)
        assert per_thread == {f"thread-{t}": PER_THREAD for t in range(THREADS)}
        assert len(server.identifies) == THREADS * IDENTIFIES
        # Several requests are in flight at once, so requests may arrive in any order (and Pug
        # promises none): but each request carries a thread's events in the order it tracked
        # them, and every event of a thread is in exactly one request (no retries here).
        seen: Counter[int] = Counter()
        for call in server.calls_to("BatchCreate"):
            request = batch_of(call)
            for t in range(THREADS):
                seqs = [seq_of(e) for e in request.events if e.distinct_id == f"thread-{t}"]
                assert seqs == sorted(seqs), f"thread {t}'s events reordered within a request"
            seen.update(seq_of(e) for e in request.events)
        assert seen == Counter(range(total))

        stats = pug.stats()
        ok_batches = [c for c in server.calls_to("BatchCreate") if c.code is not None]
        assert stats.enqueued == total + THREADS * IDENTIFIES
        assert (stats.sent, stats.accepted, stats.identified) == (
            total,
            total,
            THREADS * IDENTIFIES,
        )
        assert stats.batches == len(ok_batches)
        assert stats.sent + stats.identified + stats.dead_lettered + stats.overflowed == (
            stats.enqueued
        )
        assert (stats.rejected, stats.dead_lettered, stats.overflowed, stats.retried) == (
            0,
            0,
            0,
            0,
        )
        assert stats.queue_depth == 0
        # Overlapping flushes: each item is reported by exactly one of them (or the last).
        last = pug.flush(timeout=10)
        reported = sum(f.accepted + f.identified for f in [*flushes, last])
        assert reported == total + THREADS * IDENTIFIES

        # Every snapshot taken while sixteen threads were tracking was self-consistent: nothing
        # counted that had not been called yet, nothing resolved that was not enqueued, and no
        # counter of past outcomes ever went backwards.
        assert len(snapshots) > 20
        for snap, calls_begun in snapshots:
            assert snap.enqueued <= calls_begun
            assert snap.sent + snap.identified + snap.dead_lettered <= snap.enqueued
            assert snap.queue_depth <= snap.enqueued
            assert snap.accepted <= snap.sent
        for field in ("sent", "accepted", "batches", "identified"):
            values = [getattr(s, field) for s, _ in snapshots]
            assert values == sorted(values), f"stats().{field} went backwards"
        assert reports.all == []
        pug.close()
