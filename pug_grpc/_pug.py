"""The ``Pug`` facade: track, identify, alias, flush, close and stats; reads on the same channel.

The caller's path checks the identity fields, copies the properties and hands a tuple to the
ingestion engine (:mod:`pug_grpc._ingest.engine`); its worker thread encodes, batches, sends
and retries. Nothing here raises on bad input: it is logged under ``pug_grpc``, counted, and
reported to ``on_error``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Final, Literal

import grpc

from pug_grpc._credentials import CredentialsInterceptor, check_api_key, mask
from pug_grpc._diagnosis import diagnose
from pug_grpc._ingest import process
from pug_grpc._ingest.context import RequestContext, current_context, request_context
from pug_grpc._ingest.engine import Engine
from pug_grpc._ingest.hooks import BeforeSend
from pug_grpc._ingest.intake import Intake, plain_kinds, warm_up
from pug_grpc._ingest.messages import RawEvent
from pug_grpc._ingest.outcomes import FlushResult, Stats
from pug_grpc._ingest.properties import checked_properties
from pug_grpc._ingest.reports import Reporter, safe_reporter
from pug_grpc._ingest.sessions import DEFAULT_MAX_USERS, SessionTracker
from pug_grpc._ingest.settings import BatchSettings
from pug_grpc._ingest.sink import ConnectSink, GrpcSink, NullSink, Sink
from pug_grpc._ingest.sqlite_storage import SqliteStorage
from pug_grpc._ingest.storage import GuardedStorage, MemoryStorage, Storage
from pug_grpc._names import (
    ENV_API_KEY,
    ENV_ENDPOINT,
    ENV_PROJECT_ID,
    RESERVED_ID_PREFIX,
    is_public_key,
)
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.reads import Activity, Insights, Profiles, Reads
from pug_grpc._transport import check_compression, intercept, open_channel, parse_endpoint
from pug_grpc.gen.catalog import WellKnownEvent

__all__ = ["Pug"]

_log = logging.getLogger("pug_grpc.client")

_Interceptor = (
    grpc.UnaryUnaryClientInterceptor
    | grpc.UnaryStreamClientInterceptor
    | grpc.StreamUnaryClientInterceptor
    | grpc.StreamStreamClientInterceptor
)

_DEFAULT_RETRY: Final = RetrySettings()
_abandoned_channels: list[object] = []
"""Parent channels a forked child must neither use nor close (closing would touch shared state)."""


class _Connections:
    """The client's one channel (or Connect transport), opened on first use, shared by
    ingestion and reads. The engine holds this, never the ``Pug``: a client dropped without
    ``close()`` can then be collected while its engine drains."""

    def __init__(
        self,
        open_base: Callable[[], grpc.Channel],
        interceptors: tuple[Any, ...],
        *,
        owned: bool,
        open_connect: Callable[[], Any] | None,
    ) -> None:
        self._open_base = open_base
        self._interceptors = interceptors
        self._owned = owned
        self._open_connect = open_connect
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._connect: Any = None

    def channel(self) -> grpc.Channel:
        with self._lock:
            if self._channel is None:
                self._channel = intercept(self._open_base(), *self._interceptors)
            return self._channel

    def connect(self) -> Any:
        """The Connect transport (``transport="connect"``)."""
        assert self._open_connect is not None
        with self._lock:
            if self._connect is None:
                self._connect = self._open_connect()
            return self._connect

    def close(self) -> None:
        with self._lock:
            channel, self._channel = self._channel, None
            connect, self._connect = self._connect, None
        for closing in (channel if self._owned else None, connect):
            if closing is not None:
                try:
                    closing.close()
                except Exception:
                    _log.debug("closing a connection failed", exc_info=True)

    def abandon_after_fork(self) -> None:
        """A forked child: never use nor close the parent's connections; open new ones."""
        self._lock = threading.Lock()
        if self._channel is not None and self._owned:
            _abandoned_channels.append(self._channel)
            self._channel = None
        if self._connect is not None:
            _abandoned_channels.append(self._connect)
            self._connect = None


