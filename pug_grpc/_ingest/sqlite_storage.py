"""A spool on disk that survives the process: :class:`SqliteStorage` (stdlib ``sqlite3``, WAL).

The queue over the spool files: an index in memory of the records they hold (payloads stay on
disk), kept in step with the files as records are leased, acknowledged or released. Each
process writes only to a file of its own (:mod:`~pug_grpc._ingest.spool_shard`) and adopts
those that dead processes left (:mod:`~pug_grpc._ingest.spool_takeover`). When a file fails
(read-only path, full disk), what can still be read moves into memory, and the storage goes on
in memory until the client is closed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import logging
import os
import sqlite3
import time
import weakref
from typing import Final, Literal

from pug_grpc._ingest.batches import Kind, Record
from pug_grpc._ingest.spool_files import cause_of, leak
from pug_grpc._ingest.spool_problems import Problems
from pug_grpc._ingest.spool_shard import (
    KIND_CODES,
    SCHEMA_VERSION,
    Row,
    Shard,
    close_shard,
    create_shard,
    discard_failed,
    has_rows,
    read_payload,
)
from pug_grpc._ingest.spool_takeover import Takeover
from pug_grpc._ingest.storage import MemoryStorage, ProblemReporter, Storage

__all__ = ["SCHEMA_VERSION", "SqliteStorage"]

_log = logging.getLogger("pug_grpc.storage")

_REPORTED_PAYLOAD_ITEMS: Final = 1000
"""``drain`` reads payloads for this many items (a report shows no more); the rest stay on
disk, returned without their payload."""

_open_storages: weakref.WeakSet[SqliteStorage] = weakref.WeakSet()


@dataclasses.dataclass(slots=True, eq=False)
class _Entry:
    """A stored record, without its payload (which stays on disk)."""

    shard: Shard
    rowid: int
    kind: Kind
    count: int
    size: int
    window: int
    key: int

    def __lt__(self, other: _Entry) -> bool:
        """Older files' records first, then in the order they were stored."""
        return (self.shard.rank, self.rowid) < (other.shard.rank, other.rowid)


