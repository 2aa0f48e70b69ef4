"""A spool on disk that survives the process: :class:`SqliteStorage` (stdlib ``sqlite3``, WAL).

Sharing one directory between processes (gunicorn or Celery workers started from one
configuration): every process writes only to a file of its own, ``pug-spool-<id>.sqlite``,
which it holds with an exclusive ``flock`` on ``pug-spool-<id>.lock``. The kernel drops that
lock when the process dies, however it dies; a live process that finds a spool file whose lock
it can take adopts it: it sends what is left in it (with the same event ids) and deletes it once
empty. So no file is ever used by two live processes, and what a dead one left is taken over.

A file that cannot be used (corrupt, truncated, written by an unknown version) is renamed aside
(``<name>.sqlite.<cause>-<UTC time>``, its ``-wal`` alongside) and reported once. When the
process's own file fails (read-only path, full disk), the storage reports it once, moves what
it can still read into memory and goes on in memory until the client is closed.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import logging
import os
import secrets
import sqlite3
import time
import urllib.parse
import weakref
from typing import Final, Literal

from pug_grpc._ingest.batches import EVENTS, IDENTIFY, Kind, Record
from pug_grpc._ingest.spool_files import (
    UnusableFileError,
    cause_of,
    leak,
    read_header,
    take_lock,
    utc_stamp,
)
from pug_grpc._ingest.storage import MemoryStorage, ProblemReporter, Storage, StorageError

__all__ = ["SCHEMA_VERSION", "SqliteStorage"]

_log = logging.getLogger("pug_grpc.storage")

SCHEMA_VERSION: Final = 1
"""``PRAGMA user_version`` of the files this version writes."""

_APPLICATION_ID: Final = 0x50756731
"""``PRAGMA application_id`` of a pug-grpc spool ("Pug1")."""

_PREFIX: Final = "pug-spool-"
_DB: Final = ".sqlite"
_LOCK: Final = ".lock"
_SIDECARS: Final = ("-wal", "-shm", "-journal")
_KIND_CODES: Final[dict[str, int]] = {EVENTS: 0, IDENTIFY: 1}
_KINDS: Final[dict[int, Kind]] = {0: EVENTS, 1: IDENTIFY}
_REPORTED_PAYLOAD_ITEMS: Final = 1000
"""``drain`` reads payloads for this many items (a report shows no more); the rest stay on
disk, returned without their payload."""

_open_storages: weakref.WeakSet[SqliteStorage] = weakref.WeakSet()


class _Shard:
    """One spool file, its connection and the lock that makes it this process's."""

    __slots__ = ("conn", "lock_fd", "name", "path", "rank")

    def __init__(self, path: str, lock_fd: int, conn: sqlite3.Connection) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.lock_fd = lock_fd
        self.conn = conn
        stamp = self.name[len(_PREFIX) : len(_PREFIX) + 20]
        self.rank = int(stamp) if stamp.isdigit() else 0
        """When the file was created (from its name): older files' records go first."""


class _Entry:
    """A stored record, without its payload (which stays on disk)."""

    __slots__ = ("count", "key", "kind", "rowid", "shard", "size", "window")

    def __init__(  # noqa: PLR0917 - built in two places, all fields needed
        self, shard: _Shard, rowid: int, kind: Kind, count: int, size: int, window: int, key: int
    ) -> None:
        self.shard = shard
        self.rowid = rowid
        self.kind = kind
        self.count = count
        self.size = size
        self.window = window
        self.key = key

    def order(self) -> tuple[int, int]:
        return (self.shard.rank, self.rowid)

    def __lt__(self, other: _Entry) -> bool:
        return self.order() < other.order()