class Pug:
    """Send events and profile updates to Pug, in the background, without ever raising.

    ``api_key``, ``endpoint`` and ``project_id`` fall back to ``PUG_API_KEY``, ``PUG_ENDPOINT``
    and ``PUG_PROJECT_ID``. See docs/ingestion.md for every option and docs/guarantees.md for
    what happens to each event. ``storage`` (default: in memory, bounded by
    ``batch.max_queue_bytes``) is where batches wait; ``SqliteStorage`` keeps them on disk
    across restarts (docs/storage.md).
    """

    def __init__(
        self,
        api_key: str | None = None,
        endpoint: str | None = None,
        project_id: str | None = None,
        *,
        batch: BatchSettings | None = None,
        retry: RetrySettings | None = _DEFAULT_RETRY,
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
        read_retry: RetrySettings | None = None,
        transport: Literal["grpc", "connect"] = "grpc",
        root_certificates: bytes | None = None,
        storage: Storage | None = None,
        default_properties: Mapping[str, Any] | None = None,
        before_send: BeforeSend | None = None,
        strict_catalog: bool = False,
        max_session_users: int = DEFAULT_MAX_USERS,
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
        for name, given in (("retry", retry), ("read_retry", read_retry)):
            if given is not None and not isinstance(given, RetrySettings):
                raise ValueError(f"{name} must be a RetrySettings, or None to turn retries off")
        if storage is not None and not isinstance(storage, Storage):
            raise ValueError("storage must be a pug_grpc.Storage (MemoryStorage, SqliteStorage...)")
        compression = check_compression(compression)
        if before_send is not None and not callable(before_send):
            raise ValueError("before_send must be callable as before_send(event)")
        if default_properties is not None and not isinstance(default_properties, Mapping):
            raise ValueError("default_properties must be a mapping")
        self._sessions = SessionTracker(max_users=max_session_users)
        if transport not in ("grpc", "connect"):
            raise ValueError(f'transport must be "grpc" or "connect", not {transport!r}')
        if transport == "connect" and (channel is not None or credentials is not None):
            raise ValueError(
                'transport="connect" takes no grpc channel or credentials '
                "(pass root_certificates= for a private certificate authority)"
            )
        if root_certificates is not None and credentials is None and transport == "grpc":
            credentials = grpc.ssl_channel_credentials(root_certificates)
        if is_public_key(api_key):
            _log.warning(
                "API key %s is a public (pub_) key, meant for browsers and apps; server code "
                "should use a private (prv_) key",
                mask(api_key),
            )
        self._api_key = api_key
        self._endpoint = endpoint
        self._project_id = project_id
        self._timeout = float(timeout)
        self._read_retry = read_retry
        self._transport = transport
        self._allow_insecure = allow_insecure
        self._root_certificates = root_certificates
        self._compression = compression
        self._tls = (
            parse_endpoint(
                endpoint, allow_insecure=allow_insecure, force_tls=credentials is not None
            ).tls
            if endpoint is not None and channel is None
            else None
        )
        self._closed = False
        credentials_interceptor = CredentialsInterceptor(api_key=api_key, project_id=project_id)

        def open_base() -> grpc.Channel:
            if channel is not None:
                return channel
            assert endpoint is not None
            return open_channel(
                endpoint,
                credentials=credentials,
                channel_options=channel_options,
                allow_insecure=allow_insecure,
            )

        def open_connect() -> Any:
            from pug_grpc._credentials import CredentialHeaders
            from pug_grpc._rpc.connect import ConnectTransport

            assert endpoint is not None
            return ConnectTransport(
                endpoint,
                credentials=CredentialHeaders(api_key=api_key, project_id=project_id),
                allow_insecure=allow_insecure,
                root_certificates=root_certificates,
                compression=compression,
            )

        self._connections = holder = _Connections(
            open_base,
            (credentials_interceptor, *interceptors),
            owned=channel is None,
            open_connect=open_connect if transport == "connect" else None,
        )
        timeout_s = self._timeout
        encoded = not interceptors and channel is None

        settings = batch if batch is not None else BatchSettings()
        queue: Storage | None = storage
        if storage is not None and not isinstance(storage, MemoryStorage | SqliteStorage):
            # a storage of the user's: what it raises is reported, not fatal
            queue = GuardedStorage(storage, max_bytes=settings.max_queue_bytes)

        def make_sink() -> Sink:
            if not send:
                return NullSink()
            if transport == "connect":
                return ConnectSink(
                    holder.connect(), timeout=timeout_s, workers=settings.max_in_flight
                )
            return GrpcSink(
                holder.channel(), timeout=timeout_s, compression=compression, encoded=encoded
            )

        tls = self._tls
        shown = endpoint

        def connection_problem(error: BaseException) -> str | None:
            """A misconfigured endpoint (HTTP/1.x, TLS mismatch...): retrying cannot help."""
            found = diagnose(error, tls=tls, endpoint=shown)
            return None if found is None or found.retryable else found.message

        self._engine = engine = Engine(
            batch=settings,
            retry=retry,
            report=safe_reporter(on_error),
            make_sink=make_sink,
            make_storage=None if queue is None else (lambda: queue),
            on_closed=holder.close,
            connection_problem=connection_problem,
            threaded=not sync_mode,
            on_start=process.engine_started,
            shutdown_timeout=float(shutdown_timeout),
        )
        self._intake = Intake(
            engine,
            sessions=self._sessions,
            send_pii=bool(send_pii),
            strict_catalog=bool(strict_catalog),
            default_properties=checked_properties(default_properties or {}),
            before_send=before_send,
        )
        self._plain = self._intake.plain
        # Dropped without close(): the engine still drains, then its thread ends.
        finalizer = weakref.finalize(self, engine.close, float(shutdown_timeout), wait=False)
        finalizer.atexit = False  # the exit hook drains with its own budget
        process.on_fork_in_child(self._after_fork_in_child)
        warm_up()
        if storage is not None and storage.persistent:
            engine.start()  # what an earlier process left goes out without waiting for a call

    def __repr__(self) -> str:
        return (
            f"Pug(endpoint={self._endpoint!r}, api_key={mask(self._api_key)!r}, "
            f"project_id={self._project_id!r}, phase={self._engine.phase.value})"
        )

    def session_for(self, distinct_id: str) -> str | None:
        """The session id this user's events carry now (``None`` before their first event).

        Sessions are per ``distinct_id``, renewed after 30 minutes without an event of the
        user (see docs/context.md); a per-call or request context ``session_id`` wins.
        """
        return self._sessions.peek(distinct_id)

    def context(
        self,
        *,
        url: str | None = None,
        referrer: str | None = None,
        user_agent: str | None = None,
        locale: str | None = None,
        page_title: str | None = None,
        session_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> AbstractContextManager[RequestContext]:
        """``with pug.context(url=..., user_agent=...):`` events tracked inside carry them.

        The end user's request context as ``$url``, ``$referrer``, ``$locale``,
        ``$pageTitle`` and the browser parsed from ``user_agent`` (with the ``useragent``
        extra), plus custom ``properties`` and a ``session_id``. It follows asyncio tasks and
        copied contexts, applies to every client in the process, and nested contexts merge
        (inner values win; ``""`` clears one). Never raises. See docs/context.md.
        """
        return request_context(
            url=url,
            referrer=referrer,
            user_agent=user_agent,
            locale=locale,
            page_title=page_title,
            session_id=session_id,
            properties=properties,
        )

    # -- ingestion ------------------------------------------------------------------------
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
            # The common call needs only these checks: the full path gives the same result.
            if (
                type(distinct_id) is str
                and type(kind) is str
                and kind in plain_kinds
                and (properties is None or type(properties) is dict)
                and extra is None
                and timestamp is None
                and session_id is None
                and event_id is None
                and self._plain
                and distinct_id
                and distinct_id.isascii()
                and not distinct_id.startswith(RESERVED_ID_PREFIX)
                and current_context() is None
                and self._engine.accepting
            ):
                now = time.time_ns()
                item: RawEvent = (
                    None,
                    kind,
                    distinct_id,
                    self._sessions.session_for(distinct_id, now),
                    now,
                    dict(properties) if properties else None,
                )
                self._engine.submit(item)
                return
        except Exception as exc:  # arguments whose own methods raise (hostile input)
            self._intake.reject_unreadable("track", exc)
            return
        self._intake.event(distinct_id, kind, properties, extra, timestamp, session_id, event_id)

    def identify(
        self,
        external_id: str,
        traits: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | None = None,
        device_id: str | None = None,
    ) -> None:
        """Queue a profile update; returns at once and never raises.

        The server applies identify calls and events in no particular order (up to 100
        workers apply identifies concurrently), so none is promised here either.
        """
        self._intake.identify(external_id, traits, anonymous_id, device_id)

    def alias(self, anonymous_id: str, external_id: str) -> None:
        """Merge the anonymous profile into ``external_id``'s (an ``Identify`` under the hood)."""
        self._intake.alias(anonymous_id, external_id)

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Wait until everything enqueued so far has an outcome, and say what happened to it.

        Reports every item enqueued since the previous ``flush()`` returned, each once.
        ``timeout`` (seconds, ``None``: until done) bounds the wait: the result then says how
        many are still ``pending`` (a later flush reports them).
        """
        return self._engine.flush(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop intake, send what is queued (up to ``timeout`` seconds), report the rest.

        Idempotent; concurrent calls wait for the same drain. Items never sent by the deadline
        are reported as ``UNDELIVERED``, items sent without a reply as ``UNCONFIRMED``. Called
        from ``on_error`` it starts the shutdown and returns at once.
        """
        self._closed = True
        self._engine.close(timeout)
        if self._engine.phase.value == "closed":
            self._connections.close()

    def stats(self) -> Stats:
        """A snapshot of the counters (see :class:`Stats`); they add up at every instant."""
        stats = self._engine.stats()
        mismatches = self._intake.catalog_mismatches()
        return dataclasses.replace(
            stats,
            catalog_mismatches=sum(mismatches.values()),
            catalog_mismatches_by_rule=mismatches,
            filtered=self._intake.filtered,
        )

    # -- reads: profiles / activity / insights over this client's channel ------------------
    def _reads(self) -> Reads:
        reads: Reads | None = getattr(self, "_reads_cache", None)
        if reads is None:
            source: Any = (
                self._connections.connect()
                if self._transport == "connect"
                else self._connections.channel
            )
            reads = Reads(
                source,
                api_key=self._api_key,
                timeout=self._timeout,
                retry=self._read_retry,
                project_id=self._project_id,
                is_closed=lambda: self._closed,
                endpoint=self._endpoint,
                tls=self._tls,
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

    def __enter__(self) -> Pug:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _after_fork_in_child(self) -> None:
        """Start over in a forked child: new session ids and, on first use, a new channel."""
        self._sessions.reset()
        self._intake.reset_counters()
        self._connections.abandon_after_fork()
        self.__dict__.pop("_reads_cache", None)
