"""The caller's side of ``track``/``identify``/``alias``: check, copy, hand off; never raise.

``Pug.track`` handles the common call inline (a plain kind seen before, an ASCII id, a dict
or nothing, no options); everything else comes here. Refusals are logged under ``pug_grpc``,
counted in ``stats().rejected`` and reported to ``on_error`` on the caller's thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

import grpc

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
from pug_grpc._ingest.messages import (
    ContextProperties,
    RawEvent,
    best_effort_event,
    timestamp_ns,
)
from pug_grpc._ingest.outcomes import (
    CLIENT_CLOSED,
    INVALID_EVENT,
    INVALID_IDENTIFY,
    PugDeliveryError,
)
from pug_grpc._ingest.properties import Scalar, _DropError, normalize_value, to_struct
from pug_grpc._ingest.sessions import SessionTracker
from pug_grpc._ingest.validation import coerce_id, event_problem, identify_problem
from pug_grpc._ingest.well_known import (
    CatalogError,
    is_well_known,
    pii_fields,
    properties_of_event,
    properties_of_kind,
)
from pug_grpc.gen.catalog import OTHER_PLATFORM_KINDS, SERVER_KINDS, WellKnownEvent
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

__all__ = ["CATALOGUED", "Intake", "plain_kinds", "warm_up"]

_log = logging.getLogger("pug_grpc.intake")

CATALOGUED: Final = frozenset(SERVER_KINDS) | OTHER_PLATFORM_KINDS
_PLAIN_KINDS_LIMIT: Final = 4096
plain_kinds: set[str] = set()
"""Kinds that passed the rules and are not catalogued (a service uses few; bounded)."""

_warm_up: list[threading.Thread] = []


def warm_up() -> None:
    """Import protovalidate off the caller's thread, once per process.

    Checking a well-known event needs it; importing it costs tens of milliseconds, which the
    first ``track()`` of a well-known kind would otherwise pay.
    """
    if _warm_up:
        return

    def load() -> None:
        with contextlib.suppress(Exception):
            import protovalidate  # noqa: F401

    thread = threading.Thread(target=load, name="pug-grpc-warm-up", daemon=True)
    _warm_up.append(thread)
    thread.start()


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


def finish_warm_up(timeout: float) -> None:
    """Before a fork: an import under way in another thread would stay locked in the child."""
    for thread in _warm_up:
        thread.join(timeout)


def after_fork_in_child() -> None:
    """The warm-up thread does not exist in a child; what it imported is there."""
    _warm_up[:] = [threading.Thread()]


_ANY_SESSION: Final = "00000000-0000-4000-8000-000000000000"
"""Stands for the session while the identity fields are checked, before one is picked."""


class Intake:
    """Builds queued items from calls and hands them to the engine."""

    __slots__ = (
        "_before_send",
        "_defaults",
        "_engine",
        "_lock",
        "_mismatches",
        "_send_pii",
        "_sessions",
        "_strict",
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
        self._send_pii = send_pii
        self._strict = strict_catalog
        self._defaults = dict(default_properties) if default_properties else None
        self._before_send = before_send
        # Re-entrant: a signal handler's track() may interrupt stats() on this very thread.
        self._lock = threading.RLock()
        self._mismatches: dict[str, int] = {}
        self.filtered = 0
        """Events ``before_send`` dropped."""

    @property
    def plain(self) -> bool:
        """No default properties and no hook: ``Pug.track``'s inline path gives the same."""
        return self._defaults is None and self._before_send is None

    def catalog_mismatches(self) -> dict[str, int]:
        """Events sent although they broke a catalog rule, per ``"kind: rule"``."""
        with self._lock:
            return dict(self._mismatches)

    def reset_counters(self) -> None:
        """A forked child counts from zero, as ``stats()`` does."""
        self._lock = threading.RLock()
        self._mismatches = {}
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
                    kind, properties = self._catalog_properties(kind, properties, extra)
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
            elif (
                type(kind) is str
                and kind not in CATALOGUED
                and len(plain_kinds) < _PLAIN_KINDS_LIMIT
            ):
                plain_kinds.add(kind)  # valid and not catalogued: the fast path may take it
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

    def _catalog_properties(
        self,
        kind: str | WellKnownEvent,
        properties: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None,
    ) -> tuple[str, dict[str, Any] | None]:
        """Merge ``extra`` and check a well-known event; raises CatalogError or TypeError.

        A string kind naming a catalogued event that breaks its rules is sent as given (the
        server accepts any properties for any kind), counted and warned about once per kind
        and rule, unless ``strict_catalog``. Typed events keep their checks.
        """
        for name, given in (("properties", properties), ("extra", extra)):
            if given is not None and not isinstance(given, Mapping):
                raise TypeError(f"{name} must be a mapping, not {type(given).__name__}")
        merged = {**(properties or {}), **(extra or {})}
        if isinstance(kind, WellKnownEvent):
            fields = properties_of_event(kind, send_pii=self._send_pii)
            shadowed = sorted(k for k in merged if k in fields)
            if shadowed:
                _log.warning(
                    "%s: extra properties %s replaced by typed fields", kind.KIND, shadowed
                )
            return kind.KIND, {**merged, **fields}
        if not isinstance(kind, str):
            raise TypeError(
                f"kind must be a string or a well-known event, not {type(kind).__name__}"
            )
        if is_well_known(kind):
            try:
                fields, rest = properties_of_kind(kind, merged, send_pii=self._send_pii)
            except CatalogError as exc:
                if self._strict:
                    raise
                self._mismatch(kind, exc)
                if not self._send_pii:
                    withheld = pii_fields(kind)
                    merged = {k: v for k, v in merged.items() if k not in withheld}
                return kind, merged or None
            return kind, {**rest, **fields}
        return kind, merged or None

    def _mismatch(self, kind: str, exc: CatalogError) -> None:
        key = f"{kind}: {exc.rule}"
        with self._lock:
            seen = self._mismatches.get(key, 0)
            self._mismatches[key] = seen + 1
        if not seen:
            _log.warning(
                "%s; sent as given (Pug accepts any properties for any kind). Further events "
                "of this kind breaking this rule are counted in stats().catalog_mismatches; "
                "Pug(strict_catalog=True) refuses them",
                exc,
            )

    # -- identify ---------------------------------------------------------------------------
    def identify(
        self,
        external_id: Any,
        traits: Mapping[str, Any] | None,
        anonymous_id: str | None,
        device_id: str | None,
    ) -> None:
        try:
            if not self._engine.accepting:
                self.refuse_closed("identify")
                return
            external = coerce_id(external_id)
            anonymous = "" if anonymous_id is None else anonymous_id
            device = "" if device_id is None else device_id
            problem = identify_problem(external, anonymous, device)
            if not problem and traits is not None and not isinstance(traits, Mapping):
                problem = f"traits must be a mapping, not {type(traits).__name__}"
            if problem:
                self._reject_identify(problem, external, anonymous, device)
                return
            request = profiles_pb2.IdentifyRequest()
            request.external_id = external  # type: ignore[assignment]
            # Empty fields stay unset: a set empty string is checked by its rules.
            if anonymous:
                request.anonymous_id = anonymous
            if device:
                request.device_id = device
            if traits:
                request.traits.CopyFrom(to_struct(traits))
            self._engine.submit(request)
        except Exception as exc:  # arguments whose own methods raise (hostile input)
            self.reject_unreadable("identify", exc)

    def alias(self, anonymous_id: Any, external_id: Any) -> None:
        try:
            if not anonymous_id:
                self._reject_identify("alias needs an anonymous_id", external_id, "", "")
                return
        except Exception as exc:  # an anonymous_id whose truth value raises
            self.reject_unreadable("alias", exc)
            return
        self.identify(external_id, None, anonymous_id, None)

    # -- refusals ---------------------------------------------------------------------------
    def _reject_event(
        self, problem: str, event_id: object, kind: object, distinct_id: object, sid: object
    ) -> None:
        event = best_effort_event(
            event_id=event_id, kind=kind, distinct_id=distinct_id, session_id=sid, occur_ns=None
        )
        error = PugDeliveryError(
            f"invalid event: {problem}", reason=INVALID_EVENT, code=grpc.StatusCode.INVALID_ARGUMENT
        )
        self._engine.refuse(error, event)

    def _reject_identify(
        self, problem: str, external_id: object, anonymous_id: object, device_id: object
    ) -> None:
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
        self._engine.refuse(error, request)

    def reject_unreadable(self, call: str, exc: Exception) -> None:
        """Refuse a call whose arguments raised when read: counted, logged, reported."""
        try:
            _log.debug("%s() could not read its arguments", call, exc_info=True)
            problem = f"{call}() could not read its arguments ({type(exc).__name__})"
            if call == "track":
                self._reject_event(problem, None, None, None, None)
            else:
                self._reject_identify(problem, None, None, None)
        except Exception:  # never let a report escape to the caller
            _log.exception("%s() failed unexpectedly; the call is dropped", call)

    def refuse_closed(self, what: object) -> None:
        error = PugDeliveryError(
            "the client is closed", reason=CLIENT_CLOSED, code=grpc.StatusCode.CANCELLED
        )
        name = what if isinstance(what, str) else "call"
        self._engine.refuse(error, None)
        _log.debug("%s after close() refused", name)
