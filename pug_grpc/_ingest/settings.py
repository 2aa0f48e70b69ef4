"""Batching, pipelining and memory settings of the ingestion client (frozen, clamped).

Values beyond what the Pug server accepts are clamped with a warning rather than refused, so a
configuration written for another deployment still runs; values that make no sense (negative,
not a number) raise ``ValueError`` at construction.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_BATCH_EVENTS",
    "SERVER_BYTES_PER_EVENT",
    "SERVER_MESSAGE_CAP",
    "BatchSettings",
]

_log = logging.getLogger("pug_grpc.settings")

MAX_BATCH_EVENTS: Final = 1000
"""The contract's limit on events per ``BatchCreate`` request."""

SERVER_MESSAGE_CAP: Final = 1024 * 1024
"""Pug publishes each ``BatchCreate`` (and each ``Identify``) as one NATS message, capped at
1 MiB; a larger one fails with ``INTERNAL`` "failed to accept events"."""

SERVER_BYTES_PER_EVENT: Final = 512
"""What a request is charged per event for the properties the server adds before publishing
(the contract README says "up to a few hundred bytes per event")."""

MAX_IN_FLIGHT: Final = 64
"""Requests in flight per client at most (the server's front allows 250 streams)."""


def _number(name: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, not {value!r}")


def _count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSettings:
    """When requests go out, how many are in flight, and how much the client holds.

    - ``max_size`` (100): a batch holding this many events goes out at once, without waiting
      for ``max_wait``. When requests are already in flight, events keep gathering and the next
      request carries all that are waiting, up to the contract's 1,000 events and
      ``max_request_bytes`` (above 1,000, ``max_size`` is clamped with a warning).
    - ``max_wait`` (0.5 s): the longest a lone event waits for company before it is sent.
    - ``max_in_flight`` (8): ``BatchCreate`` and ``Identify`` requests in flight at once on the
      client's one HTTP/2 channel (at most 64).
    - ``max_queue_bytes`` (48 MiB): the queue's memory budget, counted in the encoded bytes it
      holds (waiting pages are compressed); 100,000 typical events take about 5 MiB. When it is
      full the oldest waiting batch is dropped, counted and reported (``QUEUE_OVERFLOW``).
    - ``max_queue_size`` (50,000): calls handed to the worker thread and not yet encoded (a
      short hand-off; a full hand-off drops its oldest call the same way).
    - ``max_request_bytes`` (768 KiB): the budget of one request, counting
      ``SERVER_BYTES_PER_EVENT`` per event for what the server adds, so that what Pug publishes
      stays under its 1 MiB message cap. Above 1 MiB it is clamped, with a warning.
    """

    max_size: int = 100
    max_wait: float = 0.5
    max_in_flight: int = 8
    max_queue_bytes: int = 48 * 1024 * 1024
    max_queue_size: int = 50_000
    max_request_bytes: int = 768 * 1024

    def __post_init__(self) -> None:
        _count("max_size", self.max_size)
        _number("max_wait", self.max_wait, allow_zero=True)
        _count("max_in_flight", self.max_in_flight)
        _count("max_queue_bytes", self.max_queue_bytes)
        _count("max_queue_size", self.max_queue_size)
        _count("max_request_bytes", self.max_request_bytes)
        self._clamp("max_size", MAX_BATCH_EVENTS, "the contract's limit of events per request")
        self._clamp("max_in_flight", MAX_IN_FLIGHT, "the client's limit of requests in flight")
        self._clamp("max_request_bytes", SERVER_MESSAGE_CAP, "the server's 1 MiB message cap")
        if self.max_request_bytes < 2 * SERVER_BYTES_PER_EVENT:
            raise ValueError(
                f"max_request_bytes must be at least {2 * SERVER_BYTES_PER_EVENT} bytes "
                f"(each event is charged {SERVER_BYTES_PER_EVENT} for what the server adds)"
            )

    def _clamp(self, name: str, limit: int, why: str) -> None:
        value = getattr(self, name)
        if value > limit:
            _log.warning("BatchSettings.%s=%d is above %s; using %d", name, value, why, limit)
            object.__setattr__(self, name, limit)
