"""What the ingestion client reports: outcomes, ``on_error`` errors, ``stats()`` and ``flush()``.

Every event and identify call that ``track()``/``identify()`` accepts ends in exactly one
outcome (:data:`OUTCOMES`), counted once in :class:`Stats` and reported once by a
:class:`FlushResult`. The :class:`Ledger` keeps those accounts; it is guarded by the engine's
lock, and only the worker moves items between its states.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    "OUTCOMES",
    "QUEUE_OVERFLOW",
    "TOO_LARGE",
    "UNACKNOWLEDGED",
    "UNCONFIRMED",
    "UNDELIVERED",
    "FlushResult",
    "Ledger",
    "PugDeliveryError",
    "Stats",
    "Tally",
]

INVALID_EVENT: Final = "INVALID_EVENT"
INVALID_IDENTIFY: Final = "INVALID_IDENTIFY"
QUEUE_OVERFLOW: Final = "QUEUE_OVERFLOW"
EVENTS_DROPPED: Final = "EVENTS_DROPPED"
UNACKNOWLEDGED: Final = "UNACKNOWLEDGED"
CLIENT_CLOSED: Final = "CLIENT_CLOSED"
UNDELIVERED: Final = "UNDELIVERED"
UNCONFIRMED: Final = "UNCONFIRMED"
TOO_LARGE: Final = "TOO_LARGE"

OUTCOMES: Final = (
    "accepted",
    "dropped",
    "unacknowledged",
    "identified",
    "dead_lettered",
    "overflowed",
    "undelivered",
    "unconfirmed",
)
"""The final states of an enqueued item (see :class:`Stats` for each)."""


class PugDeliveryError(PugError):
    """A report from the ingestion client itself (``reason`` says which).

    ``INVALID_EVENT`` / ``INVALID_IDENTIFY``: refused at call time, never queued.
    ``QUEUE_OVERFLOW``: the oldest queued items were dropped to make room.
    ``EVENTS_DROPPED``: the server answered but dropped ``dropped`` events of the request,
    ``dropped_by_reason`` says why (it does not say which events).
    ``UNACKNOWLEDGED``: the server answered OK but accounted for fewer events than were sent
    (``accepted + dropped`` short, or an empty reply): ``missing`` says how many.
    ``CLIENT_CLOSED``: called after ``close()``.
    ``UNDELIVERED``: never sent: still queued (or waiting to retry) when ``close()`` or exit ran
    out of time.
    ``UNCONFIRMED``: sent, but no reply had come when ``close()`` or exit ran out of time; the
    server may have stored them.
    ``TOO_LARGE``: one event (or identify call) alone is larger than a request may be; never
    sent, since no request could carry it.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        dropped_by_reason: Mapping[str, int] | None = None,
        missing: int = 0,
        domain: str = CLIENT_DOMAIN,
    ) -> None:
        counts = dict(dropped_by_reason or {})
        metadata = {k: str(v) for k, v in counts.items()}
        if missing:
            metadata["missing"] = str(missing)
        super().__init__(message, code=code, reason=reason, domain=domain, metadata=metadata)
        self.dropped_by_reason: Mapping[str, int] = MappingProxyType(counts)
        self.missing = missing

    @property
    def dropped(self) -> int:
        """Events the server dropped (the sum of ``dropped_by_reason``)."""
        return sum(self.dropped_by_reason.values())


