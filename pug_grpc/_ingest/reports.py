"""Handing failures to the user's ``on_error``: the reporter and how errors are described.

``on_error(error, items)`` runs on the worker thread (on the caller's thread for call-time
refusals). Whatever it raises, ``BaseException`` included, is logged and swallowed: a report
must never stop the worker or reach ``track()``'s caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Final

import grpc
from google.protobuf.message import Message

from pug_grpc._errors import error_from_rpc
from pug_grpc._retry import status_code

__all__ = ["MAX_REPORTED_ITEMS", "Reporter", "describe", "public_error", "safe_reporter"]

_log = logging.getLogger("pug_grpc.reports")

Reporter = Callable[[BaseException, Sequence[Message]], None]
"""Receives ``(error, items)`` for everything that will not be delivered (``on_error``)."""

MAX_REPORTED_ITEMS: Final = 1000
"""At most this many messages go with one report (all are counted)."""


class SafeReporter:
    """``on_error`` wrapped so that nothing it raises escapes; ``wants_items`` says whether
    building the messages of a report is worth it (someone receives them).

    A report made while ``on_error`` runs on the same thread (``on_error`` calling ``track()``
    on a closed client, say) is logged instead of calling ``on_error`` again: it would recurse.
    """

    __slots__ = ("_active", "_on_error", "wants_items")

    def __init__(self, on_error: Reporter | None) -> None:
        self._on_error = on_error
        self.wants_items = on_error is not None
        self._active = threading.local()

    def __call__(self, error: BaseException, items: Sequence[Message] = ()) -> None:
        if self._on_error is None:
            return
        if getattr(self._active, "busy", False):
            _log.warning("a report from inside on_error is not passed to on_error: %s", error)
            return
        self._active.busy = True
        try:
            self._on_error(error, list(items))
        except BaseException:  # SystemExit and KeyboardInterrupt too: the worker must go on
            _log.exception("on_error raised; ignoring it")
        finally:
            self._active.busy = False


def safe_reporter(on_error: Reporter | None) -> SafeReporter:
    """Wrap ``on_error`` (``None``: reports are only logged)."""
    return SafeReporter(on_error)


def describe(error: BaseException) -> str:
    """A one-line description of a failure for the logs (never a credential)."""
    code = status_code(error)
    if code is not None:
        details = getattr(error, "details", None)
        text = ""
        if callable(details):
            try:
                text = details() or ""
            except Exception:
                text = ""
        return f"{code.name}: {text}" if text else code.name
    return f"{type(error).__name__}: {error}"


def public_error(error: BaseException) -> BaseException:
    """What ``on_error`` receives for a failed request: the decoded ``PugError`` for gRPC
    failures (with the original as ``__cause__``), the exception itself otherwise."""
    if isinstance(error, grpc.RpcError):
        decoded = error_from_rpc(error)
        decoded.__cause__ = error
        return decoded
    return error
