"""When a failed request goes again: its own backoff, its elapsed budget, and outage probing.

After ``UNAVAILABLE`` no new request starts except one probe at a time, on one backoff
schedule for all that wait; any other answer ends the probing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pug_grpc._ingest.attempts import Attempt
from pug_grpc._ingest.outcomes import PugDeliveryError
from pug_grpc._retry import RetrySettings

__all__ = ["Outage", "backoff", "budget_spent"]

_log = logging.getLogger("pug_grpc.pipeline")


def backoff(
    retry: RetrySettings | None,
    attempt: Attempt,
    error: BaseException,
    now: float,
    uniform: Callable[[float, float], float],
) -> float | None:
    """The wait before ``attempt`` goes again after ``error``, or None once its budget is spent."""
    first = attempt.first_attempt if attempt.first_attempt is not None else now
    wait = retry.wait(attempt.attempts, error, uniform=uniform) if retry else 0.0
    if retry is None or not retry.allows(attempt.attempts, now + wait, first):
        return None
    return wait


def budget_spent(retry: RetrySettings | None, attempt: Attempt, now: float) -> BaseException | None:
    """Why a parked ``attempt`` may not go again (its budget ran out while it waited), if so."""
    first = attempt.first_attempt
    if retry is None or first is None or retry.allows(attempt.attempts, now, first):
        return None
    _log.info("retry budget of %gs spent for %d item(s)", retry.max_elapsed, attempt.record.count)
    return attempt.last_error or PugDeliveryError(
        f"retry budget of {retry.max_elapsed:g}s spent", reason="RETRIES_EXHAUSTED"
    )


class Outage:
    """Probing after ``UNAVAILABLE``: one request per backoff step while the server is away."""

    __slots__ = ("_next_probe_at", "_probe_round", "_retry", "_uniform", "probe", "probing")

    def __init__(
        self, retry: RetrySettings | None, uniform: Callable[[float, float], float]
    ) -> None:
        self._retry = retry
        self._uniform = uniform
        self.probing = False
        self.probe: Attempt | None = None
        """The probe in flight."""
        self._probe_round = 0
        self._next_probe_at = 0.0

    def slots(self, free: int) -> int:
        """How many requests may start, ``free`` of them when not probing."""
        if self.probing:
            return 0 if self.probe is not None else 1
        return free

    def may_probe(self, now: float) -> bool:
        return now >= self._next_probe_at

    def started(self, attempt: Attempt) -> None:
        attempt.probe = self.probing
        if self.probing:
            self.probe = attempt

    def ended(self, attempt: Attempt) -> None:
        if self.probe is attempt:
            self.probe = None

    def next_wake(self) -> float | None:
        """When the next probe may start (None while one is out)."""
        return self._next_probe_at if self.probe is None else None

    def unavailable(self, attempt: Attempt, now: float, wait: float) -> None:
        """Probe: one request per backoff step, on one schedule for all that wait."""
        if not self.probing:
            self.probing = True
            self._probe_round = attempt.attempts
            self._next_probe_at = now + wait
        elif attempt.probe:  # the probe itself failed: the next one waits longer
            self._probe_round += 1
            assert self._retry is not None
            step = self._retry.wait(self._probe_round, uniform=self._uniform)
            self._next_probe_at = max(self._next_probe_at, now + step)
