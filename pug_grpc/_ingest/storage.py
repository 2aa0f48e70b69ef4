"""Where encoded requests wait: the :class:`Storage` interface and :class:`MemoryStorage`.

The worker appends a :class:`Record` per sealed request (never per ``track()`` call), leases
the oldest for sending, acknowledges it once every item of it has an outcome, or releases it
(it goes back to the front) when it could not be resolved. A storage enforces its own byte
budget: ``append`` returns the records it dropped (oldest first) to make room.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Sequence
from typing import Final, Protocol

from pug_grpc._ingest.batches import Record

__all__ = ["MemoryStorage", "Storage"]

_COMPRESS_ABOVE: Final = 8 * 1024 * 1024
"""Waiting records beyond this many bytes are kept compressed (zlib level 1, about 9x on
typical events): a long outage then costs a tenth of the memory. Below it nothing is
compressed, so a healthy client, even during a burst of tens of thousands of events, never
pays for it."""


class Storage(Protocol):
    """What the ingestion worker needs from a queue of encoded requests.

    All methods are called from one thread (the worker), except ``size_bytes`` and
    ``queued_items`` which ``stats()`` may read from any thread.
    """

    def append(self, record: Record) -> Sequence[Record]:
        """Store ``record``; return the records dropped to stay within the byte budget."""
        ...

    def lease(self) -> Record | None:
        """The oldest stored record not leased yet, now leased (``None`` when there is none)."""
        ...

    def ack(self, record: Record) -> None:
        """Forget a leased record: every item of it has an outcome."""
        ...

    def release(self, record: Record) -> None:
        """Put a leased record back, first in line (it will be leased again)."""
        ...

    def size_bytes(self) -> int:
        """Bytes held for waiting and leased records."""
        ...

    def queued_items(self) -> int:
        """Items (events and identify calls) in records that are not leased."""
        ...

    def drain(self) -> list[Record]:
        """Remove and return every record that is not leased (shutdown, fork)."""
        ...

    def close(self) -> None:
        """Release what the storage holds (files, connections)."""
        ...


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


class MemoryStorage:
    """The default storage: a deque in memory, bounded by ``max_bytes``.

    Nothing survives the process. Records waiting behind the first few MiB are compressed.
    """

    def __init__(self, *, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._waiting: deque[_Stored] = deque()
        self._leased: dict[int, int] = {}  # key -> bytes counted for it
        self._waiting_bytes = 0
        self._leased_bytes = 0
        self._waiting_items = 0

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

    def close(self) -> None:
        self.drain()
