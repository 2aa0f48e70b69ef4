"""Exact accounting under random fault schedules: every item ends in exactly one outcome.

Hypothesis drives the pipeline through random calls, replies, faults, clock jumps, flush
windows and a close deadline. At every step the ledger adds up
(taken = resolved + held + in flight); at the end every item is resolved, and the flush
results together report each outcome exactly once.
"""

from __future__ import annotations

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pug_grpc._ingest.outcomes import OUTCOMES, Tally
from pug_grpc._ingest.settings import BatchSettings
from pug_grpc._retry import RetrySettings
from tests.support.pipeline import harness

FAULTS = [
    (grpc.StatusCode.UNAVAILABLE, "connection refused"),
    (grpc.StatusCode.INTERNAL, "failed to accept events"),
    (grpc.StatusCode.INVALID_ARGUMENT, "event[0]: kind"),
    (grpc.StatusCode.UNAUTHENTICATED, "failed to validate API key"),
    (grpc.StatusCode.UNAUTHENTICATED, "invalid API key"),
    (grpc.StatusCode.PERMISSION_DENIED, "no"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, ""),
]

operation = st.one_of(
    st.tuples(st.just("track"), st.integers(1, 1500)),
    st.tuples(st.just("identify"), st.integers(1, 3)),
    st.tuples(st.just("step"), st.just(0)),
    st.tuples(st.just("ok"), st.integers(0, 7)),
    st.tuples(st.just("short"), st.integers(0, 7)),
    st.tuples(st.just("drops"), st.integers(0, 7)),
    st.tuples(st.just("fail"), st.integers(0, 7 * len(FAULTS) - 1)),
    st.tuples(st.just("advance"), st.integers(0, 40)),
    st.tuples(st.just("flush"), st.just(0)),
    st.tuples(st.just("claim"), st.just(0)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(operation, min_size=1, max_size=60),
    end_by_deadline=st.booleans(),
    max_bytes=st.sampled_from([None, 400_000]),
)
def test_every_item_ends_in_exactly_one_outcome_reported_once(
    ops: list[tuple[str, int]], end_by_deadline: bool, max_bytes: int | None
) -> None:
    h = harness(
        batch=BatchSettings(max_in_flight=3, max_size=50),
        retry=RetrySettings(initial_backoff=0.5, max_backoff=4.0, max_elapsed=30.0),
        jitter=0.5,
        max_bytes=max_bytes,
    )
    claimed = Tally()
    claims_pending = 0

    def claim(up_to: int) -> None:
        nonlocal claims_pending
        with h.pipeline._lock:
            result = h.ledger.claim(up_to, completed=False)
        for outcome in OUTCOMES:
            if outcome != "dropped":
                claimed.add(outcome, getattr(result, outcome))
        claimed.add("dropped", result.dropped, result.dropped_by_reason)
        claims_pending = result.pending

    for op, arg in ops:
        if op == "track":
            h.track(arg)
        elif op == "identify":
            for _ in range(arg):
                with h.pipeline._lock:
                    window = h.ledger.take(1)
                h.pipeline.take_identify(b"\x0a\x06user-1", window)
        elif op == "step":
            h.step()
        elif op in ("ok", "short", "drops", "fail"):
            open_calls = h.sink.open()
            if open_calls:
                index = (
                    arg % len(open_calls)
                    if op != "fail"
                    else (arg // len(FAULTS)) % len(open_calls)
                )
                call = open_calls[index]
                count = call.record.count
                if op == "ok":
                    call.ok()
                elif op == "short":
                    call.ok(accepted=count // 2)
                elif op == "drops":
                    call.ok(
                        accepted=count - count // 3, dropped=count // 3, salt_unavailable=count // 3
                    )
                else:
                    call.fail(*FAULTS[arg % len(FAULTS)])
        elif op == "advance":
            h.clock.advance(arg / 4)
        elif op == "flush":
            h.pipeline.seal()
            with h.pipeline._lock:
                h.ledger.close_window()
        else:
            claim(h.ledger.window)
        h.check_accounts()

    # The end: either a close deadline, or a healthy server until everything is resolved.
    if end_by_deadline:
        h.pipeline.abandon()
    else:
        h.pipeline.urgent = True
        for _ in range(10_000):
            h.pipeline.seal()
            wake = h.step()
            for call in h.sink.open():
                call.ok()
            if h.pipeline.idle():
                break
            if wake is not None and not h.sink.open():
                h.clock.now = max(h.clock.now, wake)
        assert h.pipeline.idle()
    h.check_accounts()
    ledger = h.ledger
    assert ledger.held == 0
    assert ledger.in_flight == 0
    assert ledger.totals.resolved() == ledger.taken
    claim(ledger.window)
    assert claims_pending == 0
    for outcome in OUTCOMES:
        assert getattr(claimed, outcome) == getattr(ledger.totals, outcome), outcome
    assert claimed.dropped_by_reason == ledger.totals.dropped_by_reason
    assert sum(ledger.totals.dropped_by_reason.values()) == ledger.totals.dropped
