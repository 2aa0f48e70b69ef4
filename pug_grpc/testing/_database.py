"""The SQLite file (or memory) behind the store: schema, upgrades and one-lock transactions.

One connection serves every thread; each transaction holds the lock, so concurrent batches are
applied one at a time and a reader never sees half a batch.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

__all__ = ["Database"]

_VERSION = 1
"""``PRAGMA user_version`` of the current schema. Version 0 (files written before redelivered
events were kept as rows of their own) had ``UNIQUE (project_id, event_id)`` on events."""

_TABLES = (
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        project_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        distinct_id TEXT NOT NULL,
        profile_key TEXT NOT NULL,
        session_id TEXT NOT NULL,
        occur_us INTEGER NOT NULL,
        received_us INTEGER NOT NULL,
        auto_props TEXT NOT NULL,
        custom_props TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_by_id ON events (project_id, event_id)",
    "CREATE INDEX IF NOT EXISTS events_by_profile ON events (project_id, profile_key, occur_us)",
    "CREATE INDEX IF NOT EXISTS events_by_time ON events (project_id, occur_us)",
    """CREATE TABLE IF NOT EXISTS profiles (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        external_id TEXT NOT NULL,
        properties TEXT NOT NULL,
        create_us INTEGER NOT NULL,
        update_us INTEGER NOT NULL,
        UNIQUE (project_id, external_id)
    )""",
    """CREATE TABLE IF NOT EXISTS aliases (
        project_id TEXT NOT NULL,
        anonymous_id TEXT NOT NULL,
        external_id TEXT NOT NULL,
        PRIMARY KEY (project_id, anonymous_id)
    )""",
    """CREATE TABLE IF NOT EXISTS deletions (
        request_id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        external_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        events_deleted INTEGER NOT NULL,
        requested_us INTEGER NOT NULL,
        completed_us INTEGER NOT NULL
    )""",
)
_SET_ASIDE_V0 = (
    "ALTER TABLE events RENAME TO events_v0",
    "DROP INDEX IF EXISTS events_by_profile",
    "DROP INDEX IF EXISTS events_by_time",
)
_COPY_V0 = ("INSERT INTO events SELECT * FROM events_v0", "DROP TABLE events_v0")


class Database:
    """A SQLite connection with the local server's schema, shared by every thread."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            with self._tx() as db:
                _create_or_upgrade(db)

    def close(self) -> None:
        """Close the database (the store cannot be used afterwards)."""
        with self._lock:
            self._db.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self._db, self._lock)


def _create_or_upgrade(db: sqlite3.Connection) -> None:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'")
    upgrading = found.fetchone() is not None and version < _VERSION
    for statement in (*(_SET_ASIDE_V0 if upgrading else ()), *_TABLES):
        db.execute(statement)
    for statement in _COPY_V0 if upgrading else ():
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {_VERSION}")


class _Transaction:
    """Hold the store lock and wrap the statements in one SQLite transaction."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db = db
        self._lock = lock
        self._outer = False

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._outer = not self._db.in_transaction
            if self._outer:
                self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            # A call still running when the server closed its database: without this the
            # lock stayed held, every later call blocked for ever, and so did interpreter exit.
            self._lock.release()
            raise
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if self._outer:
                self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        finally:
            self._lock.release()
