"""The tenacity retry policy, against scripted failures of a real loopback server."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc

from pug_grpc._ingest.retry import (
    PERMANENT_CODES,
    TRANSIENT_CODES,
    call_with_retry,
    is_transient,
    pushback_seconds,
)
from pug_grpc._ingest.settings import MAX_BATCH_EVENTS, BatchSettings, RetrySettings
from tests.support.loopback import FakeClock, Loopback, channel_to, serve, trailers


@pytest.fixture
def lb() -> Iterator[Loopback]:
    with serve() as server:
        yield server


@pytest.fixture
def call(lb: Loopback) -> Iterator[events_pb2_grpc.EventsServiceStub]:
    with channel_to(lb) as channel:
        yield events_pb2_grpc.EventsServiceStub(channel)


def _attempt(stub: events_pb2_grpc.EventsServiceStub) -> events_pb2.BatchCreateResponse:
    return stub.BatchCreate(events_pb2.BatchCreateRequest(), timeout=5)


class Jitter:
    """Records each jitter range and answers its upper bound (the worst case)."""

    def __init__(self) -> None:
        self.ranges: list[tuple[float, float]] = []

    def __call__(self, low: float, high: float) -> float:
        self.ranges.append((low, high))
        return high


@pytest.mark.parametrize("code", sorted(TRANSIENT_CODES, key=lambda c: c.name))
def test_transient_codes_are_retried(
    code: grpc.StatusCode, lb: Loopback, call: events_pb2_grpc.EventsServiceStub
) -> None:
    lb.recorder.fail_next(code, code)
    clock, retried = FakeClock(), []
    settings = RetrySettings(initial_backoff=0.5, max_backoff=10, multiplier=2)
    result = call_with_retry(
        lambda: _attempt(call),
        settings=settings,
        clock=clock,
        sleep=clock.sleep,
        uniform=Jitter(),
        on_retry=lambda e, d: retried.append(d),
    )
    assert result.accepted == 0
    assert len(lb.recorder.calls) == 3
    assert clock.sleeps == [0.5, 1.0]  # exponential: initial * multiplier ** (n - 1)
    assert retried == [0.5, 1.0]


@pytest.mark.parametrize("code", sorted(PERMANENT_CODES, key=lambda c: c.name))
def test_permanent_codes_are_not_retried(
    code: grpc.StatusCode, lb: Loopback, call: events_pb2_grpc.EventsServiceStub
) -> None:
    lb.recorder.fail_next(code)
    clock = FakeClock()
    with pytest.raises(grpc.RpcError) as info:
        call_with_retry(lambda: _attempt(call), settings=RetrySettings(), clock=clock,
                        sleep=clock.sleep)  # fmt: skip
    assert info.value.code() == code
    assert len(lb.recorder.calls) == 1
    assert clock.sleeps == []


def test_non_grpc_errors_are_not_retried() -> None:
    clock = FakeClock()
    calls = []

    def boom() -> None:
        calls.append(1)
        raise RuntimeError("not gRPC")

    with pytest.raises(RuntimeError):
        call_with_retry(boom, settings=RetrySettings(), clock=clock, sleep=clock.sleep)
    assert calls == [1]


def test_full_jitter_within_a_capped_exponential(
    lb: Loopback, call: events_pb2_grpc.EventsServiceStub
) -> None:
    lb.recorder.fail_next(*[grpc.StatusCode.UNAVAILABLE] * 6)
    clock, jitter = FakeClock(), Jitter()
    settings = RetrySettings(
        max_attempts=10, initial_backoff=1, max_backoff=5, multiplier=3, max_elapsed=1e6
    )
    call_with_retry(lambda: _attempt(call), settings=settings, clock=clock, sleep=clock.sleep,
                    uniform=jitter)  # fmt: skip
    assert jitter.ranges == [(0.0, 1), (0.0, 3), (0.0, 5), (0.0, 5), (0.0, 5), (0.0, 5)]


def test_jitter_is_random_by_default(lb: Loopback, call: events_pb2_grpc.EventsServiceStub) -> None:
    lb.recorder.fail_next(*[grpc.StatusCode.UNAVAILABLE] * 5)
    clock = FakeClock()
    settings = RetrySettings(max_attempts=6, initial_backoff=1, max_backoff=1)
    call_with_retry(lambda: _attempt(call), settings=settings, clock=clock, sleep=clock.sleep)
    assert all(0 <= s <= 1 for s in clock.sleeps)
    assert len(set(clock.sleeps)) > 1


def test_max_attempts(lb: Loopback, call: events_pb2_grpc.EventsServiceStub) -> None:
    lb.recorder.fail_next(*[grpc.StatusCode.UNAVAILABLE] * 10)
    clock = FakeClock()
    with pytest.raises(grpc.RpcError):
        call_with_retry(lambda: _attempt(call), settings=RetrySettings(max_attempts=3),
                        clock=clock, sleep=clock.sleep)  # fmt: skip
    assert len(lb.recorder.calls) == 3


def test_total_time_is_capped(lb: Loopback, call: events_pb2_grpc.EventsServiceStub) -> None:
    lb.recorder.fail_next(*[grpc.StatusCode.UNAVAILABLE] * 50)
    clock = FakeClock()
    settings = RetrySettings(
        max_attempts=100, initial_backoff=4, max_backoff=4, multiplier=1, max_elapsed=10
    )
    start = clock.now
    with pytest.raises(grpc.RpcError):
        call_with_retry(lambda: _attempt(call), settings=settings, clock=clock,
                        sleep=clock.sleep, uniform=Jitter())  # fmt: skip
    assert clock.sleeps == [4, 4, 2]  # the last wait is shortened to end at the cap
    assert clock.now - start == 10
    assert len(lb.recorder.calls) == 4


def test_pushback_trailer_sets_the_wait(
    lb: Loopback, call: events_pb2_grpc.EventsServiceStub
) -> None:
    lb.recorder.fail_next(trailers(grpc_retry_pushback_ms="1500"))
    clock = FakeClock()
    call_with_retry(lambda: _attempt(call), settings=RetrySettings(), clock=clock,
                    sleep=clock.sleep, uniform=Jitter())  # fmt: skip
    assert clock.sleeps == [1.5]
    assert len(lb.recorder.calls) == 2


@pytest.mark.parametrize("value", ["-1", "soon", "1.5"])
def test_negative_or_garbled_pushback_means_do_not_retry(
    value: str, lb: Loopback, call: events_pb2_grpc.EventsServiceStub
) -> None:
    lb.recorder.fail_next(trailers(grpc_retry_pushback_ms=value))
    clock = FakeClock()
    with pytest.raises(grpc.RpcError) as info:
        call_with_retry(lambda: _attempt(call), settings=RetrySettings(), clock=clock,
                        sleep=clock.sleep)  # fmt: skip
    assert pushback_seconds(info.value) == float("inf")
    assert not is_transient(info.value)
    assert len(lb.recorder.calls) == 1


def test_pushback_longer_than_the_cap_stops(
    lb: Loopback, call: events_pb2_grpc.EventsServiceStub
) -> None:
    lb.recorder.fail_next(trailers(grpc_retry_pushback_ms="60000"))
    clock = FakeClock()
    with pytest.raises(grpc.RpcError):
        call_with_retry(lambda: _attempt(call), settings=RetrySettings(max_elapsed=30),
                        clock=clock, sleep=clock.sleep)  # fmt: skip
    assert clock.sleeps == []


def test_abort_stops_retrying(lb: Loopback, call: events_pb2_grpc.EventsServiceStub) -> None:
    lb.recorder.fail_next(*[grpc.StatusCode.UNAVAILABLE] * 5)
    clock = FakeClock()
    with pytest.raises(grpc.RpcError):
        call_with_retry(lambda: _attempt(call), settings=RetrySettings(), clock=clock,
                        sleep=clock.sleep, should_abort=lambda: True)  # fmt: skip
    assert len(lb.recorder.calls) == 1


def test_settings_are_validated_and_clamped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="pug_grpc"):
        assert BatchSettings(max_size=5000).max_size == MAX_BATCH_EVENTS
    assert "clamp" in caplog.text or "limit" in caplog.text
    defaults = BatchSettings()
    assert (defaults.max_size, defaults.max_queue_size) == (100, 10_000)
    for bad in (
        lambda: BatchSettings(max_size=0),
        lambda: BatchSettings(max_wait=-1),
        lambda: BatchSettings(max_queue_size=True),
        lambda: RetrySettings(max_attempts=0),
        lambda: RetrySettings(multiplier=0.5),
        lambda: RetrySettings(initial_backoff=5, max_backoff=1),
        lambda: RetrySettings(max_elapsed=float("nan")),
    ):
        with pytest.raises(ValueError, match="must be"):
            bad()
    with pytest.raises(AttributeError):
        defaults.max_size = 3  # type: ignore[misc]
    assert RetrySettings(initial_backoff=1, multiplier=10, max_backoff=7).backoff_cap(5000) == 7
