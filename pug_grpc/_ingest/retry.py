"""The retry policy of the ingestion worker, built on ``tenacity``.

``tenacity`` is the only retry layer: gRPC's own retries are switched off on our channels, so
every attempt is visible here (and counted in ``stats().retried``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Final, TypeVar

import grpc
import tenacity

from pug_grpc._ingest.settings import RetrySettings

__all__ = [
    "PERMANENT_CODES",
    "PUSHBACK_TRAILER",
    "TRANSIENT_CODES",
    "call_with_retry",
    "is_transient",
    "pushback_seconds",
    "status_code",
]

_T = TypeVar("_T")

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
"""Codes after which the same request may succeed: retried with backoff."""

PERMANENT_CODES: Final = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
"""Codes the same request will meet again. Any code in neither set is treated as permanent."""

PUSHBACK_TRAILER: Final = "grpc-retry-pushback-ms"
_DO_NOT_RETRY: Final = math.inf


def status_code(error: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code of a failed call, or ``None`` for an error that is not gRPC's."""
    if not isinstance(error, grpc.RpcError):
        return None
    code = getattr(error, "code", None)
    if not callable(code):
        return None
    value = code()
    return value if isinstance(value, grpc.StatusCode) else None


def pushback_seconds(error: BaseException) -> float | None:
    """The server's ``grpc-retry-pushback-ms`` request, in seconds.

    ``None`` when absent; ``math.inf`` when the value is negative or not an integer, which (as in
    gRPC's own retry design) means "do not retry".
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
            return _DO_NOT_RETRY
        return int(text) / 1000.0
    return None


def is_transient(error: BaseException) -> bool:
    """A failure worth retrying: a transient code and no "do not retry" pushback."""
    return status_code(error) in TRANSIENT_CODES and pushback_seconds(error) != _DO_NOT_RETRY


def call_with_retry(
    attempt: Callable[[], _T],
    *,
    settings: RetrySettings,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    uniform: Callable[[float, float], float] = random.uniform,
    on_retry: Callable[[BaseException, float], None] | None = None,
    should_abort: Callable[[], bool] = lambda: False,
) -> _T:
    """Run ``attempt`` until it succeeds, fails permanently, or the policy gives up.

    Waits are full-jitter exponential backoff, or exactly the server's pushback. Retrying stops
    after ``settings.max_attempts`` attempts, when the next wait would end after
    ``settings.max_elapsed`` seconds from the first attempt (a jittered wait is shortened to fit
    instead), or when ``should_abort()`` turns true (shutdown). The last error is then raised.
    """
    deadline = clock() + settings.max_elapsed

    def wait(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        remaining = max(0.0, deadline - clock())
        pushback = pushback_seconds(error) if error is not None else None
        if pushback is not None:
            return pushback if pushback <= remaining else _DO_NOT_RETRY
        return min(uniform(0.0, settings.backoff_cap(state.attempt_number)), remaining)

    def stop(state: tenacity.RetryCallState) -> bool:
        return (
            state.attempt_number >= settings.max_attempts
            or state.upcoming_sleep == _DO_NOT_RETRY
            or clock() >= deadline
            or should_abort()
        )

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            if error is not None:
                on_retry(error, state.upcoming_sleep)

    retrying = tenacity.Retrying(
        sleep=sleep,
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(attempt)
