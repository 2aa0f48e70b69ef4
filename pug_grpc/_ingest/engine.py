"""The ingestion engine: the worker thread and the lifecycle (start, flush, close, fork).

Lifecycle, in named phases under one lock (``Engine._lock``)::

    NEW ──first item──> RUNNING ──close()──> DRAINING ──drained or deadline──> CLOSED
     └────────────────────────close()──────────────────────────────────────────┘

A forked child starts over in NEW with empty state (the parent's queue stays the parent's).

Who owns what:

============================  ===========================  ==================================
field                         written by                   guarded by
============================  ===========================  ==================================
``_phase``, ``_deadline``     any thread (close, start)    ``_lock``
``_handoff``                  callers put, worker takes    lock-free put (see handoff.py)
``ledger``                    the worker (and refusals)    ``_lock``
``_pipeline``                 the driving thread only      (one thread)
``_closed``, ``_fork_pause``  the worker                   ``threading.Event`` (quiesce.py)
============================  ===========================  ==================================

``_lock`` is re-entrant: ``track()`` from a signal handler may need it on a thread that the
signal interrupted while it held it, and must not deadlock. The callers' fast path takes no
lock at all (:mod:`pug_grpc._ingest.handoff`).
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

from pug_grpc._ingest.handoff import WAKE, Completion, Control, Flush, Handoff, Pause, as_messages
from pug_grpc._ingest.messages import RawEvent, uuid7_batch
from pug_grpc._ingest.outcomes import (
    QUEUE_OVERFLOW,
    UNDELIVERED,
    FlushResult,
    Ledger,
    PugDeliveryError,
    Stats,
)
from pug_grpc._ingest.pipeline import Attempt, Pipeline
from pug_grpc._ingest.quiesce import ForkPause
from pug_grpc._ingest.reports import SafeReporter
from pug_grpc._ingest.settings import BatchSettings
from pug_grpc._ingest.sink import Reply, Sink
from pug_grpc._ingest.storage import MemoryStorage, Storage
from pug_grpc._retry import RetrySettings
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

__all__ = ["Engine", "Phase"]

_log = logging.getLogger("pug_grpc.engine")

_TAKE_AT_ONCE: Final = 512
"""Items the worker takes from the hand-off before encoding them in one go."""

_CLOSE_GRACE_S: Final = 1.0
"""How long ``close()`` waits past its deadline for the worker to report what was left."""


class Phase(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    DRAINING = "draining"
    CLOSED = "closed"


_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Every engine that is not closed (a running engine is kept alive by its own thread; a new
one lives only as long as its client)."""


