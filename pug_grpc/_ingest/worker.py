"""The ingestion worker: batching, delivery with retries, bisection, and dead letters.

Two layers, so tests can drive each deterministically:

- :class:`Delivery` is the batch step. It turns queued items into requests and sends them through
  a :class:`Sink` with the retry policy; clock, sleep and jitter are injected.
- :class:`Worker` owns the bounded queue and the one background thread, and decides when a batch
  goes out (``max_size``, ``max_wait``, ``flush``, ``close``). :meth:`Worker.step` is one turn of
  its loop; the thread just calls it until it returns False.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import grpc
from google.protobuf.message import Message

from pug_grpc._errors import error_from_rpc
from pug_grpc._ingest.encoding import EventEncoder
from pug_grpc._ingest.messages import AUTO_PROPERTIES, RawEvent, build_event, uuid7_batch
from pug_grpc._ingest.outcomes import (
    EVENTS_DROPPED,
    QUEUE_OVERFLOW,
    TOO_LARGE,
    UNDELIVERED,
    Counters,
    FlushResult,
    PugDeliveryError,
    Window,
)
from pug_grpc._ingest.retry import call_with_retry, status_code
from pug_grpc._ingest.settings import BatchSettings, RetrySettings
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2, profiles_pb2_grpc

__all__ = ["BatchOutcome", "Delivery", "GrpcSink", "NullSink", "Reporter", "Sink", "Worker"]

_log = logging.getLogger("pug_grpc.worker")

_Encoded = tuple[str, bytes]
"""An event id and the event's wire form, framed as a ``BatchCreateRequest.events`` entry."""

Reporter = Callable[[BaseException, Sequence[Message]], None]
"""Receives ``(error, events)`` for everything that will not be delivered (``on_error``)."""

_BATCH_CREATE: Final = "/sdk.events.v1.EventsService/BatchCreate"

_YIELD_EVERY: Final = (64, 32, 16, 4)
"""Calls between two yields of the interpreter lock, by eighths of the queue past half full."""

_FLUSH_SLICE_S: Final = 0.25
"""How often a waiting ``flush()`` checks that the worker it waits for is still there."""

MAX_OVERFLOW_REPORTED: Final = 1000
"""At most this many overflowed items are kept for the next ``on_error`` report (all counted)."""


class Sink(Protocol):
    """Where requests go: the gRPC stubs in production, anything answering like them in tests."""

    def batch_create(
        self, request: events_pb2.BatchCreateRequest
    ) -> events_pb2.BatchCreateResponse: ...

    def identify(self, request: profiles_pb2.IdentifyRequest) -> None: ...