class SqliteStorage(Storage):
    """A crash-safe spool in the directory ``path`` (created if missing), shared safely by
    several processes; see docs/storage.md.

    - ``max_bytes`` (256 MiB): payload bytes held at most; beyond it the oldest records are
      dropped and reported as ``QUEUE_OVERFLOW``, as in memory. The files take somewhat more
      (SQLite pages, the write-ahead log).
    - ``synchronous``: ``"NORMAL"`` (default) survives the death of the process, whatever
      kills it; a power cut or kernel crash may lose the last commits (never the file).
      ``"FULL"`` also survives those, at the price of an ``fsync`` per stored request.
    - ``takeover_interval`` (5 s): how often to look for files left by processes that died.

    Nothing is opened until the client's worker first needs it, so a storage made before a
    ``fork()`` serves the child with files of its own.
    """

    persistent = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 256 * 1024 * 1024,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        takeover_interval: float = 5.0,
    ) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be an integer >= 1, not {max_bytes!r}")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f'synchronous must be "NORMAL" or "FULL", not {synchronous!r}')
        if not isinstance(takeover_interval, int | float) or not takeover_interval > 0:
            raise ValueError(f"takeover_interval must be > 0 seconds, not {takeover_interval!r}")
        self.path = os.path.abspath(os.fspath(path))
        self._max_bytes = max_bytes
        self._synchronous = synchronous
        self._interval = float(takeover_interval)
        self.recover_every = self._interval
        self._problems = Problems()
        self._reset()
        _open_storages.add(self)

    def __repr__(self) -> str:
        return f"SqliteStorage({self.path!r}, max_bytes={self._max_bytes})"

    def _reset(self) -> None:
        """A storage that holds nothing and has opened nothing (new, closed, or forked)."""
        self._pid = os.getpid()
        self._opened = False
        self._home: Shard | None = None
        self._adopted: list[Shard] = []
        self._waiting: list[_Entry] = []  # heap: oldest first
        self._leased: dict[int, _Entry] = {}
        self._bytes = 0
        self._waiting_items = 0
        self._memory = MemoryStorage(max_bytes=self._max_bytes)
        self._next_scan = 0.0
        self._found_items = 0
        self._lost: list[Record] = []
        self._dropped: list[Record] = []
        """Dropped by the memory budget while moving records off a failed file (the next
        ``append`` returns them)."""
        self._problems.forget()
        self._takeover = Takeover(self.path, self._synchronous, self._problems.say)

    # -- the interface ------------------------------------------------------------------------
    def open(self, report: ProblemReporter) -> None:
        self._problems.report = report

    def append(self, record: Record) -> list[Record]:
        self._ensure_open()
        home = self._home
        if home is None:
            return self._memory.append(record) + self._trim()
        try:
            rowid = home.conn.execute(
                "INSERT INTO records (kind, count, payload) VALUES (?, ?, ?)",
                (KIND_CODES[record.kind], record.count, record.payload),
            ).lastrowid
        except sqlite3.Error as exc:
            self._failed(home, exc, "storing a request")
            return self._memory.append(record) + self._trim()
        assert rowid is not None
        entry = _Entry(
            home, rowid, record.kind, record.count, len(record.payload), record.window, record.key
        )
        heapq.heappush(self._waiting, entry)
        self._bytes += entry.size
        self._waiting_items += entry.count
        return self._trim()

    def _trim(self) -> list[Record]:
        """Drop the oldest waiting records on disk while over budget. The newest stays: it is
        the last one on disk, or in memory when the file failed (memory keeps its own budget)."""
        dropped, self._dropped = self._dropped, []
        while self._bytes + self._memory.size_bytes() > self._max_bytes and len(self._waiting) > (
            1 if self._home is not None else 0
        ):
            entry = self._pop()
            payload = self._read(entry)
            if payload is None:
                continue  # counted as lost instead
            self._bytes -= entry.size
            if self._delete(entry):
                self._retire_if_empty(entry.shard)
            dropped.append(self._record(entry, payload))
        return dropped

    def lease(self) -> Record | None:
        self._ensure_open()
        while self._waiting:
            entry = self._pop()
            payload = self._read(entry)
            if payload is None:
                continue  # counted as lost
            self._leased[entry.key] = entry
            return self._record(entry, payload)
        return self._memory.lease()

    def ack(self, record: Record) -> None:
        entry = self._leased.pop(record.key, None)
        if entry is None:
            self._memory.ack(record)
            return
        self._bytes -= entry.size
        if self._delete(entry):
            self._retire_if_empty(entry.shard)

    def release(self, record: Record) -> None:
        entry = self._leased.pop(record.key, None)
        if entry is None:
            self._memory.release(record)
            return
        if self._usable(entry.shard):
            heapq.heappush(self._waiting, entry)
            self._waiting_items += entry.count
        else:  # its file failed while it was out: keep it in memory
            self._bytes -= entry.size
            self._memory.release(record)

    def size_bytes(self) -> int:
        return self._bytes + self._memory.size_bytes()

    def queued_items(self) -> int:
        return self._waiting_items + self._memory.queued_items()

    def drain(self) -> list[Record]:
        entries = sorted(self._waiting)
        self._waiting = []
        self._waiting_items = 0
        out: list[Record] = []
        items = 0
        for entry in entries:
            payload = self._read(entry) if items < _REPORTED_PAYLOAD_ITEMS else b""
            if payload is None:
                continue  # counted as lost
            items += entry.count
            out.append(self._record(entry, payload))
        self._bytes = sum(e.size for e in self._leased.values())
        return out + self._memory.drain()

    def recover(self, window: int) -> int:
        self._ensure_open()
        now = time.monotonic()
        if now >= self._next_scan and self._home is not None:
            self._next_scan = now + self._interval
            self._take_over(window)
        found, self._found_items = self._found_items, 0
        return found

    def take_lost(self) -> list[Record]:
        lost, self._lost = self._lost, []
        return lost

    def after_fork_in_child(self) -> None:
        if self._pid == os.getpid() and not self._opened:
            return
        self._abandon_parent()

    def close(self) -> None:
        if self._pid != os.getpid():
            self._abandon_parent()
            return
        for shard in [*self._adopted, *([self._home] if self._home else [])]:
            close_shard(shard, keep=has_rows(shard))
        self._memory.close()
        self._reset()

    # -- opening ------------------------------------------------------------------------------
    def _ensure_open(self) -> None:
        if self._pid != os.getpid():
            self._abandon_parent()  # forked without the client's hooks: start over
        if self._opened:
            return
        self._opened = True
        try:
            os.makedirs(self.path, exist_ok=True)
            self._home = create_shard(self.path, self._synchronous)
        except (OSError, sqlite3.Error) as exc:
            self._problems.cannot_create(self.path, exc)

    # -- taking over files of processes that died -------------------------------------------
    def _take_over(self, window: int) -> None:
        mine = {s.name for s in self._adopted} | ({self._home.name} if self._home else set())
        for path in self._takeover.candidates(mine):
            if self.size_bytes() >= self._max_bytes:
                return  # no room: the file waits for a later look (or another process)
            try:
                found = self._takeover.adopt(path)
            except OSError as exc:
                _log.debug("could not take over %s: %s", path, exc)
                continue
            if found is not None:
                self._index(*found, window)

    def _index(self, shard: Shard, rows: list[Row], window: int) -> None:
        """Queue the records of a file taken over (their payloads stay on disk)."""
        self._adopted.append(shard)
        items = 0
        for rowid, kind, count, size in rows:
            key = Record(kind, b"", count, window).key
            heapq.heappush(self._waiting, _Entry(shard, rowid, kind, count, size, window, key))
            self._bytes += size
            self._waiting_items += count
            items += count
        self._found_items += items
        _log.info("took over %d queued item(s) left in %s", items, shard.path)

    # -- shards -------------------------------------------------------------------------------
    def _usable(self, shard: Shard) -> bool:
        return shard is self._home or shard in self._adopted

    def _holds(self, shard: Shard) -> bool:
        return any(e.shard is shard for e in self._waiting) or any(
            e.shard is shard for e in self._leased.values()
        )

    def _retire_if_empty(self, shard: Shard) -> None:
        """An adopted file with nothing left in it is deleted (drained records stay in it)."""
        if (
            shard is not self._home
            and shard in self._adopted
            and not self._holds(shard)
            and not has_rows(shard)
        ):
            self._adopted.remove(shard)
            close_shard(shard, keep=False)

    def _pop(self) -> _Entry:
        entry = heapq.heappop(self._waiting)
        self._waiting_items -= entry.count
        return entry

    def _read(self, entry: _Entry) -> bytes | None:
        """The payload of an entry taken off the heap; or None, the entry then counted as lost
        (its file failed: that failure is handled, and the other entries of it moved)."""
        payload = None
        if self._usable(entry.shard):
            try:
                payload = read_payload(entry.shard, entry.rowid)
            except sqlite3.Error as exc:
                self._failed(entry.shard, exc, "reading a stored request")
            else:
                if payload is None:
                    _log.error("a stored request vanished from %s", entry.shard.path)
        if payload is None:
            self._bytes -= entry.size
            self._lost.append(self._record(entry, b""))
        return payload

    def _delete(self, entry: _Entry) -> bool:
        if not self._usable(entry.shard):
            return False
        try:
            entry.shard.conn.execute("DELETE FROM records WHERE id = ?", (entry.rowid,))
        except sqlite3.Error as exc:
            self._failed(entry.shard, exc, "deleting a delivered request")
            return False
        return True

    def _record(self, entry: _Entry, payload: bytes) -> Record:
        return Record(entry.kind, payload, entry.count, entry.window, entry.key)

    def _failed(self, shard: Shard, exc: BaseException, doing: str) -> None:
        """A file failed: move what can be read into memory, then set it aside or delete it."""
        cause = cause_of(exc)
        moved = lost = 0
        keep: list[_Entry] = []
        for entry in self._waiting:
            if entry.shard is not shard:
                keep.append(entry)
                continue
            self._waiting_items -= entry.count
            self._bytes -= entry.size
            payload = None
            if cause != "corrupt":
                with contextlib.suppress(sqlite3.Error):
                    payload = read_payload(shard, entry.rowid)
            if payload is None:
                self._lost.append(self._record(entry, b""))
                lost += entry.count
            else:
                self._dropped.extend(self._memory.append(self._record(entry, payload)))
                moved += entry.count
        heapq.heapify(keep)
        self._waiting = keep
        if shard is self._home:
            self._home = None
        elif shard in self._adopted:
            self._adopted.remove(shard)
        fate = discard_failed(shard, cause)
        self._problems.failed(
            shard.path,
            doing,
            exc,
            moved=moved,
            lost=lost,
            fate=fate,
            own_file_left=self._home is not None,
        )

    # -- fork ---------------------------------------------------------------------------------
    def _abandon_parent(self) -> None:
        """In a forked child: the parent's files, locks and connections stay the parent's."""
        for shard in [*self._adopted, *([self._home] if self._home else [])]:
            leak(shard.conn)
            with contextlib.suppress(OSError):
                os.close(shard.lock_fd)  # our copy only: the parent's lock stays held
        self._reset()


def _after_fork_in_child() -> None:
    for storage in list(_open_storages):
        try:
            storage.after_fork_in_child()
        except Exception:
            _log.exception("resetting a spool after fork failed")


os.register_at_fork(after_in_child=_after_fork_in_child)
