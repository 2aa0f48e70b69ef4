"""The caller's fast path of ``track()`` and the worker's share of the interpreter lock.

``track()`` takes a short path for the common call; whatever it hands the worker must be what
the full path hands it. A hand-off past half full makes the caller yield the lock, more often
as it fills, and a full one drops its oldest call: the caller never waits for the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pug_grpc import BatchSettings, Pug
from pug_grpc._ingest.engine import Engine, Phase
from pug_grpc._ingest.reports import safe_reporter
from pug_grpc._ingest.sink import NullSink


class IdleEngine(Engine):
    """An engine that is running but whose worker never runs: the hand-off can be read."""

    def _start(self) -> None:
        self._phase = Phase.RUNNING

    def retire(self) -> None:
        """Closed with nothing to drain: the exit hook must not wait for a worker."""
        self._phase = Phase.CLOSED
        self._closed.set()


def idle_engine(pug: Pug, *, limit: int = 10_000, pauses: list[float] | None = None) -> IdleEngine:
    engine = IdleEngine(
        batch=BatchSettings(max_queue_size=limit),
        retry=None,
        report=safe_reporter(None),
        make_sink=NullSink,
        pause=pauses.append if pauses is not None else lambda _: None,
    )
    previous = pug._intake._engine
    if isinstance(previous, IdleEngine):
        previous.retire()
    pug._engine = engine
    pug._intake._engine = engine
    return engine


def handed_off(engine: Engine) -> list[Any]:
    items = []
    while (item := engine._handoff.next(0.0)) is not None:
        items.append(item)
    return items


@pytest.fixture(scope="module")
def pug() -> Iterator[Pug]:
    client = Pug(send=False)
    real = client._engine
    yield client
    idle = client._intake._engine
    if isinstance(idle, IdleEngine):
        idle.retire()
    client._engine = client._intake._engine = real
    client.close()


ids = st.text(max_size=12) | st.sampled_from(["cookieless-1", "user-1", "ü", "a\udc80"])
kinds = st.sampled_from(["signup", "page.view", "bad kind", "", "purchase", "x" * 3]) | st.text(
    max_size=6
)
props = st.none() | st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4))


@settings(max_examples=300, deadline=None)
@given(distinct_id=ids, kind=kinds, properties=props)
def test_the_fast_path_hands_off_what_the_full_path_hands_off(
    pug: Pug, distinct_id: str, kind: str, properties: dict[str, Any] | None
) -> None:
    engine = idle_engine(pug)
    # An empty ``extra`` forces the full path and changes nothing else.
    pug.track(distinct_id, kind, properties, extra={})
    pug.track(distinct_id, kind, properties)  # the kind is known now: fast path when plain
    pug.track(distinct_id, kind, properties)
    items = handed_off(engine)
    if not items:
        assert engine.stats().rejected == 3  # refused by both paths alike
        return
    assert len(items) == 3  # accepted by both paths alike
    full, *fast = items
    for item in fast:
        assert item[:4] == full[:4]  # event id (none yet), kind, distinct id, session
        assert item[5] == full[5]
        assert item[5] is not properties or properties is None  # a copy, never the caller's dict
        assert item[4] >= full[4]


def test_a_hand_off_past_half_full_makes_the_caller_yield_more_often_as_it_fills(
    pug: Pug,
) -> None:
    pauses: list[float] = []
    engine = idle_engine(pug, limit=1024, pauses=pauses)
    for i in range(512):
        pug.track(f"user-{i}", "hot.path")
    assert pauses == []  # below half full the caller never yields
    counts = []
    for eighth in range(4):
        before = len(pauses)
        for i in range(128):
            pug.track(f"user-{eighth}-{i}", "hot.path")
        counts.append(len(pauses) - before)
    assert set(pauses) == {0}  # a yield of the lock, never a wait
    assert counts == sorted(counts)
    assert counts[0] >= 1
    assert counts[-1] >= 128 // 4 - 1
    for i in range(100):  # at the bound: still never blocks, the oldest is dropped
        pug.track(f"late-{i}", "hot.path")
    stats = engine.stats()
    assert (stats.overflowed, stats.queued) == (100, 1024)
    items = handed_off(engine)
    assert len(items) == 1024
    assert items[-1][2] == "late-99"
    assert items[0][2] == "user-100"  # the hundred oldest made room
