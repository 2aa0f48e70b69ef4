"""Where encoded requests wait: the public :class:`Storage` interface and :class:`MemoryStorage`.

The worker appends a :class:`Record` per sealed request (never per ``track()`` call), leases
the oldest for sending, acknowledges it once every item of it has an outcome, or releases it
(it goes back to the front) when it could not be resolved. A storage enforces its own byte
budget: ``append`` returns the records it dropped (oldest first) to make room, and the client
reports them as ``QUEUE_OVERFLOW``. docs/storage.md describes the contract;
:mod:`pug_grpc.testing.storage_conformance` checks an implementation against it.
"""

from __future__ import annotations

import abc
import logging
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import ClassVar, Final

import grpc

from pug_grpc._errors import CLIENT_DOMAIN, PugError
from pug_grpc._ingest.batches import Record

__all__ = [
    "STORAGE_FAILED",
    "GuardedStorage",
    "MemoryStorage",
    "ProblemReporter",
    "Storage",
    "StorageError",
]

_log = logging.getLogger("pug_grpc.storage")

STORAGE_FAILED: Final = "STORAGE_FAILED"
"""The ``reason`` of a :class:`StorageError`."""

_COMPRESS_ABOVE: Final = 8 * 1024 * 1024
"""Waiting records beyond this many bytes are kept compressed (zlib level 1, about 9x on
typical events): a long outage then costs a tenth of the memory. Below it nothing is
compressed, so a healthy client, even during a burst of tens of thousands of events, never
pays for it."""


class StorageError(PugError):
    """A storage met a problem it worked around (a bad file, a full disk, a read-only path).

    Handed to ``on_error`` (with no items) and logged, once per problem. ``message`` says
    which path, what went wrong and what the client does next; ``path`` is the file or
    directory concerned (empty when there is none).
    """

    def __init__(self, message: str, *, path: str = "", cause: str = "") -> None:
        metadata = {k: v for k, v in (("path", path), ("cause", cause)) if v}
        super().__init__(
            message,
            code=grpc.StatusCode.UNAVAILABLE,
            reason=STORAGE_FAILED,
            domain=CLIENT_DOMAIN,
            metadata=metadata,
        )
        self.path = path
        self.cause = cause


ProblemReporter = Callable[[StorageError], None]
"""What :meth:`Storage.open` receives: call it with each problem the storage worked around."""


