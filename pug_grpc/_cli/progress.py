"""A dependency-free progress bar for the command line (drawn only on a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 28
_REDRAW_EVERY = 0.1


class Progress:
    """``label [######------]  45%  13,500/30,000  41,200/s`` on one self-overwriting line."""

    def __init__(
        self,
        total: int | None,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        unit: str = "/s",
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._total = total
        self._label = label
        self._unit = unit
        self._done = 0
        self._started = time.monotonic()
        self._drawn = 0.0

    @property
    def done(self) -> int:
        return self._done

    def advance(self, count: int = 1) -> None:
        self.update(self._done + count)

    def update(self, done: int) -> None:
        self._done = done
        now = time.monotonic()
        if self._enabled and now - self._drawn >= _REDRAW_EVERY:
            self._drawn = now
            self._draw(now)

    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return self._done / elapsed if elapsed > 0 else 0.0

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = f"{self._done / elapsed:,.0f}{self._unit}"
        if self._total:
            share = min(self._done / self._total, 1.0)
            filled = int(share * _WIDTH)
            bar = "#" * filled + "-" * (_WIDTH - filled)
            text = f"{self._label} [{bar}] {share:4.0%}  {self._done:,}/{self._total:,}  {rate}"
        else:
            text = f"{self._label}  {self._done:,}  {rate}"
        self._stream.write("\r" + text + "\033[K")
        self._stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self._enabled:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
