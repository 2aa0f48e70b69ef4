"""The caller's side of ``track``/``identify``/``alias``: check, copy, hand off; never raise.

``Pug.track`` handles the common call inline (a plain kind seen before, an ASCII id, a dict
or nothing, no options); everything else comes here. Refusals are logged under ``pug_grpc``,
counted in ``stats().rejected`` and reported to ``on_error`` on the caller's thread.

:class:`Intake` coordinates: the catalog's rules live in :mod:`~pug_grpc._ingest.catalog_rules`,
identify/alias in :mod:`~pug_grpc._ingest.identify`, refusals in
:mod:`~pug_grpc._ingest.rejections`; here are the track path, the request context and default
properties, and ``before_send``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

from pug_grpc._ingest import identify as identify_path
from pug_grpc._ingest.catalog_rules import (
    CATALOGUED,
    CatalogRules,
    plain_kinds,
    remember_plain,
)
from pug_grpc._ingest.context import CONTEXT_KEYS, RequestContext, current_context
from pug_grpc._ingest.encoding import encode_auto
from pug_grpc._ingest.engine import Engine
from pug_grpc._ingest.hooks import (
    UNCHANGED,
    BeforeSend,
    TrackedEvent,
    instant,
    run_before_send,
)
from pug_grpc._ingest.messages import ContextProperties, RawEvent, timestamp_ns
from pug_grpc._ingest.properties import Scalar, _DropError, normalize_value
from pug_grpc._ingest.rejections import refuse_closed, reject_event, reject_unreadable
from pug_grpc._ingest.sessions import SessionTracker
from pug_grpc._ingest.validation import coerce_id, event_problem
from pug_grpc._ingest.validator_warm_up import after_fork_in_child, finish_warm_up, warm_up
from pug_grpc._ingest.well_known import CatalogError
from pug_grpc.gen.catalog import WellKnownEvent

__all__ = [
    "CATALOGUED",
    "Intake",
    "after_fork_in_child",
    "finish_warm_up",
    "plain_kinds",
    "warm_up",
]

_log = logging.getLogger("pug_grpc.intake")


def _context_auto(values: Mapping[Any, Any]) -> dict[str, Scalar]:
    """``before_send``'s auto-properties: only the context's keys, with sendable values."""
    out: dict[str, Scalar] = {}
    for key, value in values.items():
        if key not in CONTEXT_KEYS:
            _log.warning("auto-property %r dropped: a request context does not send it", key)
            continue
        if value is None:
            continue
        try:
            out[key] = normalize_value(key, value)
        except _DropError as why:
            _log.warning("auto-property %r dropped: %s", key, why)
    return out


_ANY_SESSION: Final = "00000000-0000-4000-8000-000000000000"
"""Stands for the session while the identity fields are checked, before one is picked."""


class Intake:
    """Builds queued items from calls and hands them to the engine."""

    __slots__ = (
        "_before_send",
        "_catalog",
        "_defaults",
        "_engine",
        "_lock",
        "_sessions",
        "filtered",
    )

    def __init__(
        self,
        engine: Engine,
        *,
        sessions: SessionTracker,
        send_pii: bool,
        strict_catalog: bool = False,
        default_properties: Mapping[str, Any] | None = None,
        before_send: BeforeSend | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._catalog = CatalogRules(send_pii=send_pii, strict=strict_catalog)
        self._defaults = dict(default_properties) if default_properties else None
        self._before_send = before_send
        # Re-entrant: a signal handler's track() may interrupt stats() on this very thread.
        self._lock = threading.RLock()
        self.filtered = 0
        """Events ``before_send`` dropped."""

    @property
    def plain(self) -> bool:
        """No default properties and no hook: ``Pug.track``'s inline path gives the same."""
        return self._defaults is None and self._before_send is None

    def catalog_mismatches(self) -> dict[str, int]:
        """Events sent although they broke a catalog rule, per ``"kind: rule"``."""
        return self._catalog.mismatches()

    def reset_counters(self) -> None:
        """A forked child counts from zero, as ``stats()`` does."""
        self._lock = threading.RLock()
        self._catalog.reset()
        self.filtered = 0

    # -- track ----------------------------------------------------------------------------
    def event(  # noqa: PLR0917 - the arguments of Pug.track, passed on as they came
        self,
        distinct_id: Any,
        kind: str | WellKnownEvent,
        properties: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None,
        timestamp: Any,
        session_id: Any,
        event_id: Any,
    ) -> None:
        """The full path of ``track()``."""
        try:
            engine = self._engine
            if not engine.accepting:
                self.refuse_closed(kind)
                return
            context = current_context()
            # The session: the call's, else the request context's, else the user's own.
            sid: Any = None if session_id is None else coerce_id(session_id)
            if sid is None and context is not None and context.session_id:
                sid = context.session_id
            if extra is not None or type(kind) is not str or kind in CATALOGUED:
                try:
                    kind, properties = self._catalog.properties(kind, properties, extra)
                except (CatalogError, TypeError) as exc:
                    name = kind.KIND if isinstance(kind, WellKnownEvent) else kind
                    self._reject_event(str(exc), event_id, name, distinct_id, sid)
                    return
            if type(distinct_id) is not str:
                distinct_id = coerce_id(distinct_id)
            if event_id is not None:
                event_id = coerce_id(event_id)
                if event_id == "":
                    event_id = None
            problem = event_problem(
                distinct_id, kind, _ANY_SESSION if sid is None else sid, event_id
            )
            occur: int | None = None
            if not problem:
                try:
                    occur = time.time_ns() if timestamp is None else timestamp_ns(timestamp)
                except ValueError as exc:
                    problem = str(exc)
            if not problem and properties is not None and not isinstance(properties, Mapping):
                problem = f"properties must be a mapping, not {type(properties).__name__}"
            if problem or occur is None:
                self._reject_event(problem, event_id, kind, distinct_id, sid)
                return
            if sid is None:
                sid = self._sessions.session_for(distinct_id, occur)
            props = self._merged(properties, context)
            auto = context.auto if context is not None else None
            encoded = context.encoded if context is not None else b""
            if self._before_send is not None:
                changed = self._run_before_send(
                    kind, distinct_id, props, auto, sid, occur, event_id
                )
                if changed is None:
                    return
                if changed is not UNCHANGED:
                    assert isinstance(changed, TrackedEvent)
                    problem = self._check_changed(changed)
                    if problem:
                        self._reject_event(
                            f"after before_send: {problem}",
                            changed.event_id,
                            changed.kind,
                            changed.distinct_id,
                            changed.session_id,
                        )
                        return
                    kind, distinct_id, sid = changed.kind, changed.distinct_id, changed.session_id
                    event_id = changed.event_id or None
                    occur = timestamp_ns(changed.timestamp)
                    props = dict(changed.properties) if changed.properties else None
                    if changed.auto_properties != (auto or {}):
                        auto = _context_auto(changed.auto_properties)
                        encoded = encode_auto(auto)
            else:
                remember_plain(kind)  # valid and not catalogued: the fast path may take it
            carried: Mapping[str, Any] | None = (
                ContextProperties(props or {}, auto, encoded) if auto else props
            )
            item: RawEvent = (event_id, kind, distinct_id, sid, occur, carried)
            engine.submit(item)
        except Exception as exc:  # arguments whose own methods raise (hostile input)
            self.reject_unreadable("track", exc)

    def _merged(
        self, properties: Mapping[str, Any] | None, context: RequestContext | None
    ) -> dict[str, Any] | None:
        """``default_properties``, then the context's, then the call's (each wins over the last)."""
        defaults = self._defaults
        scoped = context.properties if context is not None else None
        if not defaults and not scoped:
            return dict(properties) if properties else None
        merged: dict[str, Any] = {**(defaults or {}), **(scoped or {})}
        if properties:
            merged.update(properties)
        return merged

    def _run_before_send(  # noqa: PLR0917 - the parts of one event
        self,
        kind: str,
        distinct_id: str,
        properties: dict[str, Any] | None,
        auto: Mapping[str, Scalar] | None,
        sid: str,
        occur: int,
        event_id: str | None,
    ) -> TrackedEvent | object | None:
        assert self._before_send is not None
        event = TrackedEvent(
            kind=kind,
            distinct_id=distinct_id,
            properties=properties or {},
            auto_properties=dict(auto or {}),
            session_id=sid,
            timestamp=instant(occur),
            event_id=event_id,
        )
        result = run_before_send(self._before_send, event)
        if result is None:
            with self._lock:
                self.filtered += 1
            _log.debug("before_send dropped an event of kind %r", kind)
        return result

    def _check_changed(self, event: TrackedEvent) -> str:
        """Why the hook's event cannot be sent as it is, or ``""``."""
        if not isinstance(event.properties, Mapping):
            return f"properties must be a mapping, not {type(event.properties).__name__}"
        if not isinstance(event.auto_properties, Mapping):
            return "auto_properties must be a mapping"
        if event.event_id == "":
            event.event_id = None
        problem = event_problem(event.distinct_id, event.kind, event.session_id, event.event_id)
        if problem:
            return problem
        try:
            timestamp_ns(event.timestamp)
        except ValueError as exc:
            return str(exc)
        return ""

    # -- identify ---------------------------------------------------------------------------
    def identify(
        self,
        external_id: Any,
        traits: Mapping[str, Any] | None,
        anonymous_id: str | None,
        device_id: str | None,
    ) -> None:
        identify_path.identify(self._engine, external_id, traits, anonymous_id, device_id)

    def alias(self, anonymous_id: Any, external_id: Any) -> None:
        identify_path.alias(self._engine, anonymous_id, external_id)

    # -- refusals ---------------------------------------------------------------------------
    def _reject_event(
        self, problem: str, event_id: object, kind: object, distinct_id: object, sid: object
    ) -> None:
        reject_event(self._engine, problem, event_id, kind, distinct_id, sid)

    def reject_unreadable(self, call: str, exc: Exception) -> None:
        """Refuse a call whose arguments raised when read: counted, logged, reported."""
        reject_unreadable(self._engine, call, exc)

    def refuse_closed(self, what: object) -> None:
        refuse_closed(self._engine, what)
