"""A dependency-free progress bar, drawn as the console's status line (only on a terminal)."""

from __future__ import annotations

import time
from collections.abc import Callable

from pug_grpc._cli.console import Console

__all__ = ["Progress"]

_WIDTH = 28
_REDRAW_EVERY = 0.1


class Progress:
    """``label [######------]  45%  13,500/30,000  41,200/s``, redrawn at most ten times a second.

    The console keeps it at the bottom: messages written meanwhile appear above it.
    """

    def __init__(
        self,
        total: int | None,
        label: str,
        *,
        console: Console,
        enabled: bool | None = None,
        unit: str = "/s",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._console = console
        self._enabled = console.stream.isatty() if enabled is None else enabled
        self._total = total
        self._label = label
        self._unit = unit
        self._clock = clock
        self._done = 0
        self._started = clock()
        self._drawn: float | None = None

    @property
    def done(self) -> int:
        """How far the work has come."""
        return self._done

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more units of work."""
        self.update(self._done + count)

    def update(self, done: int) -> None:
        """Set how far the work has come; redraws when the last drawing is old enough."""
        self._done = done
        now = self._clock()
        if self._enabled and (self._drawn is None or now - self._drawn >= _REDRAW_EVERY):
            self._drawn = now
            self._console.status(self.render(now))

    def render(self, now: float) -> str:
        """The bar's text at ``now``."""
        elapsed = max(now - self._started, 1e-9)
        rate = f"{self._done / elapsed:,.0f}{self._unit}"
        if self._total:
            share = min(self._done / self._total, 1.0)
            filled = int(share * _WIDTH)
            bar = "#" * filled + "-" * (_WIDTH - filled)
            return f"{self._label} [{bar}] {share:4.0%}  {self._done:,}/{self._total:,}  {rate}"
        return f"{self._label}  {self._done:,}  {rate}"

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self._enabled:
            self._console.status(self.render(self._clock()))
            self._console.status("")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
