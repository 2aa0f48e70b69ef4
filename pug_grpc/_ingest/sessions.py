"""Default session ids: one per ``distinct_id``, a new one after 30 minutes without an event.

Pug counts sessions, their durations and entry pages by ``session_id``. One id per client made
every user of a backend share one session; this keeps one per user instead, rotated on the rule
Pug applies to cookieless sessions (a gap of more than :data:`SESSION_TIMEOUT_S` between two
events of the user). Time is the events' own ``occur_time``, so an import of past events in
time order gets the sessions they had; an event older than the user's last one joins the
current session.

Memory is bounded: at most ``max_users`` ids are kept (least recently seen evicted first; a
user seen again after eviction starts a new session).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from pug_grpc._ingest.messages import new_session_id

__all__ = ["DEFAULT_MAX_USERS", "SESSION_TIMEOUT_S", "SessionTracker"]

SESSION_TIMEOUT_S: Final = 30 * 60
DEFAULT_MAX_USERS: Final = 10_000
_NS: Final = 1_000_000_000
_REFRESH_NS: Final = _NS
"""How long a user's entry goes untouched by its events (see ``session_for``)."""


class _Entry:
    __slots__ = ("last_ns", "session_id")

    def __init__(self, session_id: str, last_ns: int) -> None:
        self.session_id = session_id
        self.last_ns = last_ns


class SessionTracker:
    """``distinct_id`` → (session id, time of the user's latest event), an LRU of bounded size.

    Thread-safe: ``track()`` runs on any thread, and in signal handlers, which may interrupt
    this very thread inside :meth:`session_for` (so the lock is re-entrant; each dict
    operation is atomic, so the handler sees a consistent table).
    """

    __slots__ = ("_lock", "_max", "_new_id", "_timeout_ns", "_users")

    def __init__(
        self,
        *,
        timeout_s: float = SESSION_TIMEOUT_S,
        max_users: int = DEFAULT_MAX_USERS,
        new_id: Callable[[], str] = new_session_id,
    ) -> None:
        if isinstance(max_users, bool) or not isinstance(max_users, int) or max_users < 1:
            raise ValueError(f"max_users must be an integer >= 1, not {max_users!r}")
        if not isinstance(timeout_s, int | float) or not timeout_s > 0:
            raise ValueError(f"the session timeout must be a positive number, not {timeout_s!r}")
        self._timeout_ns = int(timeout_s * _NS)
        self._max = max_users
        self._new_id = new_id
        self._users: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.RLock()

    def session_for(self, distinct_id: str, at_ns: int) -> str:
        """The session of an event of ``distinct_id`` at ``at_ns`` (epoch nanoseconds).

        On every ``track()``. A user seen within the last :data:`_REFRESH_NS` takes no lock and
        changes nothing (one lookup): the session clock and the eviction order are refreshed at
        most once a second per user, so a session ends up to a second late and a user active
        in the last second can be evicted only if ``max_users`` others arrived in that second.
        """
        entry = self._users.get(distinct_id)
        if entry is not None and 0 <= at_ns - entry.last_ns < _REFRESH_NS:
            return entry.session_id
        lock = self._lock
        lock.acquire()
        try:
            users = self._users
            entry = users.get(distinct_id)
            if entry is None:
                entry = users[distinct_id] = _Entry(self._new_id(), at_ns)
                if len(users) > self._max:
                    users.popitem(last=False)
                return entry.session_id
            users.move_to_end(distinct_id)
            last = entry.last_ns
            if at_ns - last > self._timeout_ns:
                entry.session_id = self._new_id()
                entry.last_ns = at_ns
            elif at_ns > last:
                entry.last_ns = at_ns
            return entry.session_id
        finally:
            lock.release()

    def peek(self, distinct_id: str) -> str | None:
        """The current session of ``distinct_id`` without touching it (``None``: none kept)."""
        with self._lock:
            entry = self._users.get(distinct_id)
            return None if entry is None else entry.session_id

    def __len__(self) -> int:
        return len(self._users)

    def reset(self) -> None:
        """Forget every session (a forked child starts its own)."""
        self._lock = threading.RLock()
        self._users = OrderedDict()
