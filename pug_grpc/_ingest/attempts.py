"""One request's delivery state, and the split of a failed request into halves.

A record leased from storage is acknowledged once every part of it is resolved: a request
split after ``INVALID_ARGUMENT`` (or ``INTERNAL`` twice on a heavy request) becomes two
attempts sharing one :class:`Lease`, each keeping the retry budget of the request it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from pug_grpc._ingest.batches import Record, frames
from pug_grpc._ingest.settings import SERVER_MESSAGE_CAP
from pug_grpc._ingest.sink import Call
from pug_grpc._ingest.storage import Storage

__all__ = ["Attempt", "Lease", "could_be_too_heavy", "halves", "part_done"]

SPLIT_COST_PER_EVENT: Final = 1024
"""Bytes per event the server might add, at worst, when judging whether size could explain an
``INTERNAL`` answer (the request budget counts a more likely 512)."""


class Lease:
    """A record leased from storage, acknowledged once all its parts are resolved."""

    __slots__ = ("parts", "record")

    def __init__(self, record: Record) -> None:
        self.record = record
        self.parts = 1


@dataclass(eq=False, slots=True)
class Attempt:
    """The delivery state of one request: a leased record, or part of one after a split."""

    record: Record
    lease: Lease
    attempts: int = 0
    first_attempt: float | None = None
    internal_failures: int = 0
    ready_at: float = 0.0
    call: Call | None = None
    abandoned: bool = False
    requeue: bool = False
    """Cancelled by us (before a fork): resend without counting an attempt."""
    probe: bool = False
    """Started while probing an outage."""
    last_error: BaseException | None = None
    """Why its last attempt failed (what a spent budget reports)."""
    order: int = field(default=0)

    def __lt__(self, other: Attempt) -> bool:  # heap order: ready time, then age
        return (self.ready_at, self.order) < (other.ready_at, other.order)


def could_be_too_heavy(record: Record) -> bool:
    """Whether the request could weigh the server's message cap with what the server adds."""
    return len(record.payload) + record.count * SPLIT_COST_PER_EVENT >= SERVER_MESSAGE_CAP


def halves(attempt: Attempt, *, ready_at: float) -> tuple[Attempt, Attempt]:
    """The two halves of ``attempt``, sharing its lease (one part becomes two)."""
    record = attempt.record
    parts = frames(record.payload)
    mid = len(parts) // 2
    attempt.lease.parts += 1
    first, second = (
        Attempt(
            record.with_payload(b"".join(half), len(half)),
            attempt.lease,
            attempts=attempt.attempts,
            first_attempt=attempt.first_attempt,
            ready_at=ready_at,
            order=attempt.order,
            last_error=attempt.last_error,
        )
        for half in (parts[:mid], parts[mid:])
    )
    return first, second


def part_done(attempt: Attempt, storage: Storage) -> None:
    """One part of a lease is resolved: acknowledge the record once none is left."""
    lease = attempt.lease
    lease.parts -= 1
    if lease.parts == 0:
        storage.ack(lease.record)
