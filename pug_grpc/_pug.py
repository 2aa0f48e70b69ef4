"""The ``Pug`` ingestion facade: track, identify, alias, flush, close and stats.

The caller's path checks the identity fields, copies the properties and queues a tuple; the
worker thread builds the protobuf messages, batches, sends and retries. Nothing here raises
on bad input: it is logged under ``pug_grpc``, counted, and reported to ``on_error``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final

import grpc
import tenacity
from google.protobuf.message import Message

from pug_grpc._credentials import CredentialsInterceptor, check_api_key, mask
from pug_grpc._ingest.messages import RawEvent, best_effort_event, new_session_id, timestamp_ns
from pug_grpc._ingest.outcomes import (
    CLIENT_CLOSED,
    INVALID_EVENT,
    INVALID_IDENTIFY,
    Counters,
    FlushResult,
    PugDeliveryError,
    Stats,
)
from pug_grpc._ingest.properties import to_struct
from pug_grpc._ingest.settings import BatchSettings, RetrySettings
from pug_grpc._ingest.validation import RESERVED_PREFIX, coerce_id, event_problem, identify_problem
from pug_grpc._ingest.well_known import (
    CatalogError,
    is_well_known,
    properties_of_event,
    properties_of_kind,
)
from pug_grpc._ingest.worker import (
    Delivery,
    GrpcSink,
    NullSink,
    Reporter,
    Sink,
    Worker,
    safe_reporter,
)
from pug_grpc._rpc.reads import Activity, Insights, Profiles, Reads  # reads (issue 4)
from pug_grpc._transport import intercept, open_channel, parse_endpoint
from pug_grpc.gen.catalog import OTHER_PLATFORM_KINDS, SERVER_KINDS, WellKnownEvent
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

__all__ = ["Pug"]

_log = logging.getLogger("pug_grpc.client")

ENV_API_KEY: Final = "PUG_API_KEY"
ENV_ENDPOINT: Final = "PUG_ENDPOINT"
ENV_PROJECT_ID: Final = "PUG_PROJECT_ID"

_Interceptor = (
    grpc.UnaryUnaryClientInterceptor
    | grpc.UnaryStreamClientInterceptor
    | grpc.StreamUnaryClientInterceptor
    | grpc.StreamStreamClientInterceptor
)

_CATALOGUED: Final = frozenset(SERVER_KINDS) | OTHER_PLATFORM_KINDS
_PLAIN_KINDS_LIMIT: Final = 4096
_plain_kinds: set[str] = set()
"""Kinds that passed the rules and are not catalogued (a service uses few; bounded)."""

_live: weakref.WeakSet[Pug] = weakref.WeakSet()
"""Every open client (for the fork hook)."""
_running: set[Pug] = set()
"""Clients whose worker thread is running: held strongly, so that a client dropped without
``close()`` is still drained at exit instead of losing its queue with the daemon thread."""
_abandoned_after_fork: list[object] = []
"""Parent channels a forked child must neither use nor close (closing would touch shared state)."""


class Pug:
    """Send events and profile updates to Pug, in the background, without ever raising.

    ``api_key``, ``endpoint`` and ``project_id`` fall back to ``PUG_API_KEY``, ``PUG_ENDPOINT``
    and ``PUG_PROJECT_ID``. See docs/guarantees.md for the delivery guarantee.
    """

    def __init__(
        self,
        api_key: str | None = None,
        endpoint: str | None = None,
        project_id: str | None = None,
        *,
        batch: BatchSettings | None = None,
        retry: RetrySettings | None = None,
        on_error: Reporter | None = None,
        timeout: float = 10.0,
        channel: grpc.Channel | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[_Interceptor] = (),
        compression: grpc.Compression | None = None,
        allow_insecure: bool = False,
        send: bool = True,
        sync_mode: bool = False,
        shutdown_timeout: float = 5.0,
        send_pii: bool = True,
        read_retry: tenacity.Retrying | None = None,
    ) -> None:
        env = os.environ
        api_key = api_key if api_key is not None else (env.get(ENV_API_KEY) or None)
        endpoint = endpoint if endpoint is not None else (env.get(ENV_ENDPOINT) or None)
        project_id = project_id if project_id is not None else (env.get(ENV_PROJECT_ID) or None)
        if api_key is not None or send:
            check_api_key(api_key or "")
        if send and channel is None:
            if endpoint is None:
                raise ValueError("an endpoint is required (pass endpoint=... or set PUG_ENDPOINT)")
            # Fail now on a bad endpoint; the channel itself opens on first use (fork-friendly).
            parse_endpoint(
                endpoint, allow_insecure=allow_insecure, force_tls=credentials is not None
            )
        if on_error is not None and not callable(on_error):
            raise ValueError("on_error must be callable as on_error(error, events)")
        for name, value in (("timeout", timeout), ("shutdown_timeout", shutdown_timeout)):
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if api_key is not None and api_key.startswith("pub_"):
            _log.warning(
                "API key %s is a public (pub_) key, meant for browsers and apps; server code "
                "should use a private (prv_) key",
                mask(api_key),
            )
        self._api_key = api_key
        self._endpoint = endpoint
        self._project_id = project_id
        self._batch = batch if batch is not None else BatchSettings()
        self._retry = retry if retry is not None else RetrySettings()
        self._report = safe_reporter(on_error)
        self._timeout = float(timeout)
        self._user_channel = channel
        self._credentials = credentials
        self._channel_options = tuple(channel_options)
        self._interceptors = tuple(interceptors)
        self._compression = compression
        self._allow_insecure = allow_insecure
        self._send = send
        self._direct_mode = sync_mode or not send
        self._shutdown_timeout = float(shutdown_timeout)
        self._send_pii = bool(send_pii)
        self._read_retry = read_retry
        self._credentials_interceptor = CredentialsInterceptor(
            api_key=api_key, project_id=project_id
        )
        self._init_process_state()
        self._closed = False
        _live.add(self)

    def _init_process_state(self) -> None:
        """Everything a forked child must rebuild rather than inherit."""
        self._lock = threading.Lock()
        self._channel_lock = threading.Lock()
        self._counters = Counters()
        self._session_id = new_session_id()
        self._worker: Worker | None = None
        self._direct: Delivery | None = None
        self._channel: grpc.Channel | None = None
        self._channel_closed = False

    def __repr__(self) -> str:
        target = self._endpoint if self._user_channel is None else "<caller's channel>"
        return (
            f"Pug(endpoint={target!r}, api_key={mask(self._api_key)!r}, "
            f"project_id={self._project_id!r}, send={self._send})"
        )

    @property
    def session_id(self) -> str:
        """The session id sent with events that do not carry their own (one per process)."""
        return self._session_id

    # -- public API -----------------------------------------------------------------------
    def track(
        self,
        distinct_id: str,
        kind: str | WellKnownEvent,
        properties: Mapping[str, Any] | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        timestamp: Any = None,
        session_id: Any = None,
        event_id: Any = None,
    ) -> None:
        """Queue one event; returns at once. Bad input is logged, counted and reported.

        ``kind`` is a kind string or a typed well-known event from :mod:`pug_grpc.events`;
        a catalogued kind is checked against its schema either way. ``extra`` adds custom
        properties (merged over ``properties``).
        """
        try:
            # The common call (a plain kind seen before, an ASCII id, a dict or nothing, no
            # options) needs only these checks: the full path below gives the same result.
            if (
                type(distinct_id) is str
                and type(kind) is str
                and kind in _plain_kinds
                and (properties is None or type(properties) is dict)
                and extra is None
                and timestamp is None
                and session_id is None
                and event_id is None
                and distinct_id
                and distinct_id.isascii()
                and not distinct_id.startswith(RESERVED_PREFIX)
                and not self._closed
            ):
                plain: RawEvent = (
                    None,
                    kind,
                    distinct_id,
                    self._session_id,
                    time.time_ns(),
                    dict(properties) if properties else None,
                )
                worker = self._worker
                if worker is not None:
                    worker.submit(plain)
                else:
                    self._dispatch_slow(plain)
                return
            if self._closed:
                self._refuse_closed(kind)
                return
            sid = self._session_id if session_id is None else coerce_id(session_id)
            if extra is not None or type(kind) is not str or kind in _CATALOGUED:
                try:
                    kind, properties = self._catalog_properties(kind, properties, extra)
                except (CatalogError, TypeError) as exc:
                    name = kind.KIND if isinstance(kind, WellKnownEvent) else kind
                    self._reject_event(str(exc), event_id, name, distinct_id, sid)
                    return
            if type(distinct_id) is not str:
                distinct_id = coerce_id(distinct_id)  # type: ignore[assignment]
            if event_id is not None:
                event_id = coerce_id(event_id)
            problem = event_problem(distinct_id, kind, sid, event_id)
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
            if (
                type(kind) is str
                and kind not in _CATALOGUED
                and len(_plain_kinds) < _PLAIN_KINDS_LIMIT
            ):
                _plain_kinds.add(kind)  # valid and not catalogued: the fast path may take it
            item: RawEvent = (
                event_id,
                kind,
                distinct_id,
                sid,
                occur,
                dict(properties) if properties else None,
            )  # type: ignore[assignment]
            worker = self._worker
            if worker is not None:
                worker.submit(item)
            else:
                self._dispatch_slow(item)
        except Exception as exc:  # arguments whose own methods raise (hostile input)
            self._reject_unreadable("track", exc)

    def _catalog_properties(
        self,
        kind: str | WellKnownEvent,
        properties: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None,
    ) -> tuple[str, dict[str, Any] | None]:
        """Merge ``extra`` and check a well-known event; raises CatalogError or TypeError."""
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
            fields, rest = properties_of_kind(kind, merged, send_pii=self._send_pii)
            return kind, {**rest, **fields}
        return kind, merged or None

    def identify(
        self,
        external_id: str,
        traits: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | None = None,
        device_id: str | None = None,
    ) -> None:
        """Queue a profile update (delivered in call order with events); never raises."""
        try:
            if self._closed:
                self._refuse_closed("identify")
                return
            external = coerce_id(external_id)
            anonymous = "" if anonymous_id is None else anonymous_id
            device = "" if device_id is None else device_id
            problem = identify_problem(external, anonymous, device)
            if not problem and traits is not None and not isinstance(traits, Mapping):
                problem = f"traits must be a mapping, not {type(traits).__name__}"
            request = profiles_pb2.IdentifyRequest()
            if problem:
                self._reject_identify(problem, external, anonymous, device)
                return
            request.external_id = external  # type: ignore[assignment]
            # Empty fields stay unset: a set empty string is checked by its rules.
            if anonymous:
                request.anonymous_id = anonymous
            if device:
                request.device_id = device
            if traits:
                request.traits.CopyFrom(to_struct(traits))
            worker = self._worker
            if worker is not None:
                worker.submit(request)
            else:
                self._dispatch_slow(request)
        except Exception as exc:  # arguments whose own methods raise (hostile input)
            self._reject_unreadable("identify", exc)

    def alias(self, anonymous_id: str, external_id: str) -> None:
        """Merge the anonymous profile into ``external_id``'s (an ``Identify`` under the hood)."""
        try:
            if not anonymous_id:
                self._reject_identify("alias needs an anonymous_id", external_id, "", "")
                return
        except Exception as exc:  # an anonymous_id whose truth value raises
            self._reject_unreadable("alias", exc)
            return
        self.identify(external_id, anonymous_id=anonymous_id)

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Wait until everything queued before this call is delivered or dead-lettered."""
        worker = self._worker
        if worker is None:
            return FlushResult(completed=True)
        return worker.flush(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop intake, drain (up to ``timeout`` seconds), report the rest, close the channel.

        Idempotent. Items still undelivered at the deadline go to ``on_error`` as
        ``UNDELIVERED``.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            worker = self._worker
        _live.discard(self)
        _running.discard(self)
        try:
            if worker is not None:
                worker.close(timeout, on_abort=self._close_channel)
        finally:
            self._close_channel()

    def stats(self) -> Stats:
        """A snapshot of the counters (see :class:`Stats`)."""
        worker = self._worker
        return self._counters.snapshot(worker.depth if worker is not None else _idle)

    # -- reads (issue 4): profiles / activity / insights over this client's channel ---------
    # Built by pug_grpc._rpc.reads on first use; a pub_ key is refused there before any call.
    def _reads(self) -> Reads:
        reads: Reads | None = getattr(self, "_reads_cache", None)
        if reads is None:
            reads = Reads(
                self._get_channel,
                api_key=self._api_key,
                timeout=self._timeout,
                retry=self._read_retry,
                project_id=self._project_id,
                is_closed=lambda: self._closed,
            )
            self._reads_cache = reads
        return reads

    @property
    def profiles(self) -> Profiles:
        """Read and delete profiles (needs a ``prv_`` key); raises ``PugError``."""
        return self._reads().profiles

    @property
    def activity(self) -> Activity:
        """A user's events, the event explorer and per-user stats; raises ``PugError``."""
        return self._reads().activity

    @property
    def insights(self) -> Insights:
        """Insight queries and segments; raises ``PugError``."""
        return self._reads().insights

    # -- end of reads (issue 4) -------------------------------------------------------------

    def __enter__(self) -> Pug:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------
    def _dispatch_slow(self, item: RawEvent | profiles_pb2.IdentifyRequest) -> None:
        if self._direct_mode:
            delivery = self._direct or self._start_direct()
            with self._counters.lock:
                self._counters.taken += 1
            if isinstance(item, profiles_pb2.IdentifyRequest):
                delivery.deliver_identify(item)
            else:
                delivery.deliver_events([item])
            return
        worker = self._worker or self._start_worker()
        if worker is None:
            self._refuse_closed("event")
            return
        worker.submit(item)

    def _get_channel(self) -> grpc.Channel:
        """The client's one channel, opened on first use (by the worker or by a read)."""
        with self._channel_lock:
            if self._channel is None:
                if self._user_channel is not None:
                    base = self._user_channel
                else:
                    assert self._endpoint is not None
                    base = open_channel(
                        self._endpoint,
                        credentials=self._credentials,
                        channel_options=self._channel_options,
                        allow_insecure=self._allow_insecure,
                    )
                self._channel = intercept(base, self._credentials_interceptor, *self._interceptors)
            return self._channel

    def _sink(self) -> Sink:
        if not self._send:
            return NullSink()
        return GrpcSink(
            self._get_channel(),
            timeout=self._timeout,
            compression=self._compression,
            # Requests go out pre-encoded unless interceptors of the caller's may look at them.
            encoded=not self._interceptors and self._user_channel is None,
        )

    def _start_direct(self) -> Delivery:
        with self._lock:
            if self._direct is None:
                self._direct = Delivery(
                    sink=self._sink(),
                    retry=self._retry,
                    counters=self._counters,
                    report=self._report,
                    max_request_bytes=self._batch.max_request_bytes,
                )
            return self._direct

    def _start_worker(self) -> Worker | None:
        with self._lock:
            if self._closed:
                return None
            if self._worker is None:
                abort = threading.Event()

                def sleep(seconds: float) -> None:
                    abort.wait(seconds)

                delivery = Delivery(
                    sink=self._sink(),
                    retry=self._retry,
                    counters=self._counters,
                    report=self._report,
                    sleep=sleep,
                    should_abort=abort.is_set,
                    max_request_bytes=self._batch.max_request_bytes,
                )
                worker = Worker(
                    delivery=delivery,
                    batch=self._batch,
                    counters=self._counters,
                    report=self._report,
                    abort=abort,
                )
                worker.start()
                self._worker = worker
                _running.add(self)
                _hook_multiprocessing_exit()
            return self._worker

    def _close_channel(self) -> None:
        channel = self._channel
        if channel is None or self._channel_closed or self._user_channel is not None:
            return
        self._channel_closed = True
        try:
            channel.close()
        except Exception:
            _log.debug("closing the channel failed", exc_info=True)

    def _reject(self, error: PugDeliveryError, item: Message) -> None:
        with self._counters.lock:
            self._counters.rejected += 1
        _log.warning("dropped: %s", error.message)
        self._report(error, [item])

    def _reject_event(
        self, problem: str, event_id: object, kind: object, distinct_id: object, sid: object
    ) -> None:
        event = best_effort_event(
            event_id=event_id, kind=kind, distinct_id=distinct_id, session_id=sid, occur_ns=None
        )
        error = PugDeliveryError(
            f"invalid event: {problem}", reason=INVALID_EVENT, code=grpc.StatusCode.INVALID_ARGUMENT
        )
        self._reject(error, event)

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
        self._reject(error, request)

    def _reject_unreadable(self, call: str, exc: Exception) -> None:
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

    def _refuse_closed(self, what: object) -> None:
        with self._counters.lock:
            self._counters.rejected += 1
        _log.warning("%s after close() dropped", what if isinstance(what, str) else "call")
        error = PugDeliveryError(
            "the client is closed", reason=CLIENT_CLOSED, code=grpc.StatusCode.CANCELLED
        )
        self._report(error, ())

    def _after_fork_in_child(self) -> None:
        """Start over in a forked child: the parent's queue, thread and channel stay behind."""
        if self._channel is not None and self._user_channel is None:
            _abandoned_after_fork.append(self._channel)
        keep_user_channel = self._channel if self._user_channel is not None else None
        self._init_process_state()
        self._channel = keep_user_channel


