"""The one fake clock of the suite: monotonic seconds that move only when a test says so."""

from __future__ import annotations


class FakeClock:
    """A clock (call it) that moves on :meth:`advance`, or when something sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
