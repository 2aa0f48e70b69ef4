"""The engine's lifecycle against a real loopback server: flush windows, close, on_error, GC.

Each test names the defect of the first engine it guards against.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from pug_grpc import BatchSettings, Pug, RetrySettings
from tests.support.loopback import Loopback, serve

KEY = "prv_lifecycle_test_key_0001"
FAST = RetrySettings(initial_backoff=0.01, max_backoff=0.05, max_elapsed=30.0)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def lb() -> Iterator[Loopback]:
    with serve() as running:
        yield running


def slow(seconds: float) -> Any:
    """A server action: answer after ``seconds`` (accepting everything)."""

    def action(request: Any, context: grpc.ServicerContext) -> Any:
        time.sleep(seconds)
        from pug_grpc.gen.sdk.events.v1 import events_pb2
        from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

        if hasattr(request, "events"):
            return events_pb2.BatchCreateResponse(accepted=len(request.events))
        return profiles_pb2.IdentifyResponse()

    return action


def client(lb: Loopback, **options: Any) -> Pug:
    options.setdefault("batch", BatchSettings(max_wait=0.02))
    options.setdefault("retry", FAST)
    return Pug(KEY, lb.endpoint, **options)


def test_flush_reports_everything_enqueued_since_the_previous_flush(lb: Loopback) -> None:
    """It reported only what was still pending at the call: 3,000 tracked, 'delivered 0'."""
    with client(lb) as pug:
        for n in range(3000):
            pug.track("user-1", "life.flush", {"n": n})
        assert lb.recorder.wait_for(lambda r: len(r.events()) == 3000, 20)
        time.sleep(0.1)  # the replies are in: nothing is pending any more
        first = pug.flush(10)
        assert (first.completed, first.accepted, first.pending, first.ok) == (True, 3000, 0, True)
        again = pug.flush(10)
        assert (again.accepted, again.ok) == (0, True), "each event is reported once"


def test_a_timed_out_flush_says_what_is_pending_and_a_later_flush_reports_it(
    lb: Loopback,
) -> None:
    lb.recorder.default = slow(0.5)
    with client(lb) as pug:
        for n in range(100):
            pug.track("user-1", "life.pending", {"n": n})
        early = pug.flush(0.05)
        assert not early.completed
        assert early.pending == 100
        assert early.accepted == 0
        late = pug.flush(10)
        assert (late.completed, late.accepted, late.pending) == (True, 100, 0)


def test_concurrent_close_calls_all_wait_for_the_same_drain(lb: Loopback) -> None:
    """A second close() returned at once while the first was still draining."""
    lb.recorder.default = slow(0.3)
    pug = client(lb, batch=BatchSettings(max_wait=0.02, max_in_flight=1, max_size=10))
    for n in range(30):
        pug.track("user-1", "life.close", {"n": n})
        if n % 10 == 9:
            time.sleep(0.05)  # three requests, one at a time: about a second to drain
    seen: list[tuple[int, int]] = []

    def close() -> None:
        pug.close(10)
        stats = pug.stats()
        seen.append((stats.accepted, stats.queue_depth))

    threads = [threading.Thread(target=close) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert seen == [(30, 0)] * 3


def test_close_from_on_error_starts_the_shutdown_and_never_closes_the_channel_under_the_worker(
    lb: Loopback,
) -> None:
    """close() in on_error closed the channel under the worker; the next identify crashed."""
    lb.recorder.fail_next(grpc.StatusCode.PERMISSION_DENIED)
    closed_from_worker: list[bool] = []
    box: dict[str, Pug] = {}

    def on_error(error: BaseException, items: Any) -> None:
        pug = box["pug"]
        pug.close()  # on the worker thread: returns at once
        closed_from_worker.append(True)
        pug.identify("user-2", {"after": "close"})  # refused: the client is closing

    pug = client(lb, on_error=on_error)
    box["pug"] = pug
    pug.track("user-1", "life.denied")
    pug.identify("user-1", {"queued": "behind"})
    deadline = time.monotonic() + 10
    while pug._engine.phase.value != "closed" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed_from_worker == [True]
    stats = pug.stats()
    assert stats.dead_lettered == 1
    assert stats.rejected == 1
    assert stats.enqueued == 2
    assert stats.enqueued == stats.accepted + stats.dead_lettered + stats.identified
    pug.close()  # idempotent


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()])
def test_on_error_raising_anything_never_stops_the_worker(
    lb: Loopback, raised: BaseException
) -> None:
    """on_error raising SystemExit killed the worker and its batch vanished from every count."""
    lb.recorder.fail_next(grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.PERMISSION_DENIED)
    calls: list[int] = []

    def on_error(error: BaseException, items: Any) -> None:
        calls.append(len(items))
        raise raised

    with client(lb, on_error=on_error) as pug:
        pug.track("user-1", "life.raise")
        assert pug.flush(10).dead_lettered == 1
        pug.track("user-1", "life.raise")
        assert pug.flush(10).dead_lettered == 1
        for n in range(50):
            pug.track("user-1", "life.after", {"n": n})
        result = pug.flush(10)
        assert (result.accepted, result.ok) == (50, True)
        stats = pug.stats()
        assert (stats.enqueued, stats.accepted, stats.dead_lettered) == (52, 50, 2)
    assert calls == [1, 1]


def _workers() -> int:
    return sum(t.name == "pug-grpc-worker" for t in threading.enumerate())


def test_clients_dropped_without_close_deliver_and_end_their_threads(lb: Loopback) -> None:
    """Every client dropped without close() kept its worker thread for ever (100 -> 101)."""
    before = _workers()
    for n in range(100):
        pug = client(lb)
        pug.track(f"user-{n}", "life.dropped")
        del pug
    gc.collect()
    assert lb.recorder.wait_for(lambda r: len(r.events()) == 100, 30)
    deadline = time.monotonic() + 20
    while _workers() > before and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert _workers() == before


def test_the_request_in_flight_at_the_close_deadline_is_reported_unconfirmed(
    lb: Loopback,
) -> None:
    """The batch in flight at the close deadline was never reported (or called undelivered)."""
    lb.recorder.default = slow(3.0)
    reports: list[tuple[str, int]] = []
    pug = client(
        lb,
        batch=BatchSettings(max_wait=0.01, max_in_flight=1, max_size=10),
        on_error=lambda e, items: reports.append((getattr(e, "reason", ""), len(items))),
    )
    for n in range(10):
        pug.track("user-1", "life.deadline", {"n": n})
    assert lb.recorder.wait_for(lambda r: len(r.calls) == 1, 5)
    for n in range(5):
        pug.track("user-1", "life.deadline.queued", {"n": n})
    start = time.monotonic()
    pug.close(0.3)
    assert time.monotonic() - start < 2.0
    stats = pug.stats()
    assert (stats.unconfirmed, stats.undelivered, stats.queue_depth) == (10, 5, 0)
    assert sorted(reports) == [("UNCONFIRMED", 10), ("UNDELIVERED", 5)]


def test_stats_add_up_at_every_instant(lb: Loopback) -> None:
    with client(lb, batch=BatchSettings(max_wait=0.01, max_size=50)) as pug:
        done = threading.Event()

        def produce() -> None:
            for n in range(20_000):
                pug.track(f"user-{n % 7}", "life.stats", {"n": n})
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        samples = 0
        while not done.is_set() or samples < 100:
            s = pug.stats()
            resolved = (
                s.accepted + s.dropped + s.unacknowledged + s.identified + s.dead_lettered
                + s.overflowed + s.undelivered + s.unconfirmed
            )  # fmt: skip
            assert s.enqueued == resolved + s.queued + s.in_flight
            samples += 1
        producer.join()
        assert pug.flush(20).accepted == 20_000
