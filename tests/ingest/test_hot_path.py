"""The caller's fast path of ``track()`` and the worker's share of the interpreter lock.

``track()`` takes a short path for the common call; whatever it queues must be what the full
path queues. A queue past half full makes the caller yield the lock, more often as it fills.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pug_grpc import BatchSettings, Pug, RetrySettings
from pug_grpc._ingest.worker import Delivery, NullSink, Worker, safe_reporter


def idle_worker(pug: Pug, *, limit: int = 10_000, pauses: list[float] | None = None) -> Worker:
    """A worker whose thread never runs: what the caller queues stays there to be read."""
    counters = pug._counters
    delivery = Delivery(
        sink=NullSink(), retry=RetrySettings(), counters=counters, report=safe_reporter(None)
    )
    worker = Worker(
        delivery=delivery,
        batch=BatchSettings(max_queue_size=limit),
        counters=counters,
        report=safe_reporter(None),
        pause=(pauses.append if pauses is not None else lambda _: None),
    )
    pug._worker = worker
    return worker


def queued(worker: Worker) -> list[Any]:
    items = []
    while True:
        try:
            items.append(worker._queue.get_nowait())
        except queue.Empty:
            return items


@pytest.fixture(scope="module")
def pug() -> Iterator[Pug]:
    client = Pug(send=False)
    yield client
    client._worker = None  # never started: nothing to drain
    client.close()


ids = st.text(max_size=12) | st.sampled_from(["cookieless-1", "user-1", "ü", "a\udc80"])
kinds = st.sampled_from(["signup", "page.view", "bad kind", "", "purchase", "x" * 3]) | st.text(
    max_size=6
)
props = st.none() | st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4))


@settings(max_examples=300, deadline=None)
@given(distinct_id=ids, kind=kinds, properties=props)
def test_the_fast_path_queues_what_the_full_path_queues(
    pug: Pug, distinct_id: str, kind: str, properties: dict[str, Any] | None
) -> None:
    worker = idle_worker(pug)
    rejected = pug.stats().rejected
    # Passing the client's own session id forces the full path and changes nothing else.
    pug.track(distinct_id, kind, properties, session_id=pug.session_id)
    pug.track(distinct_id, kind, properties)  # the kind is known now: fast path when plain
    pug.track(distinct_id, kind, properties)
    items = queued(worker)
    if not items:
        assert pug.stats().rejected == rejected + 3  # refused by both paths alike
        return
    assert len(items) == 3  # accepted by both paths alike
    full, *fast = items
    for item in fast:
        assert item[:4] == full[:4]
        assert item[5] == full[5]
        assert item[5] is not properties or properties is None  # a copy, never the caller's dict
        assert item[4] >= full[4]


def test_a_queue_past_half_full_makes_the_caller_yield_more_often_as_it_fills(pug: Pug) -> None:
    pauses: list[float] = []
    worker = idle_worker(pug, limit=1024, pauses=pauses)
    for i in range(512):
        pug.track(f"user-{i}", "hot.path")
    assert pauses == []  # below half full the caller never yields
    counts = []
    for eighth in range(4):
        before = len(pauses)
        for i in range(128):
            pug.track(f"user-{eighth}-{i}", "hot.path")
        counts.append(len(pauses) - before)
    assert set(pauses) == {0}
    assert counts == sorted(counts)
    assert counts[0] >= 1
    assert counts[-1] >= 128 // 4 - 1
    for i in range(100):  # at the bound: still never blocks, the oldest is dropped
        pug.track(f"late-{i}", "hot.path")
    assert worker.depth()[0] == 1024
    assert pug.stats().overflowed == 100
    queued(worker)