def _after_fork_in_child() -> None:
    _running.clear()  # the parent's threads do not exist here
    for client in list(_live):
        try:
            client._after_fork_in_child()
        except Exception:
            _log.exception("resetting a client after fork failed")


def _idle() -> tuple[int, int]:
    return 0, 0


_multiprocessing_hooked: set[int] = set()
"""Process ids that registered the multiprocessing exit drain."""


def _hook_multiprocessing_exit() -> None:
    """Drain at the exit of a ``multiprocessing`` child too.

    Such a child ends with ``os._exit``, which skips ``atexit``; multiprocessing still runs its
    own exit finalizers there. Registered once per process that starts a worker, only when
    multiprocessing is loaded (it always is in its children). Draining twice is harmless.
    """
    util = sys.modules.get("multiprocessing.util")
    pid = os.getpid()
    if util is None or pid in _multiprocessing_hooked:
        return
    _multiprocessing_hooked.add(pid)
    util.Finalize(None, _close_all_at_exit, exitpriority=100)


def _close_all_at_exit() -> None:
    """Drain every open client at interpreter exit, within one fixed time budget."""
    clients = list(set(_live) | _running)
    if not clients:
        return
    budget = max(c._shutdown_timeout for c in clients)
    deadline = time.monotonic() + budget
    for client in clients:
        try:
            client.close(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:
            _log.exception("closing a client at exit failed")


def _register_process_hooks(register_at_fork: Callable[..., None] = os.register_at_fork) -> None:
    register_at_fork(after_in_child=_after_fork_in_child)
    atexit.register(_close_all_at_exit)


_register_process_hooks()
