"""The hand-off from callers to the worker: one lock-free queue of items and control messages.

Callers put event tuples and ``IdentifyRequest`` messages; the engine puts its own control
messages (a reply, a flush marker, a wake-up, a fork's pause) in the same queue, so the worker
sees everything in the order it happened. The queue holds ``max_queue_size`` calls at most:
past half full the caller yields the interpreter lock now and then so the worker keeps up, and
a full queue drops its oldest item (counted at once, reported later by the worker). Calls are
counted as they arrive, so ``stats()`` never misses an item the worker is picking up.

Putting takes no lock (``SimpleQueue.put`` is re-entrant, so ``track()`` from a signal handler
is safe); dropping, sweeping and the ledger go under the engine's lock.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

from pug_grpc._ingest.messages import build_event, stub_event, uuid7_batch
from pug_grpc._ingest.outcomes import Ledger
from pug_grpc._ingest.pipeline import Attempt
from pug_grpc._ingest.reports import MAX_REPORTED_ITEMS
from pug_grpc._ingest.sink import Reply
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

__all__ = ["WAKE", "Completion", "Control", "Flush", "Handoff", "Pause", "as_messages"]

_YIELD_EVERY: Final = (64, 32, 16, 4)
"""Calls between two yields of the interpreter lock, by quarters of the hand-off past half full."""


class Control:
    """A message to the worker travelling through the hand-off (never an item)."""

    __slots__ = ()


class Flush(Control):
    """``flush()``: the worker closes the flush window when it reaches this marker."""

    __slots__ = ("window",)

    def __init__(self) -> None:
        self.window: int | None = None


class Wake(Control):
    """Look at the phase again (``close()`` began)."""

    __slots__ = ()


class Pause(Control):
    """A fork is coming: quiesce."""

    __slots__ = ()


class Completion(Control):
    """A sink's reply, handed to the thread that drives the pipeline."""

    __slots__ = ("attempt", "reply")

    def __init__(self, attempt: Attempt, reply: Reply) -> None:
        self.attempt = attempt
        self.reply = reply


WAKE: Final = Wake()


class Handoff:
    """The queue between callers and the worker, bounded in calls."""

    def __init__(
        self,
        *,
        limit: int,
        ledger: Ledger,
        lock: threading.RLock,
        pause: Callable[[float], None],
        yields: bool,
    ) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._front: deque[Any] = deque()  # taken first: what a fork's quiesce put back
        self._limit = limit
        self._crowded_at = max(1, limit // 2)
        self._ledger = ledger
        self._lock = lock
        self._pause = pause
        self._yields = yields  # only when a worker thread exists to yield to
        self._calls = itertools.count()
        self._note_call = self._calls.__next__
        self._crowded_calls = 0
        self._overflow_items: deque[Any] = deque(maxlen=MAX_REPORTED_ITEMS)
        self._overflowed = 0

    # -- callers ------------------------------------------------------------------------------
    def put(self, item: Any) -> None:
        """Hand one call's item over; never blocks (a full hand-off drops its oldest)."""
        if self._queue.qsize() >= self._crowded_at:
            self._crowded()
        self._note_call()  # before the put: the worker may take the item at once
        self._queue.put(item)

    def put_control(self, control: Control) -> None:
        self._queue.put(control)

    def _crowded(self) -> None:
        """Past half full: let the worker run, and make room when full.

        A thread calling ``track()`` in a loop never gives up the interpreter lock by itself, so
        the worker gets it only every few milliseconds (the switch interval) and falls behind.
        Past half full, the caller yields the lock every few calls, more often the fuller the
        hand-off: it costs the caller the worker's CPU time, never a network wait.
        """
        depth = self._queue.qsize()
        self._crowded_calls += 1
        quarter = min(3, (depth - self._crowded_at) * 8 // max(1, self._limit))
        if self._crowded_calls % _YIELD_EVERY[quarter] == 0 and self._yields:
            self._pause(0)
        if depth >= self._limit:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        """Drop the oldest item (control messages met on the way move to the front, in order)."""
        with self._lock:
            for _ in range(8):
                try:
                    oldest = self._queue.get_nowait()
                except queue.Empty:
                    return
                if isinstance(oldest, Control):
                    self._front.append(oldest)
                    continue
                window = self._ledger.take(1)
                self._ledger.resolve(window, "overflowed", 1)
                self._overflow_items.append(oldest)
                self._overflowed += 1
                return

    # -- the worker ---------------------------------------------------------------------------
    def next(self, timeout: float | None) -> Any:
        """The next item or control message, waiting up to ``timeout`` (``None`` when none)."""
        if self._front:
            return self._front.popleft()
        try:
            if timeout is not None and timeout <= 0:
                return self._queue.get_nowait()
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def put_back(self, taken: Iterable[Any]) -> None:
        """Return what was taken to the front, in the order given."""
        self._front.extendleft(reversed(list(taken)))

    def empty(self) -> bool:
        return not self._front and self._queue.empty()

    def waiting(self) -> int:
        """Items handed over and not yet taken by the worker (call under the engine's lock)."""
        return max(0, _count_of(self._calls) - self._ledger.taken)

    def take_overflow(self) -> tuple[int, list[Any]]:
        """Items dropped since the last call: how many, and the last ones (for a report)."""
        with self._lock:
            count, self._overflowed = self._overflowed, 0
            items = list(self._overflow_items)
            self._overflow_items.clear()
        return count, items

    def sweep(self) -> list[Any]:
        """Empty the hand-off after the worker's last turn: items left count as undelivered,
        flush markers get their window closed. Returns the items (for a report)."""
        late: list[Any] = []
        with self._lock:
            while (obj := self.next(0.0)) is not None:
                if isinstance(obj, Control):
                    if isinstance(obj, Flush) and obj.window is None:
                        obj.window = self._ledger.close_window()
                    continue
                window = self._ledger.take(1)
                self._ledger.resolve(window, "undelivered", 1)
                late.append(obj)
        return late


def as_messages(items: list[Any]) -> list[Any]:
    """Messages for items that never reached the pipeline (for a report)."""
    out: list[Any] = []
    raws = [i for i in items if type(i) is tuple]
    ids = iter(uuid7_batch(len(raws))) if raws else iter(())
    for item in items:
        if type(item) is tuple:
            new_id = next(ids)
            try:
                out.append(build_event(item, new_id))
            except Exception:
                out.append(stub_event(item, new_id))
        elif isinstance(item, profiles_pb2.IdentifyRequest):
            out.append(item)
    return out


def _count_of(counter: itertools.count[int]) -> int:
    """How many values ``counter`` has handed out (its repr is ``count(N)``)."""
    return int(repr(counter)[6:-1])
