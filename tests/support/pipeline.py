"""Drive the ingestion pipeline by hand: a sink whose calls the test answers, fake statuses.

The pipeline is the batch step without its thread: the test calls ``step()``, answers the
requests the sink recorded (``ok``, ``fail``), and advances the fake clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from pug_grpc.gen.sdk.events.v1 import events_pb2

from pug_grpc._ingest.batches import Record
from pug_grpc._ingest.outcomes import OUTCOMES, Ledger
from pug_grpc._ingest.pipeline import Attempt, Pipeline
from pug_grpc._ingest.reports import safe_reporter
from pug_grpc._ingest.settings import BatchSettings
from pug_grpc._ingest.sink import Reply
from pug_grpc._ingest.storage import MemoryStorage
from pug_grpc._retry import RetrySettings
from tests.support.clock import FakeClock

DEFAULT_RETRY = RetrySettings()


class Status(grpc.RpcError):
    """A failed call as grpcio reports it: code, details and trailers."""

    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


@dataclass(eq=False)
class PendingCall:
    record: Record
    done: Callable[[Reply], None]
    cancelled: bool = False
    answered: bool = False

    @property
    def events(self) -> list[events_pb2.Event]:
        return list(events_pb2.BatchCreateRequest.FromString(self.record.payload).events)

    def ok(self, accepted: int | None = None, dropped: int = 0, **reasons: int) -> None:
        count = self.record.count if accepted is None else accepted
        self._answer(
            Reply(
                events_pb2.BatchCreateResponse(
                    accepted=count, dropped=dropped, dropped_by_reason=reasons
                )
            )
        )

    def fail(self, code: grpc.StatusCode, details: str = "") -> None:
        self._answer(Reply(error=Status(code, details)))

    def _answer(self, reply: Reply) -> None:
        assert not self.answered, "answered twice"
        self.answered = True
        self.done(reply)

    def cancel(self) -> bool:
        self.cancelled = True
        if not self.answered:
            self.fail(grpc.StatusCode.CANCELLED, "cancelled")
        return True


class ManualSink:
    """Records every request; nothing is answered until the test says so."""

    def __init__(self) -> None:
        self.calls: list[PendingCall] = []

    def start(self, record: Record, done: Callable[[Reply], None]) -> PendingCall:
        call = PendingCall(record, done)
        self.calls.append(call)
        return call

    def open(self) -> list[PendingCall]:
        return [c for c in self.calls if not c.answered]


@dataclass
class Harness:
    """A pipeline with a manual sink, a fake clock and collected reports."""

    pipeline: Pipeline
    sink: ManualSink
    clock: FakeClock
    ledger: Ledger
    reports: list[tuple[BaseException, list[Any]]] = field(default_factory=list)
    window: int = 0

    def track(
        self,
        count: int = 1,
        *,
        props: Mapping[str, Any] | None = None,
        ids: list[str | None] | None = None,
    ) -> None:
        raws = []
        for n in range(count):
            given = ids[n] if ids is not None else None
            raws.append(
                (
                    given,
                    "test.event",
                    f"user-{n}",
                    "0190a3c2-0000-7000-8000-000000000000",
                    1_700_000_000_000_000_000 + n,
                    dict(props or {"n": n}),
                )
            )
        with self.pipeline._lock:
            window = self.ledger.take(count)
        self.pipeline.take_events(raws, window)

    def step(self) -> float | None:
        return self.pipeline.step()

    def reasons(self) -> list[str]:
        return [getattr(e, "reason", type(e).__name__) for e, _ in self.reports]

    def outcomes(self) -> dict[str, int]:
        return {
            o: getattr(self.ledger.totals, o) for o in OUTCOMES if getattr(self.ledger.totals, o)
        }

    def check_accounts(self) -> None:
        """Every item taken is resolved, held or in flight: never two, never none."""
        ledger = self.ledger
        assert ledger.taken == ledger.totals.resolved() + ledger.held + ledger.in_flight
        assert ledger.in_flight == sum(a.record.count for a in self.pipeline.in_flight.values())
        assert ledger.held >= 0


def harness(
    *,
    batch: BatchSettings | None = None,
    retry: RetrySettings | None = DEFAULT_RETRY,
    jitter: float = 1.0,
    max_bytes: int | None = None,
) -> Harness:
    """``jitter`` picks the fraction of the backoff cap each wait takes (1.0: the cap)."""
    settings = batch or BatchSettings()
    clock = FakeClock()
    sink = ManualSink()
    ledger = Ledger()
    reports: list[tuple[BaseException, list[Any]]] = []
    box: dict[str, Pipeline] = {}

    def deliver(attempt: Attempt, reply: Reply) -> None:
        box["p"].on_reply(attempt, reply)

    pipeline = Pipeline(
        sink=sink,
        storage=MemoryStorage(max_bytes=max_bytes or settings.max_queue_bytes),
        batch=settings,
        retry=retry,
        ledger=ledger,
        lock=threading.RLock(),
        report=safe_reporter(lambda e, items: reports.append((e, list(items)))),
        deliver_reply=deliver,
        clock=clock,
        uniform=lambda low, high: low + (high - low) * jitter,
    )
    box["p"] = pipeline
    return Harness(pipeline, sink, clock, ledger, reports)
