"""Taking over the spool files of processes that died: which files in the directory are free to
take, and what becomes of one that cannot be used (left for a newer client, or set aside).

The kernel drops a process's ``flock`` when it dies, so a file whose lock can be taken has no
live owner. The storage indexes what a taken file holds; this module only finds and claims it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterator

from pug_grpc._ingest.spool_files import UnusableFileError, take_lock
from pug_grpc._ingest.spool_shard import (
    DB,
    LOCK,
    PREFIX,
    Row,
    Shard,
    aside_path,
    close_shard,
    drop_lock,
    lock_path,
    open_orphan,
    rename_aside,
)

__all__ = ["Say", "Takeover"]

_log = logging.getLogger("pug_grpc.storage")

Say = Callable[[str, str, str], None]
"""Log and report a problem ``(cause, path, message)``, once per cause and path."""


class Takeover:
    """Looks for files left in ``directory`` by dead processes and claims them."""

    def __init__(self, directory: str, synchronous: str, say: Say) -> None:
        self.directory = directory
        self._synchronous = synchronous
        self._say = say
        self.skipped: set[str] = set()
        """Files never to look at again in this process (newer, or could not be set aside)."""

    def candidates(self, mine: set[str]) -> Iterator[str]:
        """Spool files not among ``mine`` (names) nor skipped, after sweeping stale locks."""
        try:
            names = sorted(os.listdir(self.directory))
        except OSError as exc:
            _log.debug("cannot list %s: %s", self.directory, exc)
            return
        self._sweep_locks(names)
        for name in names:
            if not (name.startswith(PREFIX) and name.endswith(DB)) or name in mine:
                continue
            path = os.path.join(self.directory, name)
            if path not in self.skipped:
                yield path

    def _sweep_locks(self, names: list[str]) -> None:
        """Remove lock files whose spool file is gone and whose process is too (a process
        that died between deleting its empty file and its lock)."""
        present = set(names)
        for name in names:
            if not (name.startswith(PREFIX) and name.endswith(LOCK)):
                continue
            if name[: -len(LOCK)] + DB in present:
                continue
            lock = os.path.join(self.directory, name)
            try:
                fd = take_lock(lock)
            except OSError:
                continue
            if fd is None:
                continue  # its process lives (it may be creating its file right now)
            if os.path.exists(lock[: -len(LOCK)] + DB):
                os.close(fd)  # created since the listing: a later look adopts it
            else:
                drop_lock(lock, fd)

    def adopt(self, path: str) -> tuple[Shard, list[Row]] | None:
        """The file at ``path``, locked and open, with the records in it; None when it is not
        to be taken now (a live owner, gone, empty, unreadable for now, or unusable)."""
        lock = lock_path(path)
        fd = take_lock(lock)
        if fd is None:
            return None  # a live process owns it
        if not os.path.exists(path):  # its owner deleted it just now (it was empty)
            drop_lock(lock, fd)
            return None
        try:
            conn, rows = open_orphan(path, self._synchronous)
        except (OSError, sqlite3.Error) as exc:  # unreadable for now: let go, look again later
            os.close(fd)
            _log.debug("could not open %s to take it over: %s", path, exc)
            return None
        except UnusableFileError as bad:
            if bad.cause == "newer":
                self.skipped.add(path)
                os.close(fd)
                self._say(
                    "newer",
                    path,
                    f"spool file {path} was written by a newer pug-grpc ({bad.detail}); "
                    f"left in place for a client of that version, and not sent by this one",
                )
                return None
            self._set_aside(path, bad.cause, bad.detail)
            drop_lock(lock, fd)
            return None
        shard = Shard(path, fd, conn)
        if not rows:
            close_shard(shard, keep=False)
            return None
        return shard, rows

    def _set_aside(self, path: str, cause: str, detail: str) -> None:
        """Rename a file (and its sidecars) out of the spool's way, untouched, and say so."""
        aside = aside_path(path, cause)
        try:
            rename_aside(path, aside)
            where = f"renamed to {aside} for inspection (never read again)"
        except OSError as exc:
            self.skipped.add(path)
            where = f"left in place (renaming it failed: {exc})"
        self._say(
            cause, path, f"spool file {path} is {cause} ({detail}); {where}; the client goes on"
        )
