"""What the ingestion client reports: ``on_error`` payloads, ``stats()`` and ``flush()`` results."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import grpc

from pug_grpc._errors import CLIENT_DOMAIN, PugError

__all__ = [
    "CLIENT_CLOSED",
    "EVENTS_DROPPED",
    "INVALID_EVENT",
    "INVALID_IDENTIFY",
    "QUEUE_OVERFLOW",
    "TOO_LARGE",
    "UNDELIVERED",
    "FlushResult",
    "PugDeliveryError",
    "Stats",
]

INVALID_EVENT: Final = "INVALID_EVENT"
INVALID_IDENTIFY: Final = "INVALID_IDENTIFY"
QUEUE_OVERFLOW: Final = "QUEUE_OVERFLOW"
EVENTS_DROPPED: Final = "EVENTS_DROPPED"
CLIENT_CLOSED: Final = "CLIENT_CLOSED"
UNDELIVERED: Final = "UNDELIVERED"
TOO_LARGE: Final = "TOO_LARGE"


class PugDeliveryError(PugError):
    """A report from the ingestion client itself (``reason`` says which).

    ``INVALID_EVENT`` / ``INVALID_IDENTIFY``: refused at call time, never queued.
    ``QUEUE_OVERFLOW``: the oldest queued items were dropped to make room.
    ``EVENTS_DROPPED``: the server acknowledged a batch but dropped ``dropped`` of its events,
    ``dropped_by_reason`` says why (it does not say which events).
    ``CLIENT_CLOSED``: called after ``close()``.
    ``UNDELIVERED``: still queued or in flight when ``close()`` or exit ran out of time.
    ``TOO_LARGE``: one event (or identify call) alone is larger than ``max_request_bytes``;
    never sent, since no request could carry it.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        dropped_by_reason: Mapping[str, int] | None = None,
        domain: str = CLIENT_DOMAIN,
    ) -> None:
        counts = dict(dropped_by_reason or {})
        super().__init__(
            message,
            code=code,
            reason=reason,
            domain=domain,
            metadata={k: str(v) for k, v in counts.items()},
        )
        self.dropped_by_reason: Mapping[str, int] = MappingProxyType(counts)

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_reason.values())


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters since the client was created (or since the fork that made this process).

    ``enqueued``: events and identify calls accepted by ``track``/``identify``/``alias``.
    ``sent``: events in ``BatchCreate`` requests the server answered OK; of these ``accepted``
    were stored and ``dropped`` were not (``dropped_by_reason`` has the server's tokens).
    ``rejected``: refused as invalid at call time (or after ``close()``).
    ``dead_lettered``: events and identify calls handed to ``on_error`` after a failed delivery
    (permanent error, retries exhausted, or undelivered at shutdown).
    ``retried``: retry attempts. ``overflowed``: items dropped because the queue was full.
    ``batches``: ``BatchCreate`` requests answered OK. ``identified``: ``Identify`` calls
    answered OK. ``queue_depth``: items waiting or in flight now.
    """

    enqueued: int = 0
    sent: int = 0
    accepted: int = 0
    dropped: int = 0
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)
    rejected: int = 0
    dead_lettered: int = 0
    retried: int = 0
    overflowed: int = 0
    batches: int = 0
    identified: int = 0
    queue_depth: int = 0


@dataclass(frozen=True, slots=True)
class FlushResult:
    """The fate of what was pending when ``flush()`` was called.

    ``completed`` is False when the timeout passed first (the rest stays queued). ``delivered``
    lists the ids of events the server acknowledged (``dropped_by_reason`` counts those among
    them it dropped); ``dead_lettered`` the ids of events handed to ``on_error``; ``overflowed``
    counts items dropped because the queue was full; ``identified`` / ``identify_failed`` count
    identify and alias calls. When flushes overlap, each event is reported by one of them.
    """

    completed: bool
    delivered: tuple[str, ...] = ()
    dead_lettered: tuple[str, ...] = ()
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)
    overflowed: int = 0
    identified: int = 0
    identify_failed: int = 0

    @property
    def ok(self) -> bool:
        """Everything pending was delivered and nothing was dropped or dead-lettered."""
        return (
            self.completed
            and not self.dead_lettered
            and not self.dropped_by_reason
            and not self.overflowed
            and not self.identify_failed
        )


class Counters:
    """The mutable counters behind :class:`Stats` (one lock; updated per batch, not per event)."""

    __slots__ = (
        "accepted",
        "batches",
        "dead_lettered",
        "dropped",
        "dropped_by_reason",
        "identified",
        "lock",
        "overflowed",
        "rejected",
        "retried",
        "sent",
        "taken",
    )

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taken = 0
        self.sent = 0
        self.accepted = 0
        self.dropped = 0
        self.dropped_by_reason: dict[str, int] = {}
        self.rejected = 0
        self.dead_lettered = 0
        self.retried = 0
        self.overflowed = 0
        self.batches = 0
        self.identified = 0

    def snapshot(
        self,
        depth: Callable[[], tuple[int, int]] | None = None,
        *,
        waiting: int = 0,
        in_flight: int = 0,
    ) -> Stats:
        """The counters, with the queue's ``depth()`` (waiting, in flight) read after them, so
        an item the worker takes in between is missed for an instant, never counted twice
        (or the given ``waiting`` / ``in_flight``)."""
        with self.lock:
            taken, overflowed = self.taken, self.overflowed
            if depth is not None:
                waiting, in_flight = depth()
            return Stats(
                enqueued=taken + waiting + overflowed,
                sent=self.sent,
                accepted=self.accepted,
                dropped=self.dropped,
                dropped_by_reason=dict(self.dropped_by_reason),
                rejected=self.rejected,
                dead_lettered=self.dead_lettered,
                retried=self.retried,
                overflowed=overflowed,
                batches=self.batches,
                identified=self.identified,
                queue_depth=waiting + in_flight,
            )


class Window:
    """Accumulates outcomes for a pending ``flush()``; only active while one is waiting."""

    __slots__ = ("dead_lettered", "delivered", "dropped_by_reason", "identified", "identify_failed",
                 "overflowed")  # fmt: skip

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.dead_lettered: list[str] = []
        self.dropped_by_reason: dict[str, int] = {}
        self.overflowed = 0
        self.identified = 0
        self.identify_failed = 0

    def result(self, *, completed: bool) -> FlushResult:
        return FlushResult(
            completed=completed,
            delivered=tuple(self.delivered),
            dead_lettered=tuple(self.dead_lettered),
            dropped_by_reason=dict(self.dropped_by_reason),
            overflowed=self.overflowed,
            identified=self.identified,
            identify_failed=self.identify_failed,
        )
