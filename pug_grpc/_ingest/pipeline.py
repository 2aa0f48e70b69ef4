"""The batch step: encode what the worker takes, seal requests, keep several in flight, retry.

Everything here runs on one thread (the worker, or the caller's in ``sync_mode``) and never
waits: :meth:`Pipeline.step` seals what is due and starts what may start, and returns when it
next needs to run. Replies come back through :meth:`Pipeline.on_reply`. The clock and the
jitter are injected, so tests drive it deterministically.

Scheduling rules, each tested:

- Up to ``max_in_flight`` requests at once. Requests waiting out a backoff go first, then
  stored records oldest first, then the open page once it is due.
- The open page is due when it holds ``max_size`` events and a request may start, when its
  first event has waited ``max_wait``, on ``flush()`` and while draining. While every slot is
  busy it keeps filling, up to 1,000 events or the request byte budget.
- After ``UNAVAILABLE`` no new request starts except one probe at a time (the earliest due
  retry); any other answer ends the probing.
- ``INVALID_ARGUMENT`` on a request of several events splits it in halves at once, until the
  offending event is alone (then it is dead-lettered). ``INTERNAL`` twice on a request that
  could weigh 1 MiB on the server (counting 1 KiB per event for what it adds) splits it too.
- Transient failures wait their own backoff (``RetrySettings.wait``) while other requests go
  on; once the next attempt would start after ``max_elapsed`` from the first, the request is
  dead-lettered.
"""

from __future__ import annotations

import heapq
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import grpc

from pug_grpc._ingest.batches import IDENTIFY, OpenPage, Record, frames, messages_of, request_cost
from pug_grpc._ingest.encoding import EventEncoder
from pug_grpc._ingest.messages import AUTO_PROPERTIES, RawEvent, stub_event, uuid7_batch
from pug_grpc._ingest.outcomes import (
    EVENTS_DROPPED,
    QUEUE_OVERFLOW,
    TOO_LARGE,
    UNACKNOWLEDGED,
    UNCONFIRMED,
    UNDELIVERED,
    Ledger,
    PugDeliveryError,
)
from pug_grpc._ingest.reports import MAX_REPORTED_ITEMS, SafeReporter, describe, public_error
from pug_grpc._ingest.settings import SERVER_MESSAGE_CAP, BatchSettings
from pug_grpc._ingest.sink import Call, Reply, Sink
from pug_grpc._ingest.storage import Storage, StorageError
from pug_grpc._retry import RetrySettings, is_transient, status_code
from pug_grpc.gen.sdk.events.v1 import events_pb2

__all__ = ["Attempt", "Pipeline"]

_log = logging.getLogger("pug_grpc.pipeline")

_SPLIT_COST_PER_EVENT: Final = 1024
"""Bytes per event the server might add, at worst, when judging whether size could explain an
``INTERNAL`` answer (the request budget counts a more likely 512)."""


class _Lease:
    """A record leased from storage, acknowledged once all its parts are resolved."""

    __slots__ = ("parts", "record")

    def __init__(self, record: Record) -> None:
        self.record = record
        self.parts = 1


@dataclass(eq=False, slots=True)
class Attempt:
    """The delivery state of one request: a leased record, or part of one after a split."""

    record: Record
    lease: _Lease
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


