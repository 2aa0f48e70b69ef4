"""One spool file and its connection (a shard): its format, and how it is created, opened,
closed, deleted or set aside.

What a file holds and how SQLite is set up for it read in one place, apart from the queue kept
over the files (:mod:`pug_grpc._ingest.sqlite_storage`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import sqlite3
import time
import urllib.parse
from typing import Final

from pug_grpc._ingest.batches import EVENTS, IDENTIFY, Kind
from pug_grpc._ingest.spool_files import (
    UnusableFileError,
    cause_of,
    read_header,
    take_lock,
    utc_stamp,
)

__all__ = [
    "DB",
    "KIND_CODES",
    "LOCK",
    "PREFIX",
    "SCHEMA_VERSION",
    "Row",
    "Shard",
    "aside_path",
    "close_shard",
    "create_shard",
    "discard_failed",
    "drop_lock",
    "has_rows",
    "lock_path",
    "open_orphan",
    "read_payload",
    "rename_aside",
]

_log = logging.getLogger("pug_grpc.storage")

SCHEMA_VERSION: Final = 1
"""``PRAGMA user_version`` of the files this version writes."""

_APPLICATION_ID: Final = 0x50756731
"""``PRAGMA application_id`` of a pug-grpc spool ("Pug1")."""

PREFIX: Final = "pug-spool-"
DB: Final = ".sqlite"
LOCK: Final = ".lock"
_SIDECARS: Final = ("-wal", "-shm", "-journal")
KIND_CODES: Final[dict[str, int]] = {EVENTS: 0, IDENTIFY: 1}
_KINDS: Final[dict[int, Kind]] = {0: EVENTS, 1: IDENTIFY}

Row = tuple[int, Kind, int, int]
"""``(rowid, kind, count, payload bytes)`` of a stored record."""


class Shard:
    """One spool file, its connection and the lock that makes it this process's."""

    __slots__ = ("conn", "lock_fd", "name", "path", "rank")

    def __init__(self, path: str, lock_fd: int, conn: sqlite3.Connection) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.lock_fd = lock_fd
        self.conn = conn
        stamp = self.name[len(PREFIX) : len(PREFIX) + 20]
        self.rank = int(stamp) if stamp.isdigit() else 0
        """When the file was created (from its name): older files' records go first."""


def lock_path(path: str) -> str:
    """The lock file of the spool file ``path``."""
    return path[: -len(DB)] + LOCK


def create_shard(directory: str, synchronous: str) -> Shard:
    """A new, empty spool file of this process in ``directory``, locked and in WAL mode."""
    name = f"{PREFIX}{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
    base = os.path.join(directory, name)
    fd = take_lock(base + LOCK)
    if fd is None:  # a fresh random name is never held; be safe anyway
        raise OSError(errno.EEXIST, "spool lock held", base + LOCK)
    try:
        conn = sqlite3.connect(
            base + DB, timeout=2.0, isolation_level=None, check_same_thread=False
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
            _configure(conn, synchronous)
        except BaseException:
            conn.close()
            raise
    except BaseException:
        _remove_files(base + DB)
        with contextlib.suppress(OSError):
            os.unlink(base + LOCK)
        os.close(fd)
        raise
    _log.debug("spool file %s opened", base + DB)
    return Shard(base + DB, fd, conn)


def _configure(conn: sqlite3.Connection, synchronous: str) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"WAL mode is not available here (got {mode})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA journal_size_limit = 4194304")


def open_orphan(path: str, synchronous: str) -> tuple[sqlite3.Connection, list[Row]]:
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
        _configure(conn, synchronous)
        rows: list[Row] = []
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


def has_rows(shard: Shard) -> bool:
    """The file still holds records (drained ones too: they stay for a later client)."""
    try:
        return bool(shard.conn.execute("SELECT EXISTS (SELECT 1 FROM records)").fetchone()[0])
    except sqlite3.Error:
        return True


def read_payload(shard: Shard, rowid: int) -> bytes | None:
    """The payload of a stored record, or None if it is not there."""
    row = shard.conn.execute("SELECT payload FROM records WHERE id = ?", (rowid,)).fetchone()
    return None if row is None else bytes(row[0])


def close_shard(shard: Shard, *, keep: bool) -> None:
    """Close; delete the file when ``keep`` is False (it holds nothing), then unlock."""
    with contextlib.suppress(sqlite3.Error):
        shard.conn.close()
    if not keep:
        _remove_files(shard.path)
        with contextlib.suppress(OSError):
            os.unlink(lock_path(shard.path))
    with contextlib.suppress(OSError):
        os.close(shard.lock_fd)


def discard_failed(shard: Shard, cause: str) -> str:
    """Let go of a file that failed (what could be read is already elsewhere): a corrupt one
    is set aside, any other deleted. Returns what became of it, for the report."""
    with contextlib.suppress(sqlite3.Error):
        shard.conn.close()
    if cause == "corrupt":
        aside = aside_path(shard.path, "corrupt")
        with contextlib.suppress(OSError):
            rename_aside(shard.path, aside)
        fate = f"the file was renamed to {aside}"
    else:
        _remove_files(shard.path)
        fate = "the file was removed"
    with contextlib.suppress(OSError):
        os.unlink(lock_path(shard.path))
    with contextlib.suppress(OSError):
        os.close(shard.lock_fd)
    return fate


def aside_path(path: str, cause: str) -> str:
    """Where a bad file is set aside: ``<name>.sqlite.<cause>-<UTC time>``."""
    return f"{path}.{cause.replace(' ', '-')}-{utc_stamp()}"


def rename_aside(path: str, aside: str) -> None:
    """Rename a file to ``aside``, untouched, its sidecars alongside (raises if it cannot)."""
    os.rename(path, aside)
    for sidecar in _SIDECARS:
        with contextlib.suppress(FileNotFoundError):
            os.rename(path + sidecar, aside + sidecar)


def drop_lock(lock: str, fd: int) -> None:
    """Delete a lock file this process holds, then release it."""
    with contextlib.suppress(OSError):
        os.unlink(lock)
    os.close(fd)


def _remove_files(path: str) -> None:
    for name in (path, *(path + s for s in _SIDECARS)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
