"""Backpressure, push-back, permanent errors, a refused event inside a batch, and deadlines.

Gaps between attempts are measured on the server (when each call arrived), and compared with
the waits the client logged (``pug_grpc.pipeline`` at INFO: the exact wait it chose).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any, cast

import grpc
import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2

from pug_grpc import (
    BatchSettings,
    PugAuthenticationError,
    PugError,
    PugPermissionError,
    RetrySettings,
)
from pug_grpc.testing import LocalServer
from tests.support.reliability import (
    WRONG_KEY,
    LeakGuard,
    audit,
    batch_of,
    client,
    pug_server,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

ONE_BATCH = BatchSettings(max_size=100, max_wait=5.0)
RETRY_LOG = "retrying in %.2fs after %s"


def arrival_gaps(server: LocalServer) -> list[float]:
    times = [c.received_at for c in server.calls_to("BatchCreate")]
    return [b - a for a, b in itertools.pairwise(times)]


def logged_waits(guard: LeakGuard) -> list[tuple[float, str]]:
    """The waits the worker chose before each retry, with the error it retried."""
    return [
        (float(cast(tuple[Any, ...], r.args)[0]), str(cast(tuple[Any, ...], r.args)[1]))
        for r in guard.records
        if r.name == "pug_grpc.pipeline" and r.msg == RETRY_LOG
    ]


def track_numbered(pug: Any, n: int, kind: str = "bp.test", **extra: Any) -> None:
    for seq in range(n):
        pug.track("user-1", kind, {"seq": seq, **extra.get("props", {})})


def test_resource_exhausted_backs_off_exponentially_with_jitter_and_a_cap(
    leak_guard: LeakGuard,
) -> None:
    retry = RetrySettings(
        max_attempts=12, initial_backoff=0.025, multiplier=2.0, max_backoff=0.2, max_elapsed=30
    )
    caps = [retry.backoff_cap(n) for n in range(1, 12)]
    assert caps[:5] == [0.025, 0.05, 0.1, 0.2, 0.2]
    reports = leak_guard.reports()
    with pug_server() as server:
        server.faults.fail_next("BatchCreate", times=11, code=grpc.StatusCode.RESOURCE_EXHAUSTED)
        pug = client(server, batch=ONE_BATCH, retry=retry, on_error=reports)
        track_numbered(pug, 10)
        assert pug.flush(timeout=20).completed
        calls = server.calls_to("BatchCreate")
        assert [c.code for c in calls] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 11 + [
            grpc.StatusCode.OK
        ]
        gaps = arrival_gaps(server)
        waits = logged_waits(leak_guard)
        assert [why for _, why in waits] == ["RESOURCE_EXHAUSTED: injected failure"] * 11
        delays = [d for d, _ in waits]
        print("caps  ", [f"{c:.3f}" for c in caps])
        print("chosen", [f"{d:.3f}" for d in delays])
        print("gaps  ", [f"{g:.3f}" for g in gaps])
        for n, (cap, delay, gap) in enumerate(zip(caps, delays, gaps, strict=True), 1):
            assert 0.0 <= delay <= cap, f"retry {n}: wait {delay} above its cap {cap}"
            assert gap >= delay - 0.005, f"retry {n}: resent after {gap}s, before its {delay}s wait"
            # Scheduling slack on a shared 2-core machine; an uncapped wait would reach 25 s.
            assert gap <= cap + 0.5, f"retry {n}: {gap}s gap, cap {cap}"
        # Jitter: waits are drawn, not fixed (the chance of this failing by luck is ~1e-9).
        assert sum(d < 0.95 * c for d, c in zip(delays, caps, strict=True)) >= 8
        assert len({round(d, 4) for d in delays}) >= 9
        # Growth: a later (capped) wait exceeds what the first two caps allow (fails by luck
        # with probability (0.05 / 0.2) ** 8, about 1.5e-5).
        assert max(delays[3:]) > caps[1]
        assert max(gaps[3:]) > caps[1]
        stats = pug.stats()
        assert (stats.retried, stats.sent, stats.dead_lettered) == (11, 10, 0)
        assert audit(server.events, 10).missing == []
        assert reports.all == []
        pug.close()


def test_retry_pushback_trailer_is_honoured(leak_guard: LeakGuard) -> None:
    # Without the trailer every wait would be at most 10 ms.
    retry = RetrySettings(max_attempts=5, initial_backoff=0.01, max_backoff=0.01, max_elapsed=30)
    reports = leak_guard.reports()
    with pug_server() as server:
        server.faults.fail_next(
            "BatchCreate", times=2, code=grpc.StatusCode.RESOURCE_EXHAUSTED, pushback_ms=400
        )
        pug = client(server, batch=ONE_BATCH, retry=retry, on_error=reports)
        track_numbered(pug, 10)
        assert pug.flush(timeout=10).completed
        gaps = arrival_gaps(server)
        print("gaps with a 400 ms push-back:", [f"{g:.3f}" for g in gaps])
        assert len(gaps) == 2
        assert all(0.4 - 0.005 <= g <= 0.4 + 0.15 for g in gaps), gaps
        assert [d for d, _ in logged_waits(leak_guard)] == [0.4, 0.4]
        assert pug.stats().sent == 10

        # A negative push-back means "do not retry": dead-lettered after one attempt.
        server.reset()
        server.faults.fail_next(
            "BatchCreate", times=1, code=grpc.StatusCode.RESOURCE_EXHAUSTED, pushback_ms=-1
        )
        track_numbered(pug, 5, kind="bp.refused")
        result = pug.flush(timeout=10)
        assert len(server.calls_to("BatchCreate")) == 1
        assert result.dead_lettered == 5
        (report,) = reports.all
        assert isinstance(report.error, PugError)
        assert report.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(report.items) == result.dead_lettered
        pug.close()


@pytest.mark.parametrize(
    ("options", "injected", "code", "error_type"),
    [
        ({"api_key": WRONG_KEY}, False, grpc.StatusCode.UNAUTHENTICATED, PugAuthenticationError),
        # Pug ignores x-project-id next to an API key, so the denial is injected.
        ({}, True, grpc.StatusCode.PERMISSION_DENIED, PugPermissionError),
    ],
    ids=["unauthenticated", "permission-denied"],
)
def test_permanent_errors_dead_letter_the_events_to_on_error(
    leak_guard: LeakGuard,
    options: dict[str, Any],
    injected: bool,
    code: grpc.StatusCode,
    error_type: type[PugError],
) -> None:
    reports = leak_guard.reports()
    with pug_server() as server:
        if injected:
            server.faults.fail_next("BatchCreate", code=code)
        pug = client(server, batch=ONE_BATCH, on_error=reports, **options)
        track_numbered(pug, 30)
        result = pug.flush(timeout=10)
        assert result.completed
        calls = server.calls_to("BatchCreate")
        assert [c.code for c in calls] == [code], "a permanent error is never retried"
        sent_ids = [e.event_id for e in batch_of(calls[0]).events]
        assert result.dead_lettered == len(sent_ids) == 30
        (report,) = reports.all
        assert sorted(e.event_id for e in report.items) == sorted(sent_ids)  # type: ignore[attr-defined]
        assert isinstance(report.error, error_type)
        assert report.error.code == code
        assert report.error.request_id  # the server's correlation id came through
        assert [e.event_id for e in report.items] == sent_ids  # type: ignore[attr-defined]
        assert all(isinstance(e, events_pb2.Event) for e in report.items)
        assert [e.custom_properties["seq"].int_value for e in report.items] == list(range(30))  # type: ignore[attr-defined]
        stats = pug.stats()
        assert (stats.dead_lettered, stats.retried, stats.sent) == (30, 0, 0)
        assert server.events == []
        leak_guard.add(repr(pug), *(repr(r.error) for r in reports.all))
        pug.close()


class Poison(grpc.UnaryUnaryClientInterceptor):
    """Makes any event carrying a ``poison`` property invalid on the wire (a bad ``kind``), the
    way a server rule the client does not know about would refuse it."""

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        if isinstance(request, events_pb2.BatchCreateRequest):
            copy = events_pb2.BatchCreateRequest()
            copy.CopyFrom(request)
            for event in copy.events:
                if "poison" in event.custom_properties:
                    event.kind = "refused kind!"
            request = copy
        return continuation(details, request)


def test_one_refused_event_is_bisected_out_and_the_rest_delivered(
    leak_guard: LeakGuard,
) -> None:
    reports = leak_guard.reports()
    with pug_server() as server:
        pug = client(server, batch=ONE_BATCH, on_error=reports, interceptors=[Poison()])
        for seq in range(100):
            props = {"seq": seq, "poison": True} if seq == 37 else {"seq": seq}
            pug.track("user-1", "bisect.test", props)
        result = pug.flush(timeout=10)
        assert result.completed
        calls = server.calls_to("BatchCreate")
        refused = [c for c in calls if c.code == grpc.StatusCode.INVALID_ARGUMENT]
        assert refused, "the server never refused anything: the test proved nothing"
        assert len(batch_of(refused[0]).events) == 100
        assert len(calls) <= 1 + 2 * 7  # halving 100 events down to one takes 7 levels
        found = audit(server.events, 100)
        assert found.missing == [37]
        assert found.duplicated_ids == {}
        (report,) = reports.all
        assert isinstance(report.error, PugError)
        assert report.error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert report.error.reason == "INVALID_EVENT_BATCH"
        assert [e.custom_properties["seq"].int_value for e in report.items] == [37]  # type: ignore[attr-defined]
        assert result.dead_lettered == len(report.items) == 1
        assert result.accepted == 99
        stats = pug.stats()
        assert (stats.sent, stats.dead_lettered) == (99, 1)
        pug.close()


def test_hanging_server_hits_the_call_deadline_and_is_retried(
    leak_guard: LeakGuard,
) -> None:
    reports = leak_guard.reports()
    with pug_server() as server:
        server.faults.set_latency(3.0, "BatchCreate")  # the first call hangs for 3 s
        batch = BatchSettings(max_size=10, max_wait=5.0)  # ten events: sent at once
        pug = client(server, batch=batch, on_error=reports, timeout=0.4)
        start = time.monotonic()
        track_numbered(pug, 10)
        assert wait_until(lambda: len(server.calls) >= 1, 5)
        server.faults.set_latency(0, "BatchCreate")  # the server recovers; the call still hangs
        result = pug.flush(timeout=10)
        elapsed = time.monotonic() - start
        assert result.completed
        assert result.accepted == 10
        # Delivered after the 0.4 s deadline and a retry, long before the hung call returns.
        assert 0.4 <= elapsed < 2.5, elapsed
        whys = [why for _, why in logged_waits(leak_guard)]
        assert whys
        assert whys[0].startswith("DEADLINE_EXCEEDED")
        assert pug.stats().retried >= 1
        assert len(server.calls_to("BatchCreate")) >= 2
        assert audit(server.events, 10).missing == []
        assert reports.all == []
        pug.close()