class GrpcSink:
    """The production sink: the generated stubs on the client's one channel.

    ``encoded=True`` sends already encoded ``BatchCreate`` requests as they are; with
    ``False`` (the caller's own interceptors may look at requests) they are parsed first.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        timeout: float,
        compression: grpc.Compression | None = None,
        encoded: bool = True,
    ) -> None:
        self._events = events_pb2_grpc.EventsServiceStub(channel)
        self._profiles = profiles_pb2_grpc.ProfilesSDKServiceStub(channel)
        self._encoded: grpc.UnaryUnaryMultiCallable[bytes, events_pb2.BatchCreateResponse] | None
        self._encoded = (
            channel.unary_unary(
                _BATCH_CREATE,
                request_serializer=None,  # the payload is already the wire form
                response_deserializer=events_pb2.BatchCreateResponse.FromString,
            )
            if encoded
            else None
        )
        self._timeout = timeout
        self._compression = compression

    def batch_create(
        self, request: events_pb2.BatchCreateRequest
    ) -> events_pb2.BatchCreateResponse:
        return self._events.BatchCreate(
            request, timeout=self._timeout, compression=self._compression
        )

    def batch_create_encoded(self, payload: bytes, count: int) -> events_pb2.BatchCreateResponse:
        """Send an encoded ``BatchCreateRequest`` of ``count`` events."""
        if self._encoded is None:
            return self.batch_create(events_pb2.BatchCreateRequest.FromString(payload))
        return self._encoded(payload, timeout=self._timeout, compression=self._compression)

    def identify(self, request: profiles_pb2.IdentifyRequest) -> None:
        self._profiles.Identify(request, timeout=self._timeout, compression=self._compression)


class NullSink:
    """``send=False``: every request is answered as fully accepted; nothing leaves the process."""

    def batch_create(
        self, request: events_pb2.BatchCreateRequest
    ) -> events_pb2.BatchCreateResponse:
        return events_pb2.BatchCreateResponse(accepted=len(request.events))

    def batch_create_encoded(self, payload: bytes, count: int) -> events_pb2.BatchCreateResponse:
        return events_pb2.BatchCreateResponse(accepted=count)

    def identify(self, request: profiles_pb2.IdentifyRequest) -> None:
        return None


@dataclass
class BatchOutcome:
    """What became of one batch: event ids acknowledged, ids dead-lettered, server drops."""

    delivered: list[str] = field(default_factory=list)
    dead_lettered: list[str] = field(default_factory=list)
    dropped_by_reason: dict[str, int] = field(default_factory=dict)


def _no_report(error: BaseException, items: Sequence[Message]) -> None:
    """The reporter of a client without ``on_error``: nothing to build, nothing to call."""


def wants_items(report: Reporter) -> bool:
    """Whether building the messages of a report is worth it (someone receives them)."""
    return report is not _no_report


def safe_reporter(on_error: Reporter | None) -> Reporter:
    """Wrap ``on_error`` so that an exception in it is logged and never reaches our threads."""
    if on_error is None:
        return _no_report

    def report(error: BaseException, items: Sequence[Message]) -> None:
        try:
            on_error(error, list(items))
        except Exception:
            _log.exception("on_error raised; ignoring it")

    return report


class Delivery:
    """The batch step: build, send with retries, bisect on ``INVALID_ARGUMENT``, dead-letter.

    Thread-safe (``sync_mode`` calls it from callers' threads); counters are updated per batch.
    """

    def __init__(
        self,
        *,
        sink: Sink,
        retry: RetrySettings,
        counters: Counters,
        report: Reporter,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        uniform: Callable[[float, float], float] = random.uniform,
        new_ids: Callable[[int], list[str]] = uuid7_batch,
        max_request_bytes: int = BatchSettings().max_request_bytes,
        should_abort: Callable[[], bool] = lambda: False,
    ) -> None:
        self.sink = sink
        self._retry = retry
        self._counters = counters
        self._report = report
        self._clock = clock
        self._sleep = sleep
        self._uniform = uniform
        self._new_ids = new_ids
        self._max_bytes = max_request_bytes
        self._should_abort = should_abort
        self._encoder = EventEncoder(AUTO_PROPERTIES)

    # -- events ---------------------------------------------------------------------------
    def deliver_events(self, raws: Sequence[RawEvent]) -> BatchOutcome:
        """Deliver one batch of queued events; every event ends delivered or dead-lettered."""
        outcome = BatchOutcome()
        events = self._encode(raws, outcome)
        if events:
            for chunk in self._fit(events):
                if len(chunk) == 1 and len(chunk[0][1]) > self._max_bytes:
                    self._too_large(_decode(chunk), outcome)
                else:
                    self._send(chunk, outcome)
        return outcome

    def _encode(self, raws: Sequence[RawEvent], outcome: BatchOutcome) -> list[_Encoded]:
        """Each event's wire form (framed for ``BatchCreateRequest``) with its id."""
        ids = self._new_ids(len(raws))
        encode = self._encoder.encode
        events: list[_Encoded] = []
        for raw, new_id in zip(raws, ids, strict=True):
            try:
                events.append((raw[0] or new_id, encode(raw, new_id)))
            except Exception as exc:
                _log.warning("an event could not be encoded and is dead-lettered: %r", exc)
                self._dead_letter(exc, [_stub_event(raw, new_id)], outcome)
        return events

    def _fit(self, events: list[_Encoded]) -> list[list[_Encoded]]:
        """Split a batch whose encoded request would exceed ``max_request_bytes``."""
        if len(events) == 1:
            return [events]
        size = sum(len(framed) for _, framed in events)
        if size <= self._max_bytes:
            return [events]
        mid = len(events) // 2
        return self._fit(events[:mid]) + self._fit(events[mid:])

    def _on_retry(self, error: BaseException, delay: float) -> None:
        with self._counters.lock:
            self._counters.retried += 1
        _log.info("retrying in %.2fs after %s", delay, _describe(error))

    def _call(self, attempt: Callable[[], Any]) -> Any:
        return call_with_retry(
            attempt,
            settings=self._retry,
            clock=self._clock,
            sleep=self._sleep,
            uniform=self._uniform,
            on_retry=self._on_retry,
            should_abort=self._should_abort,
        )

    def _attempt(self, events: list[_Encoded]) -> Callable[[], events_pb2.BatchCreateResponse]:
        """One send of a ``BatchCreate`` request holding ``events`` (called per attempt)."""
        payload = b"".join(framed for _, framed in events)
        sink = self.sink
        send_encoded = getattr(sink, "batch_create_encoded", None)
        if send_encoded is not None:
            count = len(events)
            return lambda: send_encoded(payload, count)
        request = events_pb2.BatchCreateRequest.FromString(payload)
        return lambda: sink.batch_create(request)

    def _send(self, events: list[_Encoded], outcome: BatchOutcome) -> None:
        if self._should_abort():
            self._dead_letter(
                _ShutdownError("shutdown deadline passed before sending"), _decode(events), outcome
            )
            return
        try:
            response: events_pb2.BatchCreateResponse = self._call(self._attempt(events))
        except Exception as exc:
            if (
                status_code(exc) == grpc.StatusCode.INVALID_ARGUMENT
                and len(events) > 1
                and not self._should_abort()
            ):
                # One bad event fails the whole request: halve until it is isolated, so the
                # good events around it still land.
                mid = len(events) // 2
                _log.info("INVALID_ARGUMENT for %d events; resending in halves", len(events))
                self._send(events[:mid], outcome)
                self._send(events[mid:], outcome)
                return
            self._dead_letter(exc, _decode(events), outcome)
            return
        self._acknowledged(events, response, outcome)

    def _acknowledged(
        self,
        events: list[_Encoded],
        response: events_pb2.BatchCreateResponse,
        outcome: BatchOutcome,
    ) -> None:
        reasons = dict(response.dropped_by_reason)
        dropped = response.dropped
        with self._counters.lock:
            c = self._counters
            c.batches += 1
            c.sent += len(events)
            c.accepted += response.accepted
            c.dropped += dropped
            for reason, count in reasons.items():
                c.dropped_by_reason[reason] = c.dropped_by_reason.get(reason, 0) + count
        outcome.delivered.extend(event_id for event_id, _ in events)
        if response.accepted + dropped != len(events):
            _log.warning(
                "server acknowledged %d events (accepted %d, dropped %d) for %d sent",
                response.accepted + dropped,
                response.accepted,
                dropped,
                len(events),
            )
        if dropped or reasons:
            if not reasons:
                reasons = {"unspecified": dropped}
            for reason, count in reasons.items():
                outcome.dropped_by_reason[reason] = outcome.dropped_by_reason.get(reason, 0) + count
            _log.warning("server dropped %d of %d events: %s", dropped, len(events), reasons)
            error = PugDeliveryError(
                f"the server dropped {dropped} of {len(events)} events",
                reason=EVENTS_DROPPED,
                code=grpc.StatusCode.OK,
                dropped_by_reason=reasons,
                domain="pug.sh",
            )
            # The server does not say which events it dropped: only the counts are reported.
            self._report(error, ())

    # -- identify -------------------------------------------------------------------------
    def deliver_identify(self, request: profiles_pb2.IdentifyRequest) -> bool:
        """Send one ``Identify`` with the retry policy; dead-letter it on failure."""
        if self._should_abort():
            self._dead_letter(
                _ShutdownError("shutdown deadline passed before sending"), [request], None
            )
            return False
        if request.ByteSize() > self._max_bytes:
            self._too_large([request], None)
            return False
        try:
            self._call(lambda: self.sink.identify(request))
        except Exception as exc:
            self._dead_letter(exc, [request], None)
            return False
        with self._counters.lock:
            self._counters.identified += 1
        return True

    # -- failures -------------------------------------------------------------------------
    def _too_large(self, items: Sequence[Message], outcome: BatchOutcome | None) -> None:
        """Dead-letter an item no request can carry, at once: every attempt would be refused."""
        error = PugDeliveryError(
            f"{len(items)} item(s) larger on their own than max_request_bytes "
            f"({self._max_bytes}); not sent",
            reason=TOO_LARGE,
            code=grpc.StatusCode.INVALID_ARGUMENT,
        )
        self._dead_letter(error, items, outcome)

    def _dead_letter(
        self, exc: BaseException, items: Sequence[Message], outcome: BatchOutcome | None
    ) -> None:
        error: BaseException
        if self._should_abort():
            error = PugDeliveryError(
                f"{len(items)} item(s) undelivered at shutdown: {_describe(exc)}",
                reason=UNDELIVERED,
                code=status_code(exc) or grpc.StatusCode.CANCELLED,
            )
            error.__cause__ = exc
        elif isinstance(exc, grpc.RpcError):
            error = error_from_rpc(exc)
            error.__cause__ = exc
        else:
            error = exc
        with self._counters.lock:
            self._counters.dead_lettered += len(items)
        if outcome is not None:
            outcome.dead_lettered.extend(
                i.event_id for i in items if isinstance(i, events_pb2.Event)
            )
        _log.warning("%d item(s) not delivered: %s", len(items), _describe(exc))
        self._report(error, items)


class _ShutdownError(Exception):
    """Cause of an ``UNDELIVERED`` report for items never attempted before the close deadline."""


def _describe(error: BaseException) -> str:
    code = status_code(error)
    if code is not None:
        details = getattr(error, "details", None)
        text = details() if callable(details) else ""
        return f"{code.name}: {text}" if text else code.name
    return f"{type(error).__name__}: {error}"


def _decode(events: list[_Encoded]) -> list[events_pb2.Event]:
    """The messages of encoded events (for reports, off the fast path)."""
    payload = b"".join(framed for _, framed in events)
    return list(events_pb2.BatchCreateRequest.FromString(payload).events)


def _stub_event(raw: RawEvent, new_id: str) -> events_pb2.Event:
    """Identity fields of an event that could not be encoded (for its dead-letter report)."""
    given_id, kind, distinct_id, session_id, _, _ = raw
    return events_pb2.Event(
        event_id=given_id or new_id, kind=kind, distinct_id=distinct_id, session_id=session_id
    )


class _Marker:
    """A flush or stop request travelling through the queue behind the items it waits for."""

    __slots__ = ("done", "result", "stop")

    def __init__(self, *, stop: bool) -> None:
        self.stop = stop
        self.done = threading.Event()
        self.result = FlushResult(completed=False)


class Worker:
    """One bounded queue and one background thread per client.

    ``submit`` is the caller's path: a size check and a ``SimpleQueue.put``. When the queue is
    full the oldest item is dropped (counted; reported to ``on_error`` by the worker thread).
    """

    def __init__(
        self,
        *,
        delivery: Delivery,
        batch: BatchSettings,
        counters: Counters,
        report: Reporter,
        clock: Callable[[], float] = time.monotonic,
        abort: threading.Event | None = None,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.delivery = delivery
        self._pause = pause
        self._batch = batch
        self._counters = counters
        self._report = report
        self._clock = clock
        self.abort = abort if abort is not None else threading.Event()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._limit = batch.max_queue_size
        self._crowded_at = max(1, batch.max_queue_size // 2)
        self._crowded_calls = 0
        self._pending: list[RawEvent] = []
        self._deadline = 0.0
        self._overflow_lock = threading.Lock()
        self._overflowed: deque[Any] = deque(maxlen=MAX_OVERFLOW_REPORTED)
        self._overflow_unreported = 0
        self._window_lock = threading.Lock()
        self._window = Window()
        self._flush_waiters = 0
        self._markers = 0
        """Flush/stop markers put in the queue and not yet taken out (not items: not counted)."""
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._swept = False
        """Set by ``close()`` before its last sweep; later arrivals are swept by their caller."""

    # -- caller side ----------------------------------------------------------------------
    def submit(self, item: Any) -> None:
        """Queue an event tuple or an ``IdentifyRequest`` (never blocks)."""
        q = self._queue
        if q.qsize() >= self._crowded_at:
            self._crowded()
        q.put(item)
        if self._swept:  # lost a race with close(): report it rather than strand it
            self._sweep_late_items()

    def _crowded(self) -> None:
        """The queue is past half full: let the worker run, and make room when it is full.

        A thread calling ``track()`` in a loop never gives up the interpreter lock by itself, so
        the worker gets it only every few milliseconds (the switch interval) and falls behind.
        Past half full, the caller yields the lock (``time.sleep(0)``) every few calls, more
        often the fuller the queue: the worker then sends a batch before its network wait hands
        the lock back. It costs the caller the worker's CPU time, never a network wait.
        """
        depth = self._queue.qsize()
        self._crowded_calls += 1
        every = _YIELD_EVERY[min(3, (depth - self._crowded_at) * 8 // self._limit)]
        if self._crowded_calls % every == 0:
            self._pause(0)
        if depth >= self._limit:
            self._make_room()

    def _make_room(self) -> None:
        q = self._queue
        with self._overflow_lock:
            for _ in range(8):
                if q.qsize() < self._limit:
                    return
                try:
                    oldest = q.get_nowait()
                except queue.Empty:
                    return
                if isinstance(oldest, _Marker):
                    q.put(oldest)  # markers are never dropped; it now waits a little longer
                    continue
                self._overflowed.append(oldest)
                self._overflow_unreported += 1
                with self._counters.lock:
                    self._counters.overflowed += 1
                return

    def depth(self) -> tuple[int, int]:
        """``(waiting in the queue, taken by the worker but not yet resolved)``."""
        # Markers are counted before they go in and until after they come out: never an item.
        return max(0, self._queue.qsize() - self._markers), len(self._pending)

    def start(self) -> None:
        """Start the background thread (daemon: the atexit hook, not the thread, drains)."""
        thread = threading.Thread(target=self._run, name="pug-grpc-worker", daemon=True)
        self._thread = thread
        thread.start()

    def on_worker_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def flush(self, timeout: float | None) -> FlushResult:
        """Wait until everything queued before this call is delivered or dead-lettered."""
        if self._stopped:
            return FlushResult(completed=True)
        if self.on_worker_thread():
            _log.warning("flush() called from on_error on the worker thread; not waiting")
            return FlushResult(completed=False)
        marker = _Marker(stop=False)
        with self._window_lock:
            self._flush_waiters += 1
            self._markers += 1
        self._queue.put(marker)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not marker.done.is_set():
            left = _FLUSH_SLICE_S if deadline is None else deadline - time.monotonic()
            if left <= 0 or marker.done.wait(min(left, _FLUSH_SLICE_S)):
                break
            if self._swept or not self._alive():
                self._sweep_late_items()  # nobody else will take the marker out
                break
        if marker.done.is_set():
            return marker.result
        with self._window_lock:
            return self._window.result(completed=False)

    def _alive(self) -> bool:
        """False once no thread will ever take the queue again (``step()`` callers count)."""
        if self._stopped:
            return False
        return self._thread is None or self._thread.is_alive()

    def close(self, timeout: float | None, *, on_abort: Callable[[], None] = lambda: None) -> bool:
        """Drain and stop. Past ``timeout`` the rest is reported as undelivered.

        ``on_abort`` runs when the timeout passes (the client closes its channel there, which
        cancels an RPC in flight). Returns True when everything was resolved in time.
        """
        if self._thread is None or self.on_worker_thread():
            return self._stopped
        marker = _Marker(stop=True)
        with self._window_lock:
            self._markers += 1
        self._queue.put(marker)
        drained = marker.done.wait(timeout)
        if not drained:
            self.abort.set()
            try:
                on_abort()
            finally:
                if not marker.done.wait(1.0):
                    waiting, in_flight = self.depth()
                    _log.warning(
                        "worker did not stop in time; %d item(s) left unreported",
                        waiting + in_flight,
                    )
        if marker.done.is_set():
            self._thread.join(0.5)  # it has nothing left to do but return
        self._swept = True
        self._sweep_late_items()
        return drained

    def _sweep_late_items(self) -> None:
        """Report items a racing caller queued behind the stop request (never sent)."""
        late: list[Any] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Marker):
                self._took_marker()
                item.done.set()
            else:
                late.append(item)
        if late:
            with self._counters.lock:
                self._counters.taken += len(late)
                self._counters.dead_lettered += len(late)
            error = PugDeliveryError(
                f"{len(late)} item(s) queued while the client was closing",
                reason=UNDELIVERED,
                code=grpc.StatusCode.CANCELLED,
            )
            self._report(error, _as_messages(late))

    # -- worker side ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                if not self.step(None):
                    return
            except Exception:  # never let the thread die: the next items still need it
                _log.exception("unexpected error in the pug-grpc worker")

    def step(self, timeout: float | None) -> bool:
        """One turn: take what is there (blocking at most ``timeout``, or until the batch is due),
        send what is due. Returns False once a stop request has been handled."""
        if self._stopped:
            return False
        wait = timeout
        if self._pending:
            due_in = max(0.0, self._deadline - self._clock())
            wait = due_in if wait is None else min(wait, due_in)
        try:
            item = self._queue.get_nowait() if wait is not None and wait <= 0 else None
            if item is None:
                item = self._queue.get(timeout=wait)
        except queue.Empty:
            item = None
        alive = True
        if item is not None:
            alive = self._handle(item)
            # Take whatever else is queued: _handle sends each batch as it reaches max_size.
            while alive:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                alive = self._handle(more)
        if alive and self._pending and self._clock() >= self._deadline:
            self._send_pending()
        self._report_overflow()
        return alive

    def _handle(self, item: Any) -> bool:
        if type(item) is tuple:
            self._counters.taken += 1
            pending = self._pending
            pending.append(item)
            if len(pending) == 1:
                self._deadline = self._clock() + self._batch.max_wait
            if len(pending) >= self._batch.max_size:
                self._send_pending()
                self._report_overflow()
            return True
        if isinstance(item, profiles_pb2.IdentifyRequest):
            self._counters.taken += 1
            self._send_pending()  # keep call order: events queued before it go first
            ok = self.delivery.deliver_identify(item)
            if self._flush_waiters:
                with self._window_lock:
                    if ok:
                        self._window.identified += 1
                    else:
                        self._window.identify_failed += 1
            return True
        if isinstance(item, _Marker):
            self._took_marker()
            if item.stop:
                self._drain()
                self._stopped = True
                self._resolve(item)
                return False
            self._send_pending()
            self._report_overflow()
            self._resolve(item)
            return True
        _log.error("ignoring unexpected queue item %r", type(item).__name__)
        return True

    def _took_marker(self) -> None:
        with self._window_lock:
            self._markers -= 1

    def _resolve(self, marker: _Marker) -> None:
        with self._window_lock:
            marker.result = self._window.result(completed=True)
            if not marker.stop:
                self._flush_waiters -= 1
            self._window = Window()
        marker.done.set()

    def _drain(self) -> None:
        """Send everything still queued (stop request): batches go out without waiting."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Marker):
                self._took_marker()
                if not item.stop:
                    self._send_pending()
                    self._resolve(item)
                continue
            self._handle(item)
        self._send_pending()
        self._report_overflow()

    def _send_pending(self) -> None:
        if not self._pending:
            return
        batch = self._pending
        try:
            outcome = self.delivery.deliver_events(batch)
        finally:
            self._pending = []
        if self._flush_waiters:
            with self._window_lock:
                w = self._window
                w.delivered.extend(outcome.delivered)
                w.dead_lettered.extend(outcome.dead_lettered)
                for reason, count in outcome.dropped_by_reason.items():
                    w.dropped_by_reason[reason] = w.dropped_by_reason.get(reason, 0) + count

    def _report_overflow(self) -> None:
        if not self._overflow_unreported:
            return
        with self._overflow_lock:
            count = self._overflow_unreported
            items = list(self._overflowed)
            self._overflowed.clear()
            self._overflow_unreported = 0
        if self._flush_waiters:
            with self._window_lock:
                self._window.overflowed += count
        _log.warning("queue full: dropped the %d oldest item(s)", count)
        # Without on_error nobody receives the messages: do not build up to 1,000 of them.
        report_items = _as_messages(items) if wants_items(self._report) else []
        error = PugDeliveryError(
            f"the queue was full: {count} oldest item(s) dropped",
            reason=QUEUE_OVERFLOW,
            code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        self._report(error, report_items)


def _as_messages(items: Sequence[Any]) -> list[Message]:
    out: list[Message] = []
    raws = [i for i in items if type(i) is tuple]
    ids = uuid7_batch(len(raws)) if raws else []
    k = 0
    for item in items:
        if type(item) is tuple:
            try:
                out.append(build_event(item, ids[k]))
            except Exception:
                out.append(_stub_event(item, ids[k]))
            k += 1
        elif isinstance(item, Message):
            out.append(item)
    return out
