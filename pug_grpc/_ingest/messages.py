"""Event ids, timestamps and the building of ``sdk.events.v1.Event`` messages.

The caller's thread only records a light tuple (:data:`RawEvent`); the worker turns tuples into
protobuf messages, assigning ids once so that every retry resends the same ``event_id``.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pug_grpc._ingest.properties import Scalar, fill_property_value, normalize_properties
from pug_grpc._timestamps import NS_PER_S, to_ns
from pug_grpc._version import __version__
from pug_grpc.gen.sdk.events.v1 import events_pb2

__all__ = [
    "AUTO_PROPERTIES",
    "ContextProperties",
    "RawEvent",
    "build_event",
    "build_events",
    "new_anonymous_id",
    "new_session_id",
    "timestamp_ns",
    "uuid7_batch",
]

LIB_NAME: Final = "pug-grpc"
AUTO_PROPERTIES: Final[Mapping[str, str]] = {
    "$lib": LIB_NAME,
    "$sdkVersion": __version__,
    "$platform": "server",
}
"""Sent with every event. ``$ip`` is never among them: the visitor IP is not ours to send."""

RawEvent = tuple[str | None, str, str, str, int, Mapping[Any, Any] | None]
"""``(event_id or None, kind, distinct_id, session_id, occur_time_ns, properties or None)``."""


class ContextProperties(dict[str, Any]):
    """An event's custom properties, carrying the auto-properties of its request context.

    The context's ``$`` keys never mix with the caller's (which stay refused): they travel
    beside them, checked when the context opened and encoded once for all its events.
    """

    __slots__ = ("context_auto", "context_values")

    def __init__(
        self, properties: Mapping[str, Any], values: Mapping[str, Scalar], encoded: bytes
    ) -> None:
        super().__init__(properties)
        self.context_values = values
        self.context_auto = encoded


_MS_MASK: Final = (1 << 48) - 1

_VARIANT_DIGIT: Final = {f"{n:x}": "89ab"[n & 3] for n in range(16)}
"""A random hex digit to the RFC 9562 variant digit (``10`` then two of its random bits)."""


def uuid7_batch(count: int, now_ns: int | None = None) -> list[str]:
    """``count`` UUIDv7 ids (RFC 9562) from one clock read and one ``os.urandom`` call.

    48-bit Unix milliseconds, then 74 random bits: time-ordered ids keep the server's event
    index append-friendly. Written as text directly: the shared millisecond prefix once, then
    19 random hex digits per id (two bits of one go to the variant).
    """
    ns = time.time_ns() if now_ns is None else now_ns
    ms = f"{(ns // 1_000_000) & _MS_MASK:012x}"
    prefix = f"{ms[:8]}-{ms[8:]}-7"
    pool = os.urandom(10 * count).hex()  # 20 hex digits per id, 19 used
    variant = _VARIANT_DIGIT
    return [
        f"{prefix}{r[0:3]}-{variant[r[3]]}{r[4:7]}-{r[7:19]}"
        for r in (pool[i : i + 20] for i in range(0, 20 * count, 20))
    ]


def new_session_id() -> str:
    """A fresh session id: one per client (and per process after a fork)."""
    return str(uuid.uuid4())


def new_anonymous_id() -> str:
    """A fresh anonymous id (``anon-`` + a UUIDv7) for :meth:`Pug.alias` and ``identify``."""
    return "anon-" + uuid7_batch(1)[0]


def timestamp_ns(value: object) -> int:
    """Nanoseconds since the epoch for ``track(timestamp=...)``; ``ValueError`` when invalid.

    An aware ``datetime`` (a naive one means UTC) or epoch seconds, in the protobuf
    ``Timestamp`` range (years 1 to 9999): milliseconds passed as seconds are refused with a
    hint rather than reinterpreted (see :mod:`pug_grpc._timestamps`).
    """
    return to_ns(value)


def _fill_auto(event: events_pb2.Event) -> None:
    auto = event.auto_properties
    for key, text in AUTO_PROPERTIES.items():
        auto[key].string_value = text


def build_event(raw: RawEvent, event_id: str) -> events_pb2.Event:
    """The wire message for one queued event; ``event_id`` is used when the caller gave none."""
    given_id, kind, distinct_id, session_id, occur_ns, properties = raw
    event = events_pb2.Event(
        event_id=given_id or event_id,
        kind=kind,
        distinct_id=distinct_id,
        session_id=session_id,
    )
    seconds, nanos = divmod(occur_ns, NS_PER_S)
    occur = event.occur_time
    occur.seconds = seconds
    occur.nanos = nanos
    _fill_auto(event)
    if type(properties) is ContextProperties:
        for key, value in properties.context_values.items():
            fill_property_value(event.auto_properties[key], value)
    if properties:
        normalized: dict[str, Scalar] = normalize_properties(properties)
        custom = event.custom_properties
        for key, value in normalized.items():
            fill_property_value(custom[key], value)
    return event


def build_events(
    raws: Sequence[RawEvent], *, new_ids: Callable[[int], list[str]] = uuid7_batch
) -> list[events_pb2.Event]:
    """Wire messages for a batch, with fresh UUIDv7 ids for events that came without one."""
    ids = new_ids(len(raws))
    return [build_event(raw, ids[i]) for i, raw in enumerate(raws)]


def best_effort_event(
    *,
    event_id: object,
    kind: object,
    distinct_id: object,
    session_id: object,
    occur_ns: int | None,
) -> events_pb2.Event:
    """An ``Event`` carrying whatever fields of a refused call can be represented (for reports)."""
    event = events_pb2.Event()
    for name, value in (
        ("event_id", event_id),
        ("kind", kind),
        ("distinct_id", distinct_id),
        ("session_id", session_id),
    ):
        if isinstance(value, str | uuid.UUID):
            # str.__str__: a str subclass's own __str__ may raise; a report must still be made.
            text = str.__str__(value) if isinstance(value, str) else str(value)
            if text:
                with contextlib.suppress(TypeError, ValueError):
                    setattr(event, name, text)
    if occur_ns is not None:
        seconds, nanos = divmod(occur_ns, NS_PER_S)
        event.occur_time.seconds = seconds
        event.occur_time.nanos = nanos
    return event


def stub_event(raw: RawEvent, new_id: str) -> events_pb2.Event:
    """Identity fields of an event that could not be encoded (for its dead-letter report)."""
    given_id, kind, distinct_id, session_id, _, _ = raw
    return events_pb2.Event(
        event_id=given_id or new_id, kind=kind, distinct_id=distinct_id, session_id=session_id
    )
