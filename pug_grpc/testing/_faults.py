"""Fault injection for the local server: what a flaky network or a struggling Pug looks like.

Every knob is thread-safe and takes effect on the next call; ``clear()`` restores normal service.
Method names may be given short (``"BatchCreate"``), as ``"EventsService.BatchCreate"`` or as the
full path (``"/sdk.events.v1.EventsService/BatchCreate"``).

Pug's own transient faults look like this: ``fail_next(code=UNAUTHENTICATED)`` answers "failed to
validate API key" (its key lookup's database failed; pass ``message="failed to verify project
access"`` for the other one), ``fail_next(code=INTERNAL, message="failed to accept events")`` a
queue failure, ``outage()`` an HTTP/2 front whose origin is down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc

__all__ = ["Faults", "InjectedFailure"]


_DEFAULT_MESSAGES = {grpc.StatusCode.UNAUTHENTICATED: "failed to validate API key"}
"""Default messages of injected failures: Pug's own words for a transient cause."""


@dataclass(frozen=True)
class InjectedFailure:
    """One injected error: status code, message, ErrorInfo reason and optional push-back."""

    code: grpc.StatusCode
    message: str
    pushback_ms: int | None = None
    reason: str = ""


def _failure(
    code: grpc.StatusCode, message: str | None, reason: str | None, pushback_ms: int | None = None
) -> InjectedFailure:
    text = message if message is not None else _DEFAULT_MESSAGES.get(code, "injected failure")
    return InjectedFailure(code, text, pushback_ms, reason or code.name)


@dataclass
class _Pending:
    method: str | None
    remaining: int
    failure: InjectedFailure


class Faults:
    """The fault-injection controls of a :class:`~pug_grpc.testing.LocalServer`."""

    def __init__(
        self, methods: Iterable[str], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._methods = tuple(methods)
        self._clock = clock
        self._lock = threading.Lock()
        self._fail_before: list[_Pending] = []
        self._fail_after: list[_Pending] = []
        self._latency: dict[str | None, float] = {}
        self._outage_until: float | None = None
        self._drops: list[tuple[int, str]] = []

    def resolve(self, method: str) -> str:
        """The full method path a user-given name refers to; ``ValueError`` if it names none."""
        name = method.strip()
        matches = [
            m
            for m in self._methods
            if name in (m, m.lstrip("/"))
            or m.endswith("/" + name)
            or m.endswith("." + name.replace(".", "/"))
        ]
        if len(matches) != 1:
            known = ", ".join(sorted({m.rsplit("/", 1)[1] for m in self._methods}))
            what = "is ambiguous" if matches else "is not served"
            raise ValueError(f"method {method!r} {what} by the local server (known: {known})")
        return matches[0]

    def _target(self, method: str | None) -> str | None:
        return None if method is None else self.resolve(method)

    def fail_next(
        self,
        method: str | None = None,
        *,
        times: int = 1,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        message: str | None = None,
        pushback_ms: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Fail the next ``times`` calls of ``method`` (any method if None) before handling them.

        ``message`` defaults to "failed to validate API key" for ``UNAUTHENTICATED`` (Pug's
        transient credential fault) and to "injected failure" otherwise; ``reason`` (the
        ErrorInfo token) to the code's name.
        """
        failure = _failure(code, message, reason, pushback_ms)
        pending = _Pending(self._target(method), times, failure)
        with self._lock:
            self._fail_before.append(pending)

    def fail_after_accept(
        self,
        method: str | None = "BatchCreate",
        *,
        times: int = 1,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        message: str = "injected failure after the request was stored",
        reason: str | None = None,
    ) -> None:
        """Handle (and store) the next ``times`` calls, then fail their replies: a lost reply."""
        pending = _Pending(self._target(method), times, _failure(code, message, reason))
        with self._lock:
            self._fail_after.append(pending)

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delay every call of ``method`` (all methods if None) by ``seconds``; 0 removes it."""
        target = self._target(method)
        with self._lock:
            if seconds > 0:
                self._latency[target] = seconds
            else:
                self._latency.pop(target, None)

    def outage(self, seconds: float | None = None) -> None:
        """Answer every call with UNAVAILABLE for ``seconds`` (until :meth:`end_outage` if None)."""
        with self._lock:
            self._outage_until = float("inf") if seconds is None else self._clock() + seconds

    def end_outage(self) -> None:
        """End an outage now."""
        with self._lock:
            self._outage_until = None

    def drop_events(self, count: int, *, reason: str = "salt_unavailable") -> None:
        """Drop the next ``count`` received events, reported in the reply under ``reason``."""
        if count < 0:
            raise ValueError("count must not be negative")
        with self._lock:
            self._drops.append((count, reason))

    def clear(self) -> None:
        """Remove every injected fault."""
        with self._lock:
            self._fail_before.clear()
            self._fail_after.clear()
            self._latency.clear()
            self._outage_until = None
            self._drops.clear()

    # -- used by the server -------------------------------------------------------------

    def in_outage(self) -> bool:
        """Whether calls are to be answered UNAVAILABLE right now."""
        with self._lock:
            if self._outage_until is None:
                return False
            if self._clock() < self._outage_until:
                return True
            self._outage_until = None
            return False

    def latency_for(self, method: str) -> float:
        """Seconds every call of ``method`` waits before it is handled."""
        with self._lock:
            return self._latency.get(method, self._latency.get(None, 0.0))

    def take_failure(self, method: str) -> InjectedFailure | None:
        """The failure the next call of ``method`` answers before it is handled, if any."""
        return self._take(self._fail_before, method)

    def take_failure_after(self, method: str) -> InjectedFailure | None:
        """The failure the next call of ``method`` answers after it was handled, if any."""
        return self._take(self._fail_after, method)

    def _take(self, queue: list[_Pending], method: str) -> InjectedFailure | None:
        with self._lock:
            for pending in queue:
                if pending.method in (None, method):
                    pending.remaining -= 1
                    if pending.remaining <= 0:
                        queue.remove(pending)
                    return pending.failure
        return None

    def take_drops(self, count: int) -> list[str]:
        """Drop reasons for the first events of a batch of ``count``, consuming the budget."""
        reasons: list[str] = []
        with self._lock:
            while self._drops and len(reasons) < count:
                budget, reason = self._drops[0]
                used = min(budget, count - len(reasons))
                reasons.extend([reason] * used)
                if used == budget:
                    self._drops.pop(0)
                else:
                    self._drops[0] = (budget - used, reason)
        return reasons