class Storage(abc.ABC):
    """A queue of encoded requests for one client (subclass it to write your own).

    Every method is called from one thread, the client's worker (the caller's own thread in
    ``sync_mode``), except :meth:`size_bytes` and :meth:`queued_items`, which ``stats()`` may
    read from any thread. Methods must not raise: a storage that cannot do its job reports it
    (through the ``report`` given to :meth:`open`) and goes on in memory. One instance serves
    one client.

    Seven methods are required; the others have defaults that suit a storage whose records
    die with the process (like :class:`MemoryStorage`).
    """

    persistent: ClassVar[bool] = False
    """Records survive the process: a later client on the same storage sends what is left."""

    recover_every: float | None = None
    """Seconds between calls of :meth:`recover` while the client is idle (None: only when the
    worker runs anyway)."""

    def open(self, report: ProblemReporter) -> None:  # noqa: B027 - optional hook
        """Called once before any other call. Keep it cheap (no file work: first use does it)."""

    @abc.abstractmethod
    def append(self, record: Record) -> Sequence[Record]:
        """Store ``record``; return the records dropped (oldest first) to stay within budget.

        The newest record is kept even when it alone exceeds the budget.
        """

    @abc.abstractmethod
    def lease(self) -> Record | None:
        """The oldest stored record not leased yet, now leased (``None`` when there is none)."""

    @abc.abstractmethod
    def ack(self, record: Record) -> None:
        """Forget a leased record: every item of it has an outcome. Unknown keys are ignored."""

    @abc.abstractmethod
    def release(self, record: Record) -> None:
        """Put a leased record back, ahead of every record never leased."""

    @abc.abstractmethod
    def size_bytes(self) -> int:
        """Payload bytes held for waiting and leased records (what ``max_bytes`` bounds)."""

    @abc.abstractmethod
    def queued_items(self) -> int:
        """Items (events and identify calls) in records that are not leased."""

    @abc.abstractmethod
    def drain(self) -> list[Record]:
        """Return every record not leased: this client will not send them (close ran out of
        time). A persistent storage keeps them for a later client; others forget them."""

    def recover(self, window: int) -> int:
        """Take in records left by clients that ended (at start, and from time to time).

        They belong to flush window ``window`` from now on (``lease`` returns them with it);
        returns how many items they hold, which the client adds to its accounts. Called
        often: return 0 quickly when there is nothing to look for.
        """
        return 0

    def take_lost(self) -> list[Record]:
        """Records counted by ``append`` or ``recover`` that the storage can no longer give
        back (their file turned out corrupt): the client dead-letters them. Usually empty."""
        return []

    def after_fork_in_child(self) -> None:
        """In a forked child, before any other call: forget what the parent holds, without
        closing or touching anything of the parent's (files, locks, connections)."""
        self.drain()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the storage holds (files, connections); the client is closed."""


class _Stored:
    """A waiting record, compressed or not."""

    __slots__ = ("data", "record", "size")

    def __init__(self, record: Record, compress: bool) -> None:
        self.record: Record | None = None if compress else record
        self.data = zlib.compress(record.payload, 1) if compress else b""
        self.size = len(self.data) if compress else len(record.payload)
        if compress:  # keep everything but the payload
            self.record = Record(record.kind, b"", record.count, record.window, record.key)

    def restore(self) -> Record:
        assert self.record is not None
        if not self.data:
            return self.record
        r = self.record
        return Record(r.kind, zlib.decompress(self.data), r.count, r.window, r.key)


class MemoryStorage(Storage):
    """The default storage: a deque in memory, bounded by ``max_bytes``.

    Nothing survives the process. Records waiting behind the first few MiB are compressed.
    """

    def __init__(self, *, max_bytes: int = 48 * 1024 * 1024) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be an integer >= 1, not {max_bytes!r}")
        self._max_bytes = max_bytes
        self._waiting: deque[_Stored] = deque()
        self._leased: dict[int, int] = {}  # key -> bytes counted for it
        self._waiting_bytes = 0
        self._leased_bytes = 0
        self._waiting_items = 0

    def __repr__(self) -> str:
        return f"MemoryStorage(max_bytes={self._max_bytes})"

    def append(self, record: Record) -> list[Record]:
        stored = _Stored(record, compress=self._waiting_bytes >= _COMPRESS_ABOVE)
        self._waiting.append(stored)
        self._waiting_bytes += stored.size
        self._waiting_items += record.count
        dropped: list[Record] = []
        while self.size_bytes() > self._max_bytes and len(self._waiting) > 1:
            oldest = self._waiting.popleft()
            self._forget(oldest)
            dropped.append(oldest.restore())
        return dropped

    def _forget(self, stored: _Stored) -> None:
        assert stored.record is not None
        self._waiting_bytes -= stored.size
        self._waiting_items -= stored.record.count

    def lease(self) -> Record | None:
        if not self._waiting:
            return None
        stored = self._waiting.popleft()
        self._forget(stored)
        record = stored.restore()
        self._leased[record.key] = len(record.payload)
        self._leased_bytes += len(record.payload)
        return record

    def ack(self, record: Record) -> None:
        self._leased_bytes -= self._leased.pop(record.key, 0)

    def release(self, record: Record) -> None:
        self.ack(record)
        stored = _Stored(record, compress=False)
        self._waiting.appendleft(stored)
        self._waiting_bytes += stored.size
        self._waiting_items += record.count

    def size_bytes(self) -> int:
        return self._waiting_bytes + self._leased_bytes

    def queued_items(self) -> int:
        return self._waiting_items

    def drain(self) -> list[Record]:
        out = [stored.restore() for stored in self._waiting]
        self._waiting.clear()
        self._waiting_bytes = 0
        self._waiting_items = 0
        return out

    def after_fork_in_child(self) -> None:
        self.drain()
        self._leased.clear()
        self._leased_bytes = 0

    def close(self) -> None:
        self.drain()


class GuardedStorage(Storage):
    """A storage written by the user, with whatever it raises turned into a report and memory.

    The first exception is logged and reported once (a :class:`StorageError`); from then on
    the client keeps its queue in memory. What the failed storage still holds is moved to
    memory when its ``drain()`` works; records leased from it are acknowledged in it while it
    answers, and go to memory when released.
    """

    def __init__(self, inner: Storage, *, max_bytes: int) -> None:
        self.inner = inner
        self._memory = MemoryStorage(max_bytes=max_bytes)
        self._failed = False
        self._report: ProblemReporter = lambda _error: None
        self._from_memory: set[int] = set()
        self._dropped: list[Record] = []
        self.recover_every = getattr(inner, "recover_every", None)

    def __repr__(self) -> str:
        return repr(self.inner)

    def _fail(self, exc: BaseException, doing: str) -> None:
        if self._failed:
            return
        self._failed = True
        moved = 0
        try:
            for record in self.inner.drain():
                self._dropped.extend(self._memory.append(record))
                moved += record.count
            where = f"{moved} queued item(s) moved to memory"
        except Exception as again:
            where = f"what it holds could not be moved ({again!r}) and is not sent"
        message = (
            f"the storage {self.inner!r} raised while {doing}: {exc!r}; {where}; the client "
            f"keeps its queue in memory from now on"
        )
        _log.error("%s", message)
        try:
            self._report(StorageError(message, cause=type(exc).__name__))
        except Exception:
            _log.exception("reporting a storage problem failed")

    def open(self, report: ProblemReporter) -> None:
        self._report = report
        try:
            self.inner.open(report)
        except Exception as exc:
            self._fail(exc, "opening")

    def append(self, record: Record) -> list[Record]:
        dropped, self._dropped = self._dropped, []
        if not self._failed:
            try:
                return dropped + list(self.inner.append(record))
            except Exception as exc:
                self._fail(exc, "storing a request")
                dropped += self._dropped
                self._dropped = []
        return dropped + self._memory.append(record)

    def lease(self) -> Record | None:
        if not self._failed:
            try:
                record = self.inner.lease()
            except Exception as exc:
                self._fail(exc, "leasing a request")
            else:
                if record is not None:
                    return record
        record = self._memory.lease()
        if record is not None:
            self._from_memory.add(record.key)
        return record

    def ack(self, record: Record) -> None:
        if record.key in self._from_memory:
            self._from_memory.discard(record.key)
            self._memory.ack(record)
        elif not self._failed:
            try:
                self.inner.ack(record)
            except Exception as exc:
                self._fail(exc, "acknowledging a request")

    def release(self, record: Record) -> None:
        if record.key not in self._from_memory and not self._failed:
            try:
                self.inner.release(record)
                return
            except Exception as exc:
                self._fail(exc, "releasing a request")
        self._from_memory.discard(record.key)
        self._memory.release(record)

    def _inner_count(self, name: str) -> int:
        if self._failed:
            return 0
        try:
            return int(getattr(self.inner, name)())
        except Exception:
            return 0

    def size_bytes(self) -> int:
        return self._inner_count("size_bytes") + self._memory.size_bytes()

    def queued_items(self) -> int:
        return self._inner_count("queued_items") + self._memory.queued_items()

    def drain(self) -> list[Record]:
        out: list[Record] = []
        if not self._failed:
            try:
                out = list(self.inner.drain())
            except Exception as exc:
                self._fail(exc, "draining")
        return out + self._memory.drain()

    def recover(self, window: int) -> int:
        if self._failed:
            return 0
        try:
            return int(self.inner.recover(window))
        except Exception as exc:
            self._fail(exc, "looking for what ended clients left")
            return 0

    def take_lost(self) -> list[Record]:
        try:
            return list(self.inner.take_lost())
        except Exception:
            return []

    def after_fork_in_child(self) -> None:
        try:
            self.inner.after_fork_in_child()
        except Exception:
            _log.exception("resetting the storage after fork failed")
        self._memory.after_fork_in_child()
        self._from_memory.clear()

    def close(self) -> None:
        try:
            self.inner.close()
        except Exception:
            _log.exception("closing the storage failed")
        self._memory.close()
