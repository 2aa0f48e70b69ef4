"""The one retry model: :class:`RetrySettings`, which failures are transient, and the waits.

Ingestion, reads and administration take the same :class:`RetrySettings`; ``None`` turns
retrying off. ``tenacity`` is the engine behind it and stays private: blocking calls (reads,
administration) run under :func:`retrying`, coroutines (the asyncio clients) under
:func:`async_retrying`, and the ingestion worker, which never blocks on one request, asks
:meth:`RetrySettings.wait` for each backoff. gRPC's own retries are switched
off on our channels, so every attempt is visible here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import grpc
import tenacity

__all__ = [
    "PUSHBACK_TRAILER",
    "TRANSIENT_CODES",
    "TRANSIENT_UNAUTHENTICATED",
    "RetrySettings",
    "async_retrying",
    "is_transient",
    "pushback_seconds",
    "retrying",
    "status_code",
]

TRANSIENT_CODES: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
"""Codes after which the same request may succeed. Every other code is permanent, except the
``UNAUTHENTICATED`` messages of :data:`TRANSIENT_UNAUTHENTICATED`."""

TRANSIENT_UNAUTHENTICATED: Final = ("failed to validate api key", "failed to verify project access")
"""Pug answers ``UNAUTHENTICATED`` with these messages when its database could not check the
credential (a blip, not a bad key); any other ``UNAUTHENTICATED`` is permanent."""

PUSHBACK_TRAILER: Final = "grpc-retry-pushback-ms"
DO_NOT_RETRY: Final = math.inf
"""What :func:`pushback_seconds` returns for a negative or malformed pushback."""


def _finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySettings:
    """How transient failures are retried: exponential backoff with full jitter, within a budget.

    Before retry ``n`` (1-based) the wait is a uniform random time in
    ``[0, min(max_backoff, initial_backoff * multiplier ** (n - 1))]``, or exactly what the
    server asks for in a ``grpc-retry-pushback-ms`` trailer. Retrying stops once the next wait
    would end more than ``max_elapsed`` seconds after the first attempt (the budget is what ends
    it by default), or after ``max_attempts`` attempts when that is set. Pass ``None`` where a
    ``RetrySettings`` is expected to turn retries off.
    """

    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    multiplier: float = 2.0
    max_elapsed: float = 120.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        _finite("initial_backoff", self.initial_backoff)
        _finite("max_backoff", self.max_backoff)
        _finite("multiplier", self.multiplier)
        _finite("max_elapsed", self.max_elapsed)
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, not {self.multiplier!r}")
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be >= initial_backoff")
        attempts = self.max_attempts
        if attempts is not None and (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            raise ValueError(f"max_attempts must be None or an integer >= 1, not {attempts!r}")

    def backoff_cap(self, retry_number: int) -> float:
        """The upper bound of the jittered wait before retry ``retry_number`` (1-based)."""
        exponent = max(0, retry_number - 1)
        try:
            grown = self.initial_backoff * self.multiplier**exponent
        except OverflowError:
            return self.max_backoff
        return min(self.max_backoff, grown)

    def wait(
        self,
        retry_number: int,
        error: BaseException | None = None,
        *,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> float:
        """The wait before retry ``retry_number``: the server's pushback, else full jitter."""
        pushback = pushback_seconds(error) if error is not None else None
        if pushback is not None:
            return pushback
        return uniform(0.0, self.backoff_cap(retry_number))

    def allows(self, attempts_made: int, ends_at: float, first_attempt_at: float) -> bool:
        """Whether another attempt may start at ``ends_at`` (after ``attempts_made`` attempts)."""
        if self.max_attempts is not None and attempts_made >= self.max_attempts:
            return False
        return ends_at - first_attempt_at <= self.max_elapsed


def status_code(error: BaseException | None) -> grpc.StatusCode | None:
    """The gRPC status code of a failed call, or ``None`` for an error that is not gRPC's."""
    if error is None:
        return None
    code = getattr(error, "code", None)
    if not callable(code):
        return None
    try:
        value = code()
    except Exception:
        return None
    return value if isinstance(value, grpc.StatusCode) else None


