"""Batching and retry settings of the ingestion client (frozen, validated at construction)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

__all__ = ["MAX_BATCH_EVENTS", "BatchSettings", "RetrySettings"]

_log = logging.getLogger("pug_grpc.config")

MAX_BATCH_EVENTS = 1000
"""The contract's limit on events per ``BatchCreate`` request."""


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, not {value!r}")


def _count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSettings:
    """When the worker sends a batch, and how much it holds.

    - ``max_size`` (100): events per ``BatchCreate``; above the contract's 1,000 it is clamped,
      with a warning.
    - ``max_wait`` (2.0 s): longest time the first event of a batch waits for the batch to fill.
    - ``max_queue_size`` (10,000): items waiting for the worker; beyond it the oldest is dropped,
      counted and reported to ``on_error``.
    - ``max_request_bytes`` (3 MiB): a batch whose encoded request is larger is split before
      sending, keeping it under gRPC's default 4 MiB receive limit on the server.
    """

    max_size: int = 100
    max_wait: float = 2.0
    max_queue_size: int = 10_000
    max_request_bytes: int = 3 * 1024 * 1024

    def __post_init__(self) -> None:
        _count("max_size", self.max_size)
        _positive("max_wait", self.max_wait, allow_zero=True)
        _count("max_queue_size", self.max_queue_size)
        _count("max_request_bytes", self.max_request_bytes)
        if self.max_size > MAX_BATCH_EVENTS:
            _log.warning(
                "BatchSettings.max_size=%d is above the server's limit; using %d",
                self.max_size,
                MAX_BATCH_EVENTS,
            )
            object.__setattr__(self, "max_size", MAX_BATCH_EVENTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySettings:
    """How transient failures (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, ...) are retried.

    Waits use exponential backoff with full jitter: before retry ``n`` (1-based) the worker sleeps
    a uniform random time in ``[0, min(max_backoff, initial_backoff * multiplier ** (n - 1))]``,
    or exactly what the server asks for in a ``grpc-retry-pushback-ms`` trailer. Retrying stops
    after ``max_attempts`` attempts in all or once ``max_elapsed`` seconds have passed since the
    first attempt, whichever comes first; the events are then reported to ``on_error``.
    ``max_attempts=1`` turns retries off.
    """

    max_attempts: int = 8
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    multiplier: float = 2.0
    max_elapsed: float = 120.0

    def __post_init__(self) -> None:
        _count("max_attempts", self.max_attempts)
        _positive("initial_backoff", self.initial_backoff, allow_zero=True)
        _positive("max_backoff", self.max_backoff, allow_zero=True)
        _positive("multiplier", self.multiplier)
        _positive("max_elapsed", self.max_elapsed, allow_zero=True)
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, not {self.multiplier!r}")
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be >= initial_backoff")

    def backoff_cap(self, retry_number: int) -> float:
        """The upper bound of the jittered wait before retry ``retry_number`` (1-based)."""
        exponent = max(0, retry_number - 1)
        try:
            grown = self.initial_backoff * self.multiplier**exponent
        except OverflowError:
            return self.max_backoff
        return min(self.max_backoff, grown)
