"""``before_send``: the caller's last look at an event, to change it or drop it.

The hook runs on the caller's thread after the event passed its checks, with a copy of it:
an exception in the hook is logged and the event sent as it was, so a bug there never loses
data. What the hook returns is checked again (identity fields, the context's ``$`` keys).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pug_grpc._ingest.properties import Scalar
from pug_grpc._timestamps import NS_PER_S

__all__ = ["UNCHANGED", "BeforeSend", "TrackedEvent", "run_before_send"]

_log = logging.getLogger("pug_grpc.intake")


@dataclass(slots=True, kw_only=True)
class TrackedEvent:
    """An event about to be queued, as ``before_send`` sees it (change it, or return a new one).

    ``properties`` are the custom properties (``default_properties``, the request context's
    and the call's, merged); ``auto_properties`` the request context's ``$url``, ``$referrer``,
    ``$locale``, ``$pageTitle`` and browser keys (others added here are not sent). ``event_id``
    is ``None`` when the client will assign one.
    """

    kind: str
    distinct_id: str
    properties: dict[str, Any]
    auto_properties: dict[str, Scalar]
    session_id: str
    timestamp: dt.datetime
    event_id: str | None = None


BeforeSend = Callable[[TrackedEvent], TrackedEvent | None]
"""``before_send(event) -> event | None``: ``None`` drops the event (counted as ``filtered``)."""

UNCHANGED: Final = object()
"""What :func:`run_before_send` returns when the hook failed: send the event as it was."""


def instant(ns: int) -> dt.datetime:
    """Epoch nanoseconds as an aware UTC datetime (microseconds: what datetime holds)."""
    seconds, nanos = divmod(ns, NS_PER_S)
    return dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(microseconds=nanos // 1000)


def run_before_send(hook: BeforeSend, event: TrackedEvent) -> TrackedEvent | object | None:
    """Call ``hook`` on a copy of ``event``; :data:`UNCHANGED` when it raised or returned junk."""
    copy = dataclasses.replace(
        event,
        properties=dict(event.properties),
        auto_properties=dict(event.auto_properties),
    )
    try:
        result = hook(copy)
    except Exception:
        _log.exception("before_send raised; the event %r is sent unchanged", event.kind)
        return UNCHANGED
    if result is None or isinstance(result, TrackedEvent):
        return result
    _log.error(
        "before_send returned %s, not a TrackedEvent or None; the event %r is sent unchanged",
        type(result).__name__,
        event.kind,
    )
    return UNCHANGED