@dataclass(slots=True)
class Tally:
    """Counts per outcome (mutable; lives inside the :class:`Ledger`)."""

    accepted: int = 0
    dropped: int = 0
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    unacknowledged: int = 0
    identified: int = 0
    dead_lettered: int = 0
    overflowed: int = 0
    undelivered: int = 0
    unconfirmed: int = 0

    def add(self, outcome: str, count: int, reasons: Mapping[str, int] | None = None) -> None:
        setattr(self, outcome, getattr(self, outcome) + count)
        for reason, n in (reasons or {}).items():
            self.dropped_by_reason[reason] = self.dropped_by_reason.get(reason, 0) + n

    def merge(self, other: Tally) -> None:
        for outcome in OUTCOMES:
            self.add(outcome, getattr(other, outcome))
        for reason, n in other.dropped_by_reason.items():
            self.dropped_by_reason[reason] = self.dropped_by_reason.get(reason, 0) + n

    def resolved(self) -> int:
        return sum(getattr(self, outcome) for outcome in OUTCOMES)


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters since the client was created (or since the fork that made this process).

    ``enqueued``: events and identify calls accepted by ``track``/``identify``/``alias``; each
    is in exactly one of the states that follow, so that at every instant
    ``enqueued == accepted + dropped + unacknowledged + identified + dead_lettered + overflowed
    + undelivered + unconfirmed + queued + in_flight``.

    - ``accepted``: events the server stored; ``dropped``: events the server answered for but
      dropped (``dropped_by_reason`` has its tokens); ``unacknowledged``: events of requests
      answered OK that the reply did not account for.
    - ``identified``: identify and alias calls the server answered OK.
    - ``dead_lettered``: items handed to ``on_error`` after a permanent error, a retry budget
      spent, or one too large to send.
    - ``overflowed``: dropped because the queue was full. ``undelivered``: never sent before
      ``close()`` or exit ran out of time. ``unconfirmed``: sent, with no reply by then.
    - ``queued``: waiting in the client; ``in_flight``: in requests awaiting their reply.

    Not part of ``enqueued``: ``rejected`` (refused at call time, or after ``close()``).
    Also: ``sent`` (events in requests answered OK: accepted + dropped + unacknowledged),
    ``retried`` (retry attempts), ``batches`` (``BatchCreate`` requests answered OK),
    ``queue_bytes`` (bytes the queue holds) and ``bytes_per_event`` (their average per queued
    event, 0 when empty).

    Also not part of ``enqueued``: ``filtered`` (events ``before_send`` dropped). And
    ``catalog_mismatches``: events of a catalogued kind sent although they broke its rules
    (they are counted in ``enqueued`` as well), split per ``"kind: rule"`` in
    ``catalog_mismatches_by_rule``.
    """

    enqueued: int = 0
    accepted: int = 0
    dropped: int = 0
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)
    unacknowledged: int = 0
    identified: int = 0
    dead_lettered: int = 0
    overflowed: int = 0
    undelivered: int = 0
    unconfirmed: int = 0
    queued: int = 0
    in_flight: int = 0
    rejected: int = 0
    retried: int = 0
    batches: int = 0
    queue_bytes: int = 0
    bytes_per_event: float = 0.0
    catalog_mismatches: int = 0
    catalog_mismatches_by_rule: Mapping[str, int] = field(default_factory=dict)
    filtered: int = 0

    @property
    def sent(self) -> int:
        """Events in ``BatchCreate`` requests the server answered OK."""
        return self.accepted + self.dropped + self.unacknowledged

    @property
    def queue_depth(self) -> int:
        """Items not yet resolved: ``queued + in_flight``."""
        return self.queued + self.in_flight


@dataclass(frozen=True, slots=True)
class FlushResult:
    """The fate of everything enqueued since the previous ``flush()`` returned.

    Each enqueued item is reported by exactly one ``FlushResult``: by the first flush that
    returns after its outcome is known. ``completed`` is False when the timeout passed first;
    ``pending`` then counts the items of this window still unresolved (a later flush reports
    them). The outcome counts mean what they mean in :class:`Stats`.
    """

    completed: bool
    accepted: int = 0
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)
    unacknowledged: int = 0
    identified: int = 0
    dead_lettered: int = 0
    overflowed: int = 0
    undelivered: int = 0
    unconfirmed: int = 0
    pending: int = 0

    @property
    def dropped(self) -> int:
        """Events the server dropped (the sum of ``dropped_by_reason``)."""
        return sum(self.dropped_by_reason.values())

    @property
    def sent(self) -> int:
        """Events in requests the server answered OK."""
        return self.accepted + self.dropped + self.unacknowledged

    @property
    def failed(self) -> int:
        """Items that did not land: every outcome but ``accepted`` and ``identified``."""
        return (
            self.dropped
            + self.unacknowledged
            + self.dead_lettered
            + self.overflowed
            + self.undelivered
            + self.unconfirmed
        )

    @property
    def ok(self) -> bool:
        """Everything of this window was stored, and nothing is still pending."""
        return self.completed and not self.pending and not self.failed

    @classmethod
    def of(cls, tally: Tally, *, completed: bool, pending: int) -> FlushResult:
        return cls(
            completed=completed,
            accepted=tally.accepted,
            dropped_by_reason=dict(tally.dropped_by_reason),
            unacknowledged=tally.unacknowledged,
            identified=tally.identified,
            dead_lettered=tally.dead_lettered,
            overflowed=tally.overflowed,
            undelivered=tally.undelivered,
            unconfirmed=tally.unconfirmed,
            pending=pending,
        )


@dataclass(slots=True)
class _Window:
    """One flush window: items taken into it, and the outcomes not yet claimed by a flush."""

    taken: int = 0
    resolved: int = 0
    unclaimed: Tally = field(default_factory=Tally)


class Ledger:
    """The accounts behind :class:`Stats` and :class:`FlushResult`.

    Not thread-safe by itself: every method runs under the engine's lock. Items enter with
    :meth:`take` (into the window the worker is filling) and leave with :meth:`resolve`; in
    between they are ``held`` (waiting) or ``in_flight``. A flush closes the current window
    (:meth:`close_window`) and later claims every unclaimed outcome of windows up to its own.
    """

    __slots__ = (
        "batches",
        "held",
        "in_flight",
        "queue_bytes",
        "queued_events",
        "rejected",
        "retried",
        "taken",
        "totals",
        "window",
        "windows",
    )

    def __init__(self) -> None:
        self.totals = Tally()
        self.taken = 0
        self.held = 0
        self.in_flight = 0
        self.rejected = 0
        self.retried = 0
        self.batches = 0
        self.queue_bytes = 0
        self.queued_events = 0
        self.window = 0
        self.windows: dict[int, _Window] = {0: _Window()}

    def take(self, count: int = 1) -> int:
        """``count`` items enter the client (held); returns the window they belong to."""
        self.taken += count
        self.held += count
        self.windows[self.window].taken += count
        return self.window

    def send(self, count: int) -> None:
        self.held -= count
        self.in_flight += count

    def unsend(self, count: int) -> None:
        """A request came back without an outcome for its items (they wait to be retried)."""
        self.in_flight -= count
        self.held += count

    def resolve(
        self,
        window: int,
        outcome: str,
        count: int,
        *,
        in_flight: bool = False,
        reasons: Mapping[str, int] | None = None,
    ) -> None:
        """``count`` items of ``window`` end in ``outcome`` (from in flight, or held)."""
        if count <= 0:
            return
        if in_flight:
            self.in_flight -= count
        else:
            self.held -= count
        self.totals.add(outcome, count, reasons)
        slot = self.windows.get(window)
        if slot is None:  # claimed and forgotten already: cannot happen, but never lose a count
            slot = self.windows.setdefault(window, _Window(taken=count))
        slot.resolved += count
        slot.unclaimed.add(outcome, count, reasons)

    def close_window(self) -> int:
        """Start a new window (a flush was called); returns the number of the closed one."""
        closed = self.window
        self.window += 1
        self.windows[self.window] = _Window()
        return closed

    def pending(self, up_to: int) -> int:
        """Items of windows ``<= up_to`` not yet resolved."""
        return sum(w.taken - w.resolved for n, w in self.windows.items() if n <= up_to)

    def claim(self, up_to: int, *, completed: bool) -> FlushResult:
        """Take every unclaimed outcome of windows ``<= up_to`` into one result."""
        tally = Tally()
        pending = 0
        for number in sorted(n for n in self.windows if n <= up_to):
            window = self.windows[number]
            tally.merge(window.unclaimed)
            window.unclaimed = Tally()
            pending += window.taken - window.resolved
            if window.taken == window.resolved and number != self.window:
                del self.windows[number]
        return FlushResult.of(tally, completed=completed, pending=pending)

    def stats(self, *, waiting: int) -> Stats:
        """A snapshot; ``waiting`` counts items handed over but not yet taken by the worker."""
        t = self.totals
        queued = self.held + waiting
        return Stats(
            enqueued=self.taken + waiting,
            accepted=t.accepted,
            dropped=t.dropped,
            dropped_by_reason=dict(t.dropped_by_reason),
            unacknowledged=t.unacknowledged,
            identified=t.identified,
            dead_lettered=t.dead_lettered,
            overflowed=t.overflowed,
            undelivered=t.undelivered,
            unconfirmed=t.unconfirmed,
            queued=queued,
            in_flight=self.in_flight,
            rejected=self.rejected,
            retried=self.retried,
            batches=self.batches,
            queue_bytes=self.queue_bytes,
            bytes_per_event=(self.queue_bytes / self.queued_events) if self.queued_events else 0.0,
        )
