"""Refused calls: the error, the best-effort item and the hand-off to the engine's reports.

Ingestion calls never raise; a refusal is logged, counted in ``stats().rejected`` and reported
to ``on_error`` by :meth:`Engine.refuse`, with what could be read of the call.
"""

from __future__ import annotations

import contextlib
import logging

import grpc

from pug_grpc._ingest.engine import Engine
from pug_grpc._ingest.messages import best_effort_event
from pug_grpc._ingest.outcomes import (
    CLIENT_CLOSED,
    INVALID_EVENT,
    INVALID_IDENTIFY,
    PugDeliveryError,
)
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

__all__ = ["refuse_closed", "reject_event", "reject_identify", "reject_unreadable"]

_log = logging.getLogger("pug_grpc.intake")


def reject_event(  # noqa: PLR0917 - the parts of one event, as far as they could be read
    engine: Engine,
    problem: str,
    event_id: object,
    kind: object,
    distinct_id: object,
    sid: object,
) -> None:
    """Refuse an event: ``invalid event: <problem>``."""
    event = best_effort_event(
        event_id=event_id, kind=kind, distinct_id=distinct_id, session_id=sid, occur_ns=None
    )
    error = PugDeliveryError(
        f"invalid event: {problem}", reason=INVALID_EVENT, code=grpc.StatusCode.INVALID_ARGUMENT
    )
    engine.refuse(error, event)


def reject_identify(
    engine: Engine, problem: str, external_id: object, anonymous_id: object, device_id: object
) -> None:
    """Refuse an identify or alias: ``invalid identify: <problem>``."""
    request = profiles_pb2.IdentifyRequest()
    for name, value in (
        ("external_id", external_id),
        ("anonymous_id", anonymous_id),
        ("device_id", device_id),
    ):
        if isinstance(value, str) and value:
            with contextlib.suppress(TypeError, ValueError):
                setattr(request, name, value)
    error = PugDeliveryError(
        f"invalid identify: {problem}",
        reason=INVALID_IDENTIFY,
        code=grpc.StatusCode.INVALID_ARGUMENT,
    )
    engine.refuse(error, request)


def reject_unreadable(engine: Engine, call: str, exc: Exception) -> None:
    """Refuse a call whose arguments raised when read: counted, logged, reported."""
    try:
        _log.debug("%s() could not read its arguments", call, exc_info=True)
        problem = f"{call}() could not read its arguments ({type(exc).__name__})"
        if call == "track":
            reject_event(engine, problem, None, None, None, None)
        else:
            reject_identify(engine, problem, None, None, None)
    except Exception:  # never let a report escape to the caller
        _log.exception("%s() failed unexpectedly; the call is dropped", call)


def refuse_closed(engine: Engine, what: object) -> None:
    """Refuse a call made after ``close()``."""
    error = PugDeliveryError(
        "the client is closed", reason=CLIENT_CLOSED, code=grpc.StatusCode.CANCELLED
    )
    name = what if isinstance(what, str) else "call"
    engine.refuse(error, None)
    _log.debug("%s after close() refused", name)
