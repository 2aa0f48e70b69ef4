"""Where the command line's messages go: stderr, one whole line each, above the progress bar.

Warnings (from the command or from the client's ``pug_grpc`` log) are shown unless ``--quiet``
and counted either way, so a command can say that something it sent was changed. Other
libraries' log lines (gRPC's included) appear only with ``--debug``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import TextIO

from pug_grpc._cli.terms import cli_terms

__all__ = ["PROG", "Console", "hide_native_logs"]

PROG = "pug-grpc"


class Console:
    """Writes messages to ``stream`` without ever breaking into the status (progress) line."""

    def __init__(self, stream: TextIO, *, quiet: bool = False, debug: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.debug = debug
        self.warnings = 0
        self._status = ""
        self._lock = threading.Lock()

    def message(self, text: str) -> None:
        """One line of information (always shown)."""
        self._write(text)

    def note(self, text: str) -> None:
        """A detail line (a rejected row): shown unless ``--quiet``, not counted as a warning."""
        if not self.quiet:
            self._write(cli_terms(text))

    def warn(self, text: str) -> None:
        """A warning: counted, and shown unless ``--quiet``."""
        with self._lock:
            self.warnings += 1
        if not self.quiet:
            self._write(f"{PROG}: warning: {cli_terms(text)}")

    def error(self, text: str) -> None:
        """An error line (always shown)."""
        self._write(f"{PROG}: error: {cli_terms(text)}")

    def status(self, text: str) -> None:
        """Replace the status line at the bottom (a progress bar); ``""`` ends it."""
        with self._lock:
            if text:
                self.stream.write("\r" + text + "\033[K")
            elif self._status:
                self.stream.write("\n")
            self._status = text
            self.stream.flush()

    def _write(self, line: str) -> None:
        with self._lock:
            if self._status:
                self.stream.write("\r\033[K")
            self.stream.write(line + "\n")
            if self._status:
                self.stream.write(self._status + "\033[K")
            self.stream.flush()

    def log_handler(self) -> logging.Handler:
        """A handler that routes log records here (the ``pug_grpc`` ones only, unless debug)."""
        return _ConsoleHandler(self)


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__(logging.DEBUG if console.debug else logging.WARNING)
        self._console = console

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "pug_grpc" or record.name.startswith("pug_grpc.")
        return self._console.debug or ours

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string in someone's log call: show it raw
            text = str(record.msg)
        if self._console.debug:
            self._console.message(f"{record.levelname} {record.name}: {text}")
        elif record.levelno >= logging.ERROR:
            self._console.error(text)
        else:
            self._console.warn(text)


def hide_native_logs() -> None:
    """Send file descriptor 2 to the null device, keeping ``sys.stderr`` on the real stderr.

    gRPC's C core writes its own log lines (a failed bind, a TLS handshake) straight to file
    descriptor 2, and reads ``GRPC_VERBOSITY`` only when grpc is first imported, which happens
    before any command line code runs. Python's own output keeps the original stderr.
    """
    sys.stderr.flush()
    real = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    encoding = sys.stderr.encoding or "utf-8"
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=encoding, errors="backslashreplace")
