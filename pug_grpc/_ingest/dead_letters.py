"""Items that will not be delivered: counted once in the ledger, logged, reported to on_error.

Covers an item too large for any request, a request dead-lettered (permanent error, spent
budget, a connection problem), the oldest requests dropped from a full queue, and what is left
when the close deadline passes (one report per group of at most ``MAX_REPORTED_ITEMS``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc

from pug_grpc._ingest.attempts import Attempt, part_done
from pug_grpc._ingest.batches import Record, messages_of
from pug_grpc._ingest.outcomes import (
    QUEUE_OVERFLOW,
    TOO_LARGE,
    UNCONFIRMED,
    Ledger,
    PugDeliveryError,
)
from pug_grpc._ingest.reports import MAX_REPORTED_ITEMS, SafeReporter, describe, public_error
from pug_grpc._ingest.storage import Storage

__all__ = ["DeadLetters"]

_log = logging.getLogger("pug_grpc.pipeline")


class DeadLetters:
    """The failure side of the pipeline (same thread; ``lock`` guards ``ledger``)."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        lock: Any,
        report: SafeReporter,
        storage: Storage,
        max_request_bytes: int,
    ) -> None:
        self._ledger = ledger
        self._lock = lock
        self._report = report
        self._storage = storage
        self._max_request_bytes = max_request_bytes
        self._problems_said: set[str] = set()

    def resolve_items(self, window: int, outcome: str, count: int) -> None:
        with self._lock:
            self._ledger.resolve(window, outcome, count)

    def too_large(self, record: Record) -> None:
        """Dead-letter an item no request can carry, at once: every attempt would fail."""
        self.resolve_items(record.window, "dead_lettered", record.count)
        error = PugDeliveryError(
            f"{record.count} item(s) larger on their own than a request may be "
            f"(max_request_bytes={self._max_request_bytes}); not sent",
            reason=TOO_LARGE,
            code=grpc.StatusCode.INVALID_ARGUMENT,
        )
        _log.warning("%s", error.message)
        self._report(error, self.items([record]))

    def dead_letter(
        self,
        attempt: Attempt,
        error: BaseException,
        *,
        in_flight: bool,
        message: str | None = None,
    ) -> None:
        record = attempt.record
        with self._lock:
            self._ledger.resolve(record.window, "dead_lettered", record.count, in_flight=in_flight)
        part_done(attempt, self._storage)
        reported = public_error(error)
        if message is not None:
            # Said once at ERROR (the fix is in the message); every later batch at DEBUG.
            level = logging.DEBUG if message in self._problems_said else logging.ERROR
            self._problems_said.add(message)
            _log.log(level, "%d item(s) not delivered: %s", record.count, message)
        else:
            _log.warning("%d item(s) not delivered: %s", record.count, describe(error))
        self._report(reported, self.items([record]))

    def overflowed(self, records: Sequence[Record]) -> None:
        """The storage dropped its oldest ``records`` to make room."""
        count = sum(r.count for r in records)
        with self._lock:
            for record in records:
                self._ledger.resolve(record.window, "overflowed", record.count)
        _log.warning("queue full: dropped the %d oldest item(s)", count)
        error = PugDeliveryError(
            f"the queue was full: {count} oldest item(s) dropped",
            reason=QUEUE_OVERFLOW,
            code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        self._report(error, self.items(records))

    def report_left(
        self, attempts: Sequence[Attempt], outcome: str, reason: str, *, in_flight: bool
    ) -> None:
        """Count and report what the close deadline left ``unconfirmed`` or ``undelivered``."""
        if not attempts:
            return
        with self._lock:
            for attempt in attempts:
                self._ledger.resolve(
                    attempt.record.window, outcome, attempt.record.count, in_flight=in_flight
                )
        # One report per group of at most MAX_REPORTED_ITEMS items (a request holds at most
        # 1,000), so that every item left at the deadline is handed to on_error, none counted
        # only.
        groups: list[list[Attempt]] = [[]]
        held = 0
        for attempt in attempts:
            if groups[-1] and held + attempt.record.count > MAX_REPORTED_ITEMS:
                groups.append([])
                held = 0
            groups[-1].append(attempt)
            held += attempt.record.count
        for group in groups:
            count = sum(a.record.count for a in group)
            if reason == UNCONFIRMED:
                text = f"{count} item(s) sent with no reply before the deadline; they may be stored"
            elif self._storage.persistent:
                text = (
                    f"{count} item(s) not sent before the deadline; they stay in "
                    f"{self._storage!r} and a later client on it sends them"
                )
            else:
                text = f"{count} item(s) not sent before the deadline"
            _log.warning("%s", text)
            self._report(
                PugDeliveryError(text, reason=reason, code=grpc.StatusCode.DEADLINE_EXCEEDED),
                self.items([a.record for a in group]),
            )

    def items(self, records: Sequence[Record]) -> list[Any]:
        """The messages of ``records`` for a report (none when nobody receives them)."""
        if not self._report.wants_items:
            return []
        out: list[Any] = []
        for record in records:
            if len(out) >= MAX_REPORTED_ITEMS:
                break
            try:
                out.extend(messages_of(record)[: MAX_REPORTED_ITEMS - len(out)])
            except Exception:
                _log.debug("a record could not be decoded for a report", exc_info=True)
        return out