class Engine:
    """Intake, worker and lifecycle of one client's ingestion (see the module doc)."""

    def __init__(
        self,
        *,
        batch: BatchSettings,
        retry: RetrySettings | None,
        report: SafeReporter,
        make_sink: Callable[[], Sink],
        make_storage: Callable[[], Storage] | None = None,
        on_closed: Callable[[], None] = lambda: None,
        on_start: Callable[[], None] = lambda: None,
        shutdown_timeout: float = 5.0,
        threaded: bool = True,
        clock: Callable[[], float] = time.monotonic,
        uniform: Callable[[float, float], float] | None = None,
        new_ids: Callable[[int], list[str]] = uuid7_batch,
        connection_problem: Callable[[BaseException], str | None] = lambda _: None,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.batch = batch
        self.retry = retry
        self.report = report
        self._make_sink = make_sink
        self._make_storage = make_storage or (
            lambda: MemoryStorage(max_bytes=batch.max_queue_bytes)
        )
        self._on_closed = on_closed
        self._on_start = on_start
        self.shutdown_timeout = shutdown_timeout
        self.threaded = threaded
        self._clock = clock
        self._uniform = uniform
        self._new_ids = new_ids
        self._connection_problem = connection_problem
        self._pause = pause
        self._reset()
        _engines.add(self)  # from the start: a fork during the first track() must reset it

    def _reset(self) -> None:
        """Everything a forked child must rebuild rather than inherit."""
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._phase = Phase.NEW
        self._deadline = math.inf
        self.ledger = Ledger()
        self._handoff = Handoff(
            limit=self.batch.max_queue_size,
            ledger=self.ledger,
            lock=self._lock,
            pause=self._pause,
            yields=self.threaded,
        )
        self._pipeline: Pipeline | None = None
        self._wake_at: float | None = None
        self._starting = False
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._fork_pause = ForkPause()
        self._drive_lock = threading.Lock()

    # -- the caller's side ----------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def accepting(self) -> bool:
        """New items are taken (read without the lock: a racing close is handled after put)."""
        phase = self._phase
        return phase is Phase.RUNNING or phase is Phase.NEW

    def submit(self, item: RawEvent | profiles_pb2.IdentifyRequest) -> None:
        """Hand an event tuple or an ``IdentifyRequest`` to the worker; never blocks."""
        self._handoff.put(item)
        phase = self._phase
        if phase is Phase.RUNNING and self.threaded:
            return
        if phase is Phase.NEW:
            self._start()
        elif phase is Phase.CLOSED:
            self._sweep()  # lost a race with close(): report it rather than strand it
        if not self.threaded:
            self._drive()

    def refuse(self, error: PugDeliveryError, item: Any) -> None:
        """Count and report a call refused on the caller's thread (never enqueued)."""
        with self._lock:
            self.ledger.rejected += 1
        _log.warning("dropped: %s", error.message)
        self.report(error, [item] if item is not None else [])

    def _put_control(self, control: Control) -> None:
        self._handoff.put_control(control)

    def _completed(self, attempt: Attempt, reply: Reply) -> None:
        """A sink's reply (any thread): hand it to the driving thread."""
        self._put_control(Completion(attempt, reply))

    # -- start ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start now rather than at the first item (a persistent storage may hold some)."""
        if self._phase is Phase.NEW:
            self._start()
            self._put_control(WAKE)  # in sync_mode, the first call drives it

    def _start(self) -> None:
        with self._lock:
            if self._phase is not Phase.NEW or self._starting:
                # Starting already: a signal handler's track() interrupted the start on this
                # thread (the lock is re-entrant). Its item waits in the hand-off.
                return
            self._starting = True
            try:
                self._build_and_start()
            finally:
                self._starting = False

    def _build_and_start(self) -> None:
        """Under the lock: the pipeline, then the worker thread (``_start`` guards re-entry)."""
        self._pipeline = Pipeline(
            sink=self._make_sink(),
            storage=self._make_storage(),
            batch=self.batch,
            retry=self.retry,
            ledger=self.ledger,
            lock=self._lock,
            report=self.report,
            deliver_reply=self._completed,
            clock=self._clock,
            new_ids=self._new_ids,
            connection_problem=self._connection_problem,
            **({"uniform": self._uniform} if self._uniform is not None else {}),
        )
        if not self.threaded:
            self._pipeline.urgent = True  # each call sends before it returns
        self._phase = Phase.RUNNING
        self._on_start()
        if self.threaded:
            thread = threading.Thread(target=self._run, name="pug-grpc-worker", daemon=True)
            self._thread = thread
            thread.start()

    def on_worker_thread(self) -> bool:
        thread = self._thread
        return thread is not None and threading.current_thread() is thread

    # -- the worker -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                if not self._turn(block=True):
                    return
            except BaseException:  # never let the thread die: the next items still need it
                _log.exception("unexpected error in the pug-grpc worker")

    def _drive(self) -> None:
        """``sync_mode``: drive the pipeline on the caller's thread until nothing is left."""
        while self._drive_lock.acquire(blocking=False):
            try:
                while self._phase is not Phase.CLOSED and not self._settled():
                    if not self._turn(block=True):
                        break
            finally:
                self._drive_lock.release()
            if self._settled() or self._phase is Phase.CLOSED:
                return  # else another caller's item arrived as we let go: take it too

    def _settled(self) -> bool:
        pipeline = self._pipeline
        return pipeline is None or (pipeline.idle() and self._handoff.empty())

    def _turn(self, *, block: bool) -> bool:
        """Wait for something to do, take what has arrived, let the pipeline act.

        Returns False once the engine is closed (the worker then ends).
        """
        pipeline = self._pipeline
        assert pipeline is not None
        limit = self._deadline if self._phase is Phase.DRAINING else math.inf
        if self._wake_at is not None:
            limit = min(limit, self._wake_at)
        timeout = None if limit == math.inf else max(0.0, limit - self._clock())
        obj = self._handoff.next(timeout if block else 0.0)
        raws: list[RawEvent] = []
        taken = 0
        while obj is not None:
            if type(obj) is tuple:
                raws.append(obj)
                if len(raws) >= _TAKE_AT_ONCE:
                    self._take_events(pipeline, raws)
                    raws = []
            else:
                if raws:
                    self._take_events(pipeline, raws)
                    raws = []
                self._handle(pipeline, obj)
            taken += 1
            if taken >= 4 * _TAKE_AT_ONCE:
                break
            obj = self._handoff.next(0.0)
        if raws:
            self._take_events(pipeline, raws)
        self._report_overflow()
        if self._phase is Phase.DRAINING:
            pipeline.urgent = True
            pipeline.seal()
        self._wake_at = pipeline.step()
        if self._phase is Phase.DRAINING:
            if self._settled():
                self._finish()
                return False
            if self._clock() >= self._deadline:
                pipeline.abandon()
                self._finish()
                return False
        with self._lock:
            self._changed.notify_all()
        return True

    def _take_events(self, pipeline: Pipeline, raws: list[RawEvent]) -> None:
        with self._lock:
            window = self.ledger.take(len(raws))
        if pipeline.page_window is not None and pipeline.page_window != window:
            pipeline.seal()
        pipeline.take_events(raws, window)

    def _handle(self, pipeline: Pipeline, obj: Any) -> None:
        if isinstance(obj, profiles_pb2.IdentifyRequest):
            with self._lock:
                window = self.ledger.take(1)
            pipeline.take_identify(obj.SerializeToString(), window)
            return
        if isinstance(obj, Completion):
            pipeline.on_reply(obj.attempt, obj.reply)
        elif isinstance(obj, Flush):
            pipeline.seal()
            with self._lock:
                obj.window = self.ledger.close_window()
        elif isinstance(obj, Pause):
            self._fork_pause.park(pipeline, self._handoff)

    def _report_overflow(self) -> None:
        count, items = self._handoff.take_overflow()
        if not count:
            return
        _log.warning("hand-off full: dropped the %d oldest call(s)", count)
        error = PugDeliveryError(
            f"the queue was full: {count} oldest item(s) dropped",
            reason=QUEUE_OVERFLOW,
        )
        self.report(error, as_messages(items) if self.report.wants_items else [])

    def _finish(self) -> None:
        """Closed: report stragglers, release the storage and the channel, wake waiters."""
        with self._lock:
            self._phase = Phase.CLOSED
            _engines.discard(self)
        self._sweep()
        pipeline = self._pipeline
        if pipeline is not None:
            try:
                pipeline.storage.close()
            except Exception:
                _log.exception("closing the storage failed")
        try:
            self._on_closed()
        except Exception:
            _log.exception("closing the channel failed")
        self._closed.set()
        with self._lock:
            self._changed.notify_all()

    def _sweep(self) -> None:
        """Report items that arrived after the worker's last turn (never sent)."""
        late = self._handoff.sweep()
        with self._lock:
            self._changed.notify_all()
        if late:
            error = PugDeliveryError(
                f"{len(late)} item(s) queued while the client was closing",
                reason=UNDELIVERED,
            )
            self.report(error, as_messages(late) if self.report.wants_items else [])

    # -- flush ------------------------------------------------------------------------------
    def flush(self, timeout: float | None) -> FlushResult:
        """Wait until everything enqueued so far has an outcome; report this window's."""
        if self.on_worker_thread():
            _log.warning("flush() called from on_error on the worker thread; not waiting")
            return FlushResult(completed=False)
        marker = Flush()
        with self._lock:
            if self._phase is Phase.NEW:
                return self.ledger.claim(self.ledger.window, completed=True)
            self._put_control(marker)
        if not self.threaded:
            self._drive()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                window = marker.window
                if window is not None and self.ledger.pending(window) == 0:
                    return self.ledger.claim(window, completed=True)
                if self._phase is Phase.CLOSED and window is None:
                    marker.window = window = self.ledger.close_window()
                    continue
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(0.25 if left is None else min(left, 0.25))
            up_to = marker.window if marker.window is not None else self.ledger.window
            return self.ledger.claim(up_to, completed=False)

    # -- close ------------------------------------------------------------------------------
    def close(self, timeout: float | None, *, wait: bool = True) -> bool:
        """Stop intake, drain within ``timeout`` seconds, report the rest; idempotent.

        Every caller waits for the same drain (a shorter ``timeout`` brings the deadline
        forward). Called on the worker thread (from ``on_error``), it starts the shutdown and
        returns at once. Returns True when nothing was left unreported.
        """
        with self._lock:
            phase = self._phase
            if phase is Phase.NEW:
                self._phase = Phase.CLOSED
                _engines.discard(self)
                self._closed.set()
                self._changed.notify_all()
            elif phase is not Phase.CLOSED:
                now = self._clock()
                ends = math.inf if timeout is None else now + max(0.0, timeout)
                self._deadline = min(self._deadline, ends)
                self._phase = Phase.DRAINING
        if phase is Phase.NEW:
            self._after_close_new()
            return True
        if phase is not Phase.CLOSED:
            self._put_control(WAKE)
            if not self.threaded:
                self._drive()
        if not wait or self.on_worker_thread():
            return self._closed.is_set()
        grace = None if timeout is None else max(0.0, timeout) + _CLOSE_GRACE_S
        if not self._closed.wait(grace):
            _log.warning("the pug-grpc worker did not stop in time; its queue is abandoned")
            return False
        return True

    def _after_close_new(self) -> None:
        try:
            self._on_closed()
        except Exception:
            _log.exception("closing the channel failed")

    # -- stats ------------------------------------------------------------------------------
    def stats(self) -> Stats:
        with self._lock:
            return self.ledger.stats(waiting=self._handoff.waiting())

    # -- fork -------------------------------------------------------------------------------
    def before_fork(self) -> None:
        """Quiesce: no request in flight and the worker parked, so no thread is inside gRPC."""
        if self._phase not in (Phase.RUNNING, Phase.DRAINING) or self.on_worker_thread():
            return
        if not self.threaded or self._thread is None or not self._thread.is_alive():
            return
        self._fork_pause.arm()
        self._put_control(Pause())
        if not self._fork_pause.wait_quiet():
            _log.warning(
                "the pug-grpc worker did not quiesce before fork() (%d request(s) in flight)",
                self.ledger.in_flight,
            )

    def after_fork_in_parent(self) -> None:
        self._fork_pause.release()

    def after_fork_in_child(self) -> None:
        """Start over: the parent's queue, thread and requests stay the parent's."""
        pipeline = self._pipeline
        self._reset()
        if pipeline is not None:
            try:  # the storage forgets the parent's records (a new pipeline may reuse it)
                pipeline.storage.after_fork_in_child()
            except Exception:
                _log.exception("resetting the storage after fork failed")


def live_engines() -> list[Engine]:
    """Engines not closed yet (for the exit and fork hooks)."""
    return list(_engines)