_Row = tuple[int, Kind, int, int]
"""``(rowid, kind, count, payload bytes)`` of a stored record."""


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
        self._report: ProblemReporter = lambda _error: None
        self._reset()
        _open_storages.add(self)

    def __repr__(self) -> str:
        return f"SqliteStorage({self.path!r}, max_bytes={self._max_bytes})"

    def _reset(self) -> None:
        """A storage that holds nothing and has opened nothing (new, closed, or forked)."""
        self._pid = os.getpid()
        self._opened = False
        self._home: _Shard | None = None
        self._adopted: list[_Shard] = []
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
        self._said: set[tuple[str, str]] = set()
        self._skipped: set[str] = set()

    # -- the interface ------------------------------------------------------------------------
    def open(self, report: ProblemReporter) -> None:
        self._report = report

    def append(self, record: Record) -> list[Record]:
        self._ensure_open()
        home = self._home
        if home is None:
            return self._memory.append(record) + self._trim()
        try:
            rowid = home.conn.execute(
                "INSERT INTO records (kind, count, payload) VALUES (?, ?, ?)",
                (_KIND_CODES[record.kind], record.count, record.payload),
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
            self._close_shard(shard, keep=self._has_rows(shard))
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
            self._home = self._create_home()
        except (OSError, sqlite3.Error) as exc:
            self._say(
                cause_of(exc),
                self.path,
                f"cannot create a spool in {self.path}: {cause_of(exc)} ({exc}); queued events "
                f"stay in memory for this process and are lost if it dies",
            )

    def _create_home(self) -> _Shard:
        name = f"{_PREFIX}{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
        base = os.path.join(self.path, name)
        fd = take_lock(base + _LOCK)
        if fd is None:  # a fresh random name is never held; be safe anyway
            raise OSError(errno.EEXIST, "spool lock held", base + _LOCK)
        try:
            conn = sqlite3.connect(
                base + _DB, timeout=2.0, isolation_level=None, check_same_thread=False
            )
            try:
                # In rollback mode first, so that the header and schema are in the main file
                # (a reader can check the header without SQLite), then WAL for good.
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                conn.execute(
                    "CREATE TABLE records (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, "
                    "count INTEGER NOT NULL, payload BLOB NOT NULL)"
                )
                self._configure(conn)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            self._remove_files(base + _DB)
            with contextlib.suppress(OSError):
                os.unlink(base + _LOCK)
            os.close(fd)
            raise
        _log.debug("spool file %s opened", base + _DB)
        return _Shard(base + _DB, fd, conn)

    def _configure(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"WAL mode is not available here (got {mode})")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA journal_size_limit = 4194304")

    # -- taking over files of processes that died -------------------------------------------
    def _take_over(self, window: int) -> None:
        try:
            names = sorted(os.listdir(self.path))
        except OSError as exc:
            _log.debug("cannot list %s: %s", self.path, exc)
            return
        mine = {s.name for s in self._adopted} | ({self._home.name} if self._home else set())
        self._sweep_locks(names)
        for name in names:
            if not (name.startswith(_PREFIX) and name.endswith(_DB)) or name in mine:
                continue
            path = os.path.join(self.path, name)
            if path in self._skipped:
                continue
            if self._held_bytes() >= self._max_bytes:
                return  # no room: the file waits for a later look (or another process)
            try:
                self._adopt(path, window)
            except OSError as exc:
                _log.debug("could not take over %s: %s", path, exc)

    def _sweep_locks(self, names: list[str]) -> None:
        """Remove lock files whose spool file is gone and whose process is too (a process
        that died between deleting its empty file and its lock)."""
        present = set(names)
        for name in names:
            if not (name.startswith(_PREFIX) and name.endswith(_LOCK)):
                continue
            if name[: -len(_LOCK)] + _DB in present:
                continue
            lock_path = os.path.join(self.path, name)
            try:
                fd = take_lock(lock_path)
            except OSError:
                continue
            if fd is None:
                continue  # its process lives (it may be creating its file right now)
            if os.path.exists(lock_path[: -len(_LOCK)] + _DB):
                os.close(fd)  # created since the listing: a later look adopts it
            else:
                self._drop_lock(lock_path, fd)

    def _held_bytes(self) -> int:
        return self._bytes + self._memory.size_bytes()

    def _adopt(self, path: str, window: int) -> None:
        lock_path = path[: -len(_DB)] + _LOCK
        fd = take_lock(lock_path)
        if fd is None:
            return  # a live process owns it
        if not os.path.exists(path):  # its owner deleted it just now (it was empty)
            self._drop_lock(lock_path, fd)
            return
        try:
            conn, rows = self._open_orphan(path)
        except (OSError, sqlite3.Error) as exc:  # unreadable for now: let go, look again later
            os.close(fd)
            _log.debug("could not open %s to take it over: %s", path, exc)
            return
        except UnusableFileError as bad:
            if bad.cause == "newer":
                self._skipped.add(path)
                os.close(fd)
                self._say(
                    "newer",
                    path,
                    f"spool file {path} was written by a newer pug-grpc ({bad.detail}); "
                    f"left in place for a client of that version, and not sent by this one",
                )
                return
            self._set_aside(path, bad.cause, bad.detail)
            self._drop_lock(lock_path, fd)
            return
        shard = _Shard(path, fd, conn)
        if not rows:
            self._close_shard(shard, keep=False)
            return
        self._adopted.append(shard)
        items = 0
        for rowid, kind, count, size in rows:
            key = Record(kind, b"", count, window).key
            heapq.heappush(self._waiting, _Entry(shard, rowid, kind, count, size, window, key))
            self._bytes += size
            self._waiting_items += count
            items += count
        self._found_items += items
        _log.info("took over %d queued item(s) left in %s", items, path)

    def _open_orphan(
        self, path: str
    ) -> tuple[sqlite3.Connection, list[tuple[int, Kind, int, int]]]:
        """Check a file left by another process and read its index (or raise why not)."""
        user_version, application_id = read_header(path)
        if application_id != _APPLICATION_ID:
            raise UnusableFileError(
                "incompatible", f"application_id {application_id:#x} is not pug-grpc's"
            )
        if user_version > SCHEMA_VERSION:
            raise UnusableFileError(
                "newer", f"schema version {user_version}, this one reads {SCHEMA_VERSION}"
            )
        if user_version != SCHEMA_VERSION:
            raise UnusableFileError(
                "incompatible", f"schema version {user_version}, this one reads {SCHEMA_VERSION}"
            )
        conn = sqlite3.connect(
            f"file:{urllib.parse.quote(path)}?mode=rw",
            uri=True,
            timeout=2.0,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            check = conn.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise UnusableFileError("corrupt", "; ".join(str(r[0]) for r in check[:3]))
            self._configure(conn)
            rows: list[_Row] = []
            for rowid, code, count, size in conn.execute(
                "SELECT id, kind, count, length(payload) FROM records ORDER BY id"
            ):
                kind = _KINDS.get(code)
                if kind is None or not isinstance(count, int) or count < 1:
                    raise UnusableFileError("corrupt", f"row {rowid} is not a stored request")
                rows.append((rowid, kind, count, int(size)))
        except sqlite3.Error as exc:
            conn.close()
            if cause_of(exc) == "corrupt":
                raise UnusableFileError("corrupt", str(exc)) from exc
            raise  # busy, i/o: nothing says the file is bad; a later look tries again
        except BaseException:
            conn.close()
            raise
        return conn, rows

    def _set_aside(self, path: str, cause: str, detail: str) -> None:
        """Rename a file (and its sidecars) out of the spool's way, untouched, and say so."""
        aside = f"{path}.{cause.replace(' ', '-')}-{utc_stamp()}"
        try:
            os.rename(path, aside)
            for sidecar in _SIDECARS:
                with contextlib.suppress(FileNotFoundError):
                    os.rename(path + sidecar, aside + sidecar)
            where = f"renamed to {aside} for inspection (never read again)"
        except OSError as exc:
            self._skipped.add(path)
            where = f"left in place (renaming it failed: {exc})"
        self._say(
            cause, path, f"spool file {path} is {cause} ({detail}); {where}; the client goes on"
        )

    def _drop_lock(self, lock_path: str, fd: int) -> None:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)

    # -- shards -------------------------------------------------------------------------------
    def _usable(self, shard: _Shard) -> bool:
        return shard is self._home or shard in self._adopted

    @staticmethod
    def _has_rows(shard: _Shard) -> bool:
        """The file still holds records (drained ones too: they stay for a later client)."""
        try:
            return bool(shard.conn.execute("SELECT EXISTS (SELECT 1 FROM records)").fetchone()[0])
        except sqlite3.Error:
            return True

    def _holds(self, shard: _Shard) -> bool:
        return any(e.shard is shard for e in self._waiting) or any(
            e.shard is shard for e in self._leased.values()
        )

    def _retire_if_empty(self, shard: _Shard) -> None:
        """An adopted file with nothing left in it is deleted (drained records stay in it)."""
        if (
            shard is not self._home
            and shard in self._adopted
            and not self._holds(shard)
            and not self._has_rows(shard)
        ):
            self._adopted.remove(shard)
            self._close_shard(shard, keep=False)

    def _close_shard(self, shard: _Shard, *, keep: bool) -> None:
        """Close; delete the file when ``keep`` is False (it holds nothing), then unlock."""
        with contextlib.suppress(sqlite3.Error):
            shard.conn.close()
        if not keep:
            self._remove_files(shard.path)
            with contextlib.suppress(OSError):
                os.unlink(shard.path[: -len(_DB)] + _LOCK)
        with contextlib.suppress(OSError):
            os.close(shard.lock_fd)

    @staticmethod
    def _remove_files(path: str) -> None:
        for name in (path, *(path + s for s in _SIDECARS)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def _pop(self) -> _Entry:
        entry = heapq.heappop(self._waiting)
        self._waiting_items -= entry.count
        return entry

    def _read(self, entry: _Entry) -> bytes | None:
        """The payload of an entry taken off the heap; or None, the entry then counted as lost
        (its file failed: that failure is handled, and the other entries of it moved)."""
        row = None
        if self._usable(entry.shard):
            try:
                row = entry.shard.conn.execute(
                    "SELECT payload FROM records WHERE id = ?", (entry.rowid,)
                ).fetchone()
            except sqlite3.Error as exc:
                self._failed(entry.shard, exc, "reading a stored request")
            else:
                if row is None:
                    _log.error("a stored request vanished from %s", entry.shard.path)
        if row is None:
            self._bytes -= entry.size
            self._lost.append(self._record(entry, b""))
            return None
        return bytes(row[0])

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

    def _failed(self, shard: _Shard, exc: BaseException, doing: str) -> None:
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
                    row = shard.conn.execute(
                        "SELECT payload FROM records WHERE id = ?", (entry.rowid,)
                    ).fetchone()
                    payload = bytes(row[0]) if row is not None else None
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
        with contextlib.suppress(sqlite3.Error):
            shard.conn.close()
        if cause == "corrupt":
            aside = f"{shard.path}.corrupt-{utc_stamp()}"
            with contextlib.suppress(OSError):
                os.rename(shard.path, aside)
                for sidecar in _SIDECARS:
                    with contextlib.suppress(FileNotFoundError):
                        os.rename(shard.path + sidecar, aside + sidecar)
            fate = f"the file was renamed to {aside}"
        else:
            self._remove_files(shard.path)  # all it held that could be read is in memory now
            fate = "the file was removed"
        with contextlib.suppress(OSError):
            os.unlink(shard.path[: -len(_DB)] + _LOCK)
        with contextlib.suppress(OSError):
            os.close(shard.lock_fd)
        next_step = (
            "new events stay in memory for this process and are lost if it dies"
            if self._home is None
            else "the spool goes on with this process's own file"
        )
        lost_text = f", {lost} could not be read and are reported as lost" if lost else ""
        self._say(
            cause,
            shard.path,
            f"spool file {shard.path} failed while {doing}: {cause} ({exc}); {moved} queued "
            f"item(s) moved to memory{lost_text}; {fate}; {next_step}",
        )

    def _say(self, cause: str, path: str, message: str) -> None:
        """Log and report a problem once per (cause, path)."""
        if (cause, path) in self._said:
            return
        self._said.add((cause, path))
        _log.error("%s", message)
        try:
            self._report(StorageError(message, path=path, cause=cause))
        except Exception:
            _log.exception("reporting a storage problem failed")

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