class Pipeline:
    """Encoding, sealing, scheduling and the outcome of every request (see the module doc).

    ``lock`` guards ``ledger`` (read by ``stats()``/``flush()`` on other threads); everything
    else here belongs to the thread that drives the pipeline. ``on_start(attempt, reply)`` is
    how a sink's reply comes back: the driver must call :meth:`on_reply` on its own thread.
    """

    def __init__(
        self,
        *,
        sink: Sink,
        storage: Storage,
        batch: BatchSettings,
        retry: RetrySettings | None,
        ledger: Ledger,
        lock: Any,
        report: SafeReporter,
        deliver_reply: Callable[[Attempt, Reply], None],
        clock: Callable[[], float] = time.monotonic,
        uniform: Callable[[float, float], float] = random.uniform,
        new_ids: Callable[[int], list[str]] = uuid7_batch,
        connection_problem: Callable[[BaseException], str | None] = lambda _: None,
    ) -> None:
        self.sink = sink
        self.storage = storage
        self._batch = batch
        self._retry = retry
        self.ledger = ledger
        self._lock = lock
        self._report = report
        self._deliver_reply = deliver_reply
        self._clock = clock
        self._uniform = uniform
        self._new_ids = new_ids
        self._connection_problem = connection_problem
        self._encoder = EventEncoder(AUTO_PROPERTIES)
        self._page = OpenPage(batch.max_request_bytes)
        self._waiting: list[Attempt] = []  # heap by ready time
        self.in_flight: dict[int, Attempt] = {}
        self._probing = False
        self._probe: Attempt | None = None
        self._probe_round = 0
        self._next_probe_at = 0.0
        self._order = 0
        self._problems_said: set[str] = set()
        self.urgent = False
        """Seal and send without waiting (a flush or a drain is under way)."""
        self.paused = False
        """Start nothing (a fork is about to happen)."""
        storage.open(self._storage_problem)

    # -- intake ---------------------------------------------------------------------------
    def take_events(self, raws: Sequence[RawEvent], window: int) -> None:
        """Encode events taken from the intake into the open page (sealing full pages)."""
        if not raws:
            return
        ids = self._new_ids(len(raws))
        encode = self._encoder.encode
        page = self._page
        now = self._clock()
        for raw, new_id in zip(raws, ids, strict=True):
            try:
                frame = encode(raw, new_id)
            except Exception as exc:
                _log.warning("an event could not be encoded and is dead-lettered: %r", exc)
                self._resolve_items(window, "dead_lettered", 1)
                self._report(exc, [stub_event(raw, new_id)])
                continue
            if request_cost(len(frame), 1) > self._batch.max_request_bytes:
                self._too_large(Record("events", frame, 1, window))
                continue
            sealed = page.offer(frame, raw[0], window, now)
            if sealed is not None:
                self._store(sealed)
            if page.full:
                self._store(page.seal())

    def take_identify(self, payload: bytes, window: int) -> None:
        """Queue one encoded ``IdentifyRequest`` as a request of its own."""
        record = Record(IDENTIFY, payload, 1, window)
        if request_cost(len(payload), 1) > self._batch.max_request_bytes:
            self._too_large(record)
            return
        self._store(record)

    def _recover(self) -> None:
        """Count in what the storage took over from ended clients; dead-letter what it lost."""
        storage = self.storage
        with self._lock:
            window = self.ledger.window
        found = storage.recover(window)
        if found:
            with self._lock:
                self.ledger.take(found)
        lost = storage.take_lost()
        if lost:
            count = sum(r.count for r in lost)
            with self._lock:
                for record in lost:
                    self.ledger.resolve(record.window, "dead_lettered", record.count)
            error = StorageError(f"{count} stored item(s) could not be read back; not sent")
            _log.error("%s", error.message)
            self._report(error, [])

    def _storage_problem(self, error: StorageError) -> None:
        """A problem the storage worked around (it logged it): tell ``on_error``."""
        self._report(error, [])

    def _store(self, record: Record) -> None:
        dropped = self.storage.append(record)
        if dropped:
            self._overflowed(dropped)

    def _overflowed(self, records: Sequence[Record]) -> None:
        count = sum(r.count for r in records)
        with self._lock:
            for record in records:
                self.ledger.resolve(record.window, "overflowed", record.count)
        _log.warning("queue full: dropped the %d oldest item(s)", count)
        error = PugDeliveryError(
            f"the queue was full: {count} oldest item(s) dropped",
            reason=QUEUE_OVERFLOW,
            code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        self._report(error, self._items(records))

    # -- scheduling -----------------------------------------------------------------------
    def step(self) -> float | None:
        """Seal what is due and start what may start; returns when to run again (or None)."""
        now = self._clock()
        self._recover()
        while not self.paused:
            attempt = self._next(now)
            if attempt is None:
                break
            self._start(attempt, now)
        self._account_queue()
        return self._next_wake(now)

    def _slots(self) -> int:
        if self._probing:
            return 0 if self._probe is not None else 1
        return self._batch.max_in_flight - len(self.in_flight)

    def _next(self, now: float) -> Attempt | None:
        """The next request to start now, if a slot is free."""
        if self._slots() <= 0:
            return None
        if self._probing:
            if now < self._next_probe_at:
                return None
            while self._waiting:  # the oldest waiting request probes, due or not
                attempt = heapq.heappop(self._waiting)
                if not self._spent(attempt, now):
                    return attempt
        while self._waiting and self._waiting[0].ready_at <= now:
            attempt = heapq.heappop(self._waiting)
            if self._spent(attempt, now):
                continue
            return attempt
        record = self.storage.lease()
        if record is None and self._page_due(now):
            self._store(self._page.seal())
            record = self.storage.lease()
        if record is None:
            return None
        self._order += 1
        return Attempt(record, _Lease(record), order=self._order)

    def _page_due(self, now: float) -> bool:
        page = self._page
        return bool(page.count) and (
            self.urgent
            or page.count >= self._batch.max_size
            or now >= page.started_at + self._batch.max_wait
        )

    def _next_wake(self, now: float) -> float | None:
        times: list[float] = []
        if self._probing:
            if self._probe is None:
                times.append(self._next_probe_at)
        else:
            if self._page.count:
                times.append(self._page.started_at + self._batch.max_wait)
            if self._waiting:
                times.append(self._waiting[0].ready_at)
        every = self.storage.recover_every
        if every is not None:
            times.append(now + every)  # look for what ended clients left, even when idle
        return min(times) if times else None

    def _spent(self, attempt: Attempt, now: float) -> bool:
        """Dead-letter a parked request whose retry budget ran out while it waited."""
        retry = self._retry
        first = attempt.first_attempt
        if retry is None or first is None or retry.allows(attempt.attempts, now, first):
            return False
        error = attempt.last_error or PugDeliveryError(
            f"retry budget of {retry.max_elapsed:g}s spent", reason="RETRIES_EXHAUSTED"
        )
        _log.info(
            "retry budget of %gs spent for %d item(s)", retry.max_elapsed, attempt.record.count
        )
        self._dead_letter(attempt, error, in_flight=False)
        return True

    def _start(self, attempt: Attempt, now: float) -> None:
        attempt.attempts += 1
        if attempt.first_attempt is None:
            attempt.first_attempt = now
        count = attempt.record.count
        with self._lock:
            self.ledger.send(count)
        self.in_flight[id(attempt)] = attempt
        attempt.probe = self._probing
        if self._probing:
            self._probe = attempt

        def done(reply: Reply) -> None:
            self._deliver_reply(attempt, reply)

        try:
            attempt.call = self.sink.start(attempt.record, done)
        except Exception as exc:  # a closed channel, a broken user channel: a failed attempt
            done(Reply(error=exc))

    # -- replies --------------------------------------------------------------------------
    def on_reply(self, attempt: Attempt, reply: Reply) -> None:
        """Account for the end of a request (on the driving thread)."""
        if self.in_flight.pop(id(attempt), None) is None or attempt.abandoned:
            return  # already reported (the close deadline passed)
        if self._probe is attempt:
            self._probe = None
        if attempt.requeue:  # cancelled for a fork: not a failure, so it costs no budget
            attempt.requeue = False
            attempt.attempts -= 1
            if attempt.attempts == 0:
                attempt.first_attempt = None
            attempt.ready_at = self._clock()
            with self._lock:
                self.ledger.unsend(attempt.record.count)
            self._park(attempt)
            return
        error = reply.error
        if error is None:
            self._probing = False
            self._succeeded(attempt, reply.response)
            return
        code = status_code(error)
        if code != grpc.StatusCode.UNAVAILABLE:
            self._probing = False
        problem = self._connection_problem(error)
        if problem is not None:
            self._dead_letter(attempt, error, in_flight=True, message=problem)
        elif code == grpc.StatusCode.INVALID_ARGUMENT and attempt.record.count > 1:
            _log.info("INVALID_ARGUMENT for %d events; resending in halves", attempt.record.count)
            self._split(attempt, ready_at=self._clock())
        elif is_transient(error):
            self._transient(attempt, error, code)
        else:
            self._dead_letter(attempt, error, in_flight=True)

    def _succeeded(self, attempt: Attempt, response: events_pb2.BatchCreateResponse | None) -> None:
        record = attempt.record
        if record.kind == IDENTIFY:
            with self._lock:
                self.ledger.resolve(record.window, "identified", 1, in_flight=True)
            self._part_done(attempt)
            return
        reply = response if response is not None else events_pb2.BatchCreateResponse()
        sent = record.count
        accepted = min(max(reply.accepted, 0), sent)
        reasons = {k: v for k, v in reply.dropped_by_reason.items() if v > 0}
        dropped = min(max(reply.dropped, sum(reasons.values()), 0), sent - accepted)
        if sum(reasons.values()) != dropped:
            reasons = {"unspecified": dropped} if dropped else {}
        missing = sent - accepted - dropped
        with self._lock:
            ledger = self.ledger
            ledger.batches += 1
            ledger.resolve(record.window, "accepted", accepted, in_flight=True)
            ledger.resolve(record.window, "dropped", dropped, in_flight=True, reasons=reasons)
            ledger.resolve(record.window, "unacknowledged", missing, in_flight=True)
        self._part_done(attempt)
        if reply.accepted + reply.dropped > sent:
            _log.warning(
                "server acknowledged %d events (accepted %d, dropped %d) for %d sent",
                reply.accepted + reply.dropped,
                reply.accepted,
                reply.dropped,
                sent,
            )
        if dropped:
            _log.warning("server dropped %d of %d events: %s", dropped, sent, reasons)
            self._report(
                PugDeliveryError(
                    f"the server dropped {dropped} of {sent} events",
                    reason=EVENTS_DROPPED,
                    code=grpc.StatusCode.OK,
                    dropped_by_reason=reasons,
                    domain="pug.sh",
                )
            )
        if missing:
            _log.warning("server accounted for %d of %d events", sent - missing, sent)
            self._report(
                PugDeliveryError(
                    f"the server answered OK but accounted for {sent - missing} of {sent} events",
                    reason=UNACKNOWLEDGED,
                    code=grpc.StatusCode.OK,
                    missing=missing,
                    domain="pug.sh",
                )
            )

    def _transient(self, attempt: Attempt, error: BaseException, code: Any) -> None:
        now = self._clock()
        attempt.last_error = error
        retry = self._retry
        first = attempt.first_attempt if attempt.first_attempt is not None else now
        wait = retry.wait(attempt.attempts, error, uniform=self._uniform) if retry else 0.0
        if retry is None or not retry.allows(attempt.attempts, now + wait, first):
            self._dead_letter(attempt, error, in_flight=True)
            return
        if code == grpc.StatusCode.UNAVAILABLE:
            self._unavailable(attempt, now, wait)
        with self._lock:
            self.ledger.retried += 1
        _log.info("retrying in %.2fs after %s", wait, describe(error))
        record = attempt.record
        if code == grpc.StatusCode.INTERNAL and record.count > 1:
            attempt.internal_failures += 1
            heavy = len(record.payload) + record.count * _SPLIT_COST_PER_EVENT >= SERVER_MESSAGE_CAP
            if attempt.internal_failures >= 2 and heavy:
                _log.info("INTERNAL twice for %d events; resending in halves", record.count)
                self._split(attempt, ready_at=now + wait)
                return
        with self._lock:
            self.ledger.unsend(record.count)
        attempt.ready_at = now + wait
        self._park(attempt)

    def _unavailable(self, attempt: Attempt, now: float, wait: float) -> None:
        """Probe: one request per backoff step, on one schedule for all that wait."""
        if not self._probing:
            self._probing = True
            self._probe_round = attempt.attempts
            self._next_probe_at = now + wait
        elif attempt.probe:  # the probe itself failed: the next one waits longer
            self._probe_round += 1
            assert self._retry is not None
            step = self._retry.wait(self._probe_round, uniform=self._uniform)
            self._next_probe_at = max(self._next_probe_at, now + step)

    def _park(self, attempt: Attempt) -> None:
        heapq.heappush(self._waiting, attempt)

    def _split(self, attempt: Attempt, *, ready_at: float) -> None:
        record = attempt.record
        parts = frames(record.payload)
        mid = len(parts) // 2
        with self._lock:
            self.ledger.unsend(record.count)
        attempt.lease.parts += 1  # one part becomes two
        for half in (parts[:mid], parts[mid:]):
            child = Attempt(
                record.with_payload(b"".join(half), len(half)),
                attempt.lease,
                attempts=attempt.attempts,
                first_attempt=attempt.first_attempt,
                ready_at=ready_at,
                order=attempt.order,
                last_error=attempt.last_error,
            )
            self._park(child)

    def _part_done(self, attempt: Attempt) -> None:
        lease = attempt.lease
        lease.parts -= 1
        if lease.parts == 0:
            self.storage.ack(lease.record)

    # -- failures -------------------------------------------------------------------------
    def _resolve_items(self, window: int, outcome: str, count: int) -> None:
        with self._lock:
            self.ledger.resolve(window, outcome, count)

    def _too_large(self, record: Record) -> None:
        """Dead-letter an item no request can carry, at once: every attempt would fail."""
        self._resolve_items(record.window, "dead_lettered", record.count)
        error = PugDeliveryError(
            f"{record.count} item(s) larger on their own than a request may be "
            f"(max_request_bytes={self._batch.max_request_bytes}); not sent",
            reason=TOO_LARGE,
            code=grpc.StatusCode.INVALID_ARGUMENT,
        )
        _log.warning("%s", error.message)
        self._report(error, self._items([record]))

    def _dead_letter(
        self,
        attempt: Attempt,
        error: BaseException,
        *,
        in_flight: bool,
        message: str | None = None,
    ) -> None:
        record = attempt.record
        with self._lock:
            self.ledger.resolve(record.window, "dead_lettered", record.count, in_flight=in_flight)
        self._part_done(attempt)
        reported = public_error(error)
        if message is not None:
            # Said once at ERROR (the fix is in the message); every later batch at DEBUG.
            level = logging.DEBUG if message in self._problems_said else logging.ERROR
            self._problems_said.add(message)
            _log.log(level, "%d item(s) not delivered: %s", record.count, message)
        else:
            _log.warning("%d item(s) not delivered: %s", record.count, describe(error))
        self._report(reported, self._items([record]))

    def _items(self, records: Sequence[Record]) -> list[Any]:
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

    # -- flush, drain, fork ---------------------------------------------------------------
    def seal(self) -> None:
        """Seal the open page now (flush, drain, a new window)."""
        self._recover()
        if self._page.count:
            self._store(self._page.seal())

    @property
    def page_window(self) -> int | None:
        return self._page.window if self._page.count else None

    def idle(self) -> bool:
        """Nothing held and nothing in flight."""
        return (
            not self._page.count
            and not self._waiting
            and not self.in_flight
            and self.storage.queued_items() == 0
        )

    def cancel_in_flight(self) -> None:
        """Cancel every request in flight, to resend each without counting an attempt."""
        for attempt in list(self.in_flight.values()):
            attempt.requeue = True
            if attempt.call is not None:
                attempt.call.cancel()

    def abandon(self) -> None:
        """The close deadline passed: report what is left, and forget it."""
        unconfirmed = [a for a in self.in_flight.values() if not a.abandoned]
        for attempt in unconfirmed:
            attempt.abandoned = True
            if attempt.call is not None:
                attempt.call.cancel()
        self.in_flight.clear()
        self._report_left(unconfirmed, "unconfirmed", UNCONFIRMED, in_flight=True)
        self.seal()
        waiting = list(self._waiting)
        self._waiting.clear()
        self._probe = None
        for record in self.storage.drain():
            waiting.append(Attempt(record, _Lease(record)))
        self._report_left(waiting, "undelivered", UNDELIVERED, in_flight=False)
        self._account_queue()

    def _report_left(
        self, attempts: Sequence[Attempt], outcome: str, reason: str, *, in_flight: bool
    ) -> None:
        if not attempts:
            return
        with self._lock:
            for attempt in attempts:
                self.ledger.resolve(
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
            elif self.storage.persistent:
                text = (
                    f"{count} item(s) not sent before the deadline; they stay in "
                    f"{self.storage!r} and a later client on it sends them"
                )
            else:
                text = f"{count} item(s) not sent before the deadline"
            _log.warning("%s", text)
            self._report(
                PugDeliveryError(text, reason=reason, code=grpc.StatusCode.DEADLINE_EXCEEDED),
                self._items([a.record for a in group]),
            )

    def _account_queue(self) -> None:
        page = self._page
        storage_bytes = self.storage.size_bytes()
        waiting_items = self.storage.queued_items() + page.count
        waiting_items += sum(a.record.count for a in self._waiting)
        with self._lock:
            self.ledger.queue_bytes = storage_bytes + page.size
            self.ledger.queued_events = waiting_items
