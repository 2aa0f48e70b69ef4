"""Encoded requests: the :class:`Record` a storage keeps, and the open page events gather in.

An events record's payload is a ``BatchCreateRequest`` in wire form: the concatenation of its
framed events (``events`` field entries), so records split and join by slicing bytes. An
identify record's payload is one ``IdentifyRequest``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Final, Literal

from pug_grpc._ingest.settings import MAX_BATCH_EVENTS, SERVER_BYTES_PER_EVENT
from pug_grpc.gen.sdk.events.v1 import events_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

__all__ = ["EVENTS", "IDENTIFY", "OpenPage", "Record", "frames", "messages_of", "request_cost"]

Kind = Literal["events", "identify"]
EVENTS: Final[Kind] = "events"
IDENTIFY: Final[Kind] = "identify"

_numbers = itertools.count(1)


@dataclass(frozen=True, slots=True, eq=False)
class Record:
    """One request's worth of encoded items, as a storage holds it.

    ``window`` is the flush window of its items (kept in memory only: a record a persistent
    storage takes over from an ended client belongs to the window given to ``recover``);
    ``key`` identifies it within a storage.
    """

    kind: Kind
    payload: bytes
    count: int
    window: int = 0
    key: int = field(default_factory=lambda: next(_numbers))

    def with_payload(self, payload: bytes, count: int) -> Record:
        """A record for part of this one (same kind and window, a key of its own)."""
        return Record(self.kind, payload, count, self.window)


def request_cost(payload_bytes: int, count: int) -> int:
    """What a request weighs against the server's cap: its bytes plus what the server adds."""
    return payload_bytes + count * SERVER_BYTES_PER_EVENT


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def frames(payload: bytes) -> list[bytes]:
    """The framed events of an events payload (each a complete ``events`` field entry)."""
    out: list[bytes] = []
    at = 0
    end = len(payload)
    while at < end:
        start = at
        _, at = _varint(payload, at)  # the field key: always events = 1, length-delimited
        length, at = _varint(payload, at)
        at += length
        out.append(payload[start:at])
    return out


def messages_of(record: Record) -> list[events_pb2.Event] | list[profiles_pb2.IdentifyRequest]:
    """The protobuf messages of a record (for reports: off the fast path)."""
    if record.kind == IDENTIFY:
        return [profiles_pb2.IdentifyRequest.FromString(record.payload)]
    return list(events_pb2.BatchCreateRequest.FromString(record.payload).events)


class OpenPage:
    """The events request being filled; sealed into a :class:`Record` when full or due.

    It is full at 1,000 events or when one more event would pass ``max_request_bytes``
    (counting what the server adds per event). Ids given by callers are remembered, so that a
    repeated ``event_id`` starts a new request instead of failing this one on the server.
    """

    __slots__ = ("_max_bytes", "count", "given_ids", "parts", "size", "started_at", "window")

    def __init__(self, max_request_bytes: int) -> None:
        self._max_bytes = max_request_bytes
        self.parts: list[bytes] = []
        self.size = 0
        self.count = 0
        self.started_at = 0.0
        self.window = 0
        self.given_ids: set[str] = set()

    def offer(self, frame: bytes, given_id: str | None, window: int, now: float) -> Record | None:
        """Add ``frame``; returns the page sealed first when the frame could not join it.

        The common case (no id given, same window, room left) costs a few comparisons.
        """
        sealed = None
        count = self.count
        if count and (
            window != self.window
            or count >= MAX_BATCH_EVENTS
            or self.size + len(frame) + (count + 1) * SERVER_BYTES_PER_EVENT > self._max_bytes
            or (given_id is not None and given_id.lower() in self.given_ids)
        ):
            sealed = self.seal()
            count = 0
        if not count:
            self.started_at = now
            self.window = window
        self.parts.append(frame)
        self.size += len(frame)
        self.count = count + 1
        if given_id is not None:
            self.given_ids.add(given_id.lower())  # the server compares ids in any case
        return sealed

    @property
    def full(self) -> bool:
        """No further event can join (1,000 events, or no byte left for even a small one)."""
        return self.count >= MAX_BATCH_EVENTS or (
            request_cost(self.size, self.count + 1) > self._max_bytes
        )

    def seal(self) -> Record:
        record = Record("events", b"".join(self.parts), self.count, self.window)
        self.parts = []
        self.size = 0
        self.count = 0
        self.given_ids = set()
        return record
