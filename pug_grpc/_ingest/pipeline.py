"""The batch step: take events into pages, store them, start requests, route each reply.

Everything here runs on one thread (the worker, or the caller's in ``sync_mode``) and never
waits: :meth:`Pipeline.step` seals what is due and starts what may start, and returns when it
next needs to run. Replies come back through :meth:`Pipeline.on_reply`. The clock and the
jitter are injected, so tests drive it deterministically. What a request's failure decides
lives beside it: ``attempts`` (state, splits), ``retrying`` (backoff, budget, probing),
``replies`` (an OK reply's counts) and ``dead_letters`` (what is not delivered).

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
from typing import Any

import grpc

from pug_grpc._ingest.attempts import Attempt, could_be_too_heavy, halves, part_done
from pug_grpc._ingest.attempts import Lease as _Lease
from pug_grpc._ingest.batches import IDENTIFY, OpenPage, Record, request_cost
from pug_grpc._ingest.dead_letters import DeadLetters
from pug_grpc._ingest.encoding import EventEncoder
from pug_grpc._ingest.messages import AUTO_PROPERTIES, RawEvent, stub_event, uuid7_batch
from pug_grpc._ingest.outcomes import UNCONFIRMED, UNDELIVERED, Ledger
from pug_grpc._ingest.replies import tally
from pug_grpc._ingest.reports import SafeReporter, describe
from pug_grpc._ingest.retrying import Outage, backoff, budget_spent
from pug_grpc._ingest.settings import BatchSettings
from pug_grpc._ingest.sink import Reply, Sink
from pug_grpc._ingest.storage import Storage, StorageError
from pug_grpc._retry import RetrySettings, is_transient, status_code
from pug_grpc.gen.sdk.events.v1 import events_pb2

__all__ = ["Attempt", "Pipeline"]

_log = logging.getLogger("pug_grpc.pipeline")


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
        self._outage = Outage(retry, uniform)
        self._order = 0
        self._failures = DeadLetters(
            ledger=ledger,
            lock=lock,
            report=report,
            storage=storage,
            max_request_bytes=batch.max_request_bytes,
        )
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
                self._failures.resolve_items(window, "dead_lettered", 1)
                self._report(exc, [stub_event(raw, new_id)])
                continue
            if request_cost(len(frame), 1) > self._batch.max_request_bytes:
                self._failures.too_large(Record("events", frame, 1, window))
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
            self._failures.too_large(record)
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
            self._failures.overflowed(dropped)

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

    def _next(self, now: float) -> Attempt | None:
        """The next request to start now, if a slot is free."""
        outage = self._outage
        if outage.slots(self._batch.max_in_flight - len(self.in_flight)) <= 0:
            return None
        if outage.probing:
            if not outage.may_probe(now):
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
        if self._outage.probing:
            probe_at = self._outage.next_wake()
            if probe_at is not None:
                times.append(probe_at)
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
        error = budget_spent(self._retry, attempt, now)
        if error is None:
            return False
        self._failures.dead_letter(attempt, error, in_flight=False)
        return True

    def _start(self, attempt: Attempt, now: float) -> None:
        attempt.attempts += 1
        if attempt.first_attempt is None:
            attempt.first_attempt = now
        count = attempt.record.count
        with self._lock:
            self.ledger.send(count)
        self.in_flight[id(attempt)] = attempt
        self._outage.started(attempt)

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
        self._outage.ended(attempt)
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
            self._outage.probing = False
            self._succeeded(attempt, reply.response)
            return
        code = status_code(error)
        if code != grpc.StatusCode.UNAVAILABLE:
            self._outage.probing = False
        problem = self._connection_problem(error)
        if problem is not None:
            self._failures.dead_letter(attempt, error, in_flight=True, message=problem)
        elif code == grpc.StatusCode.INVALID_ARGUMENT and attempt.record.count > 1:
            _log.info("INVALID_ARGUMENT for %d events; resending in halves", attempt.record.count)
            self._split(attempt, ready_at=self._clock())
        elif is_transient(error):
            self._transient(attempt, error, code)
        else:
            self._failures.dead_letter(attempt, error, in_flight=True)

    def _succeeded(self, attempt: Attempt, response: events_pb2.BatchCreateResponse | None) -> None:
        record = attempt.record
        if record.kind == IDENTIFY:
            with self._lock:
                self.ledger.resolve(record.window, "identified", 1, in_flight=True)
            part_done(attempt, self.storage)
            return
        outcome = tally(record.count, response)
        with self._lock:
            outcome.resolve(self.ledger, record.window)
        part_done(attempt, self.storage)
        outcome.tell(self._report)

    def _transient(self, attempt: Attempt, error: BaseException, code: Any) -> None:
        now = self._clock()
        attempt.last_error = error
        wait = backoff(self._retry, attempt, error, now, self._uniform)
        if wait is None:
            self._failures.dead_letter(attempt, error, in_flight=True)
            return
        if code == grpc.StatusCode.UNAVAILABLE:
            self._outage.unavailable(attempt, now, wait)
        with self._lock:
            self.ledger.retried += 1
        _log.info("retrying in %.2fs after %s", wait, describe(error))
        record = attempt.record
        if code == grpc.StatusCode.INTERNAL and record.count > 1:
            attempt.internal_failures += 1
            if attempt.internal_failures >= 2 and could_be_too_heavy(record):
                _log.info("INTERNAL twice for %d events; resending in halves", record.count)
                self._split(attempt, ready_at=now + wait)
                return
        with self._lock:
            self.ledger.unsend(record.count)
        attempt.ready_at = now + wait
        self._park(attempt)

    def _park(self, attempt: Attempt) -> None:
        heapq.heappush(self._waiting, attempt)

    def _split(self, attempt: Attempt, *, ready_at: float) -> None:
        with self._lock:
            self.ledger.unsend(attempt.record.count)
        for half in halves(attempt, ready_at=ready_at):
            self._park(half)

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
        self._failures.report_left(unconfirmed, "unconfirmed", UNCONFIRMED, in_flight=True)
        self.seal()
        waiting = list(self._waiting)
        self._waiting.clear()
        self._outage.probe = None
        for record in self.storage.drain():
            waiting.append(Attempt(record, _Lease(record)))
        self._failures.report_left(waiting, "undelivered", UNDELIVERED, in_flight=False)
        self._account_queue()

    def _account_queue(self) -> None:
        page = self._page
        storage_bytes = self.storage.size_bytes()
        waiting_items = self.storage.queued_items() + page.count
        waiting_items += sum(a.record.count for a in self._waiting)
        with self._lock:
            self.ledger.queue_bytes = storage_bytes + page.size
            self.ledger.queued_events = waiting_items