def _details(error: BaseException) -> str:
    details = getattr(error, "details", None)
    if callable(details):
        try:
            text = details()
        except Exception:
            return ""
        return text if isinstance(text, str) else ""
    message = getattr(error, "message", None)
    return message if isinstance(message, str) else ""


def pushback_seconds(error: BaseException | None) -> float | None:
    """The server's ``grpc-retry-pushback-ms`` request, in seconds.

    ``None`` when absent; :data:`DO_NOT_RETRY` when the value is negative or not an integer,
    which (as in gRPC's own retry design) means "do not retry".
    """
    trailers = getattr(error, "trailing_metadata", None)
    if not callable(trailers):
        return None
    try:
        items = trailers() or ()
    except Exception:
        return None
    for key, value in items:
        if key.lower() != PUSHBACK_TRAILER:
            continue
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        text = text.strip()
        if not text.isdigit():
            return DO_NOT_RETRY
        return int(text) / 1000.0
    return None


def is_transient(error: BaseException | None) -> bool:
    """A failure worth retrying: a transient code or a credential-check blip, no "stop" pushback."""
    code = status_code(error)
    if code is None or error is None:
        return False
    if code == grpc.StatusCode.UNAUTHENTICATED:
        transient = _details(error).lower().startswith(TRANSIENT_UNAUTHENTICATED)
    else:
        transient = code in TRANSIENT_CODES
    return transient and pushback_seconds(error) != DO_NOT_RETRY


def _policy(
    settings: RetrySettings,
    *,
    clock: Callable[[], float],
    uniform: Callable[[float, float], float],
    on_retry: Callable[[BaseException, float], None] | None,
    should_abort: Callable[[], bool],
) -> dict[str, Any]:
    """The stop, wait and hook arguments that both tenacity policies take, built once."""
    started: list[float] = []

    def wait(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        remaining = max(0.0, started[0] + settings.max_elapsed - clock())
        pushback = pushback_seconds(error)
        if pushback is not None:
            return pushback if pushback <= remaining else DO_NOT_RETRY
        return min(settings.wait(state.attempt_number, uniform=uniform), remaining)

    def stop(state: tenacity.RetryCallState) -> bool:
        limit = settings.max_attempts
        return (
            (limit is not None and state.attempt_number >= limit)
            or state.upcoming_sleep == DO_NOT_RETRY
            or clock() >= started[0] + settings.max_elapsed
            or should_abort()
        )

    def before(state: tenacity.RetryCallState) -> None:
        if state.attempt_number == 1:
            started[:] = [clock()]

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            if error is not None:
                on_retry(error, state.upcoming_sleep)

    return {
        "stop": stop,
        "wait": wait,
        "before": before,
        "retry": tenacity.retry_if_exception(is_transient),
        "before_sleep": before_sleep,
        "reraise": True,
    }


def retrying(
    settings: RetrySettings,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    uniform: Callable[[float, float], float] = random.uniform,
    on_retry: Callable[[BaseException, float], None] | None = None,
    should_abort: Callable[[], bool] = lambda: False,
) -> tenacity.Retrying:
    """A ``tenacity.Retrying`` applying ``settings`` to one blocking call; re-raises the last error.

    A jittered wait that would pass the ``max_elapsed`` budget is shortened to fit; a pushback
    that would pass it ends retrying. ``should_abort()`` turning true (shutdown) ends it too.
    """
    policy = _policy(
        settings, clock=clock, uniform=uniform, on_retry=on_retry, should_abort=should_abort
    )
    return tenacity.Retrying(sleep=sleep, **policy)


def async_retrying(
    settings: RetrySettings,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    uniform: Callable[[float, float], float] = random.uniform,
) -> tenacity.AsyncRetrying:
    """:func:`retrying` for one coroutine: the same rules, waiting with ``await sleep(...)``."""
    policy = _policy(
        settings, clock=clock, uniform=uniform, on_retry=None, should_abort=lambda: False
    )
    return tenacity.AsyncRetrying(sleep=sleep, **policy)
