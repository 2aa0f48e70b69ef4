"""The spool's file-level pieces: locks, header checks, failure causes, inherited connections.

Kept apart from :mod:`pug_grpc._ingest.spool_shard` (what SQLite keeps in a file) so that the
rules a file must meet before SQLite opens it, and how a process proves a file is its own, read
in one place.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import sqlite3
import struct
import time

__all__ = [
    "UnusableFileError",
    "abandoned",
    "cause_of",
    "leak",
    "read_header",
    "take_lock",
    "utc_stamp",
]

abandoned: list[sqlite3.Connection] = []
"""Connections a forked child inherited: never used nor closed there (closing could checkpoint
or delete the parent's write-ahead log)."""


class UnusableFileError(Exception):
    """A spool file that cannot be used: ``cause`` names why (``corrupt``, ``incompatible``)."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause
        self.detail = detail


def cause_of(error: BaseException) -> str:
    """A short name for why a file operation failed (for messages and set-aside names)."""
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return "corrupt"
    if name.startswith("SQLITE_FULL") or getattr(error, "errno", None) == errno.ENOSPC:
        return "disk full"
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) or getattr(
        error, "errno", None
    ) in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "not writable"
    return "i/o error"


def utc_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def take_lock(path: str) -> int | None:
    """An exclusive ``flock`` on ``path`` (created if missing), or None if a live process
    holds it. The lock is checked to still be the file at ``path`` (not one just unlinked)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    try:
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return None
    return fd


def read_header(path: str) -> tuple[int, int]:
    """``(user_version, application_id)`` read from the file header, without SQLite (which
    could write to a file it opens); raises :class:`UnusableFileError` unless SQLite 3."""
    with open(path, "rb") as f:
        head = f.read(100)
    if len(head) < 100:
        raise UnusableFileError(
            "corrupt", f"truncated: {len(head)} bytes, not even a SQLite header"
        )
    if not head.startswith(b"SQLite format 3\x00"):
        raise UnusableFileError("corrupt", "not a SQLite database")
    (user_version,) = struct.unpack(">i", head[60:64])
    (application_id,) = struct.unpack(">I", head[68:72])
    return user_version, application_id


def leak(conn: sqlite3.Connection) -> None:
    """Keep an inherited connection alive for good, even through interpreter shutdown."""
    abandoned.append(conn)
    with contextlib.suppress(Exception):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(conn))
