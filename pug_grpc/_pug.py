"""The ``Pug`` facade: track, identify, alias, flush, close and stats; reads on the same channel.

The caller's path checks the identity fields, copies the properties and hands a tuple to the
ingestion engine (:mod:`pug_grpc._ingest.engine`); its worker thread encodes, batches, sends
and retries. Nothing here raises on bad input: it is logged under ``pug_grpc``, counted, and
reported to ``on_error``. The option checks live in :mod:`pug_grpc._client_options`, the
channel, sink and queue in :mod:`pug_grpc._connections`.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Literal

import grpc

from pug_grpc._client_options import (
    DEFAULT_RETRY,
    Interceptor,
    check_options,
    check_transport,
    from_env,
    warn_if_public_key,
)
from pug_grpc._connections import (
    connection_problem,
    open_connections,
    queue_storage,
    sink_factory,
)
from pug_grpc._credentials import CredentialsInterceptor, mask
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
from pug_grpc._ingest.storage import Storage
from pug_grpc._names import ENV_API_KEY, ENV_ENDPOINT, ENV_PROJECT_ID, RESERVED_ID_PREFIX
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.reads import Activity, Insights, Profiles, Reads
from pug_grpc._transport import parse_endpoint
from pug_grpc.gen.catalog import WellKnownEvent

__all__ = ["Pug"]


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
        retry: RetrySettings | None = DEFAULT_RETRY,
        on_error: Reporter | None = None,
        timeout: float = 10.0,
        channel: grpc.Channel | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[Interceptor] = (),
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
        api_key = from_env(api_key, ENV_API_KEY)
        endpoint = from_env(endpoint, ENV_ENDPOINT)
        project_id = from_env(project_id, ENV_PROJECT_ID)
        compression = check_options(
            api_key=api_key,
            endpoint=endpoint,
            send=send,
            channel=channel,
            credentials=credentials,
            allow_insecure=allow_insecure,
            on_error=on_error,
            timeout=timeout,
            shutdown_timeout=shutdown_timeout,
            retry=retry,
            read_retry=read_retry,
            storage=storage,
            compression=compression,
            before_send=before_send,
            default_properties=default_properties,
        )
        self._sessions = SessionTracker(max_users=max_session_users)
        credentials = check_transport(
            transport,
            channel=channel,
            credentials=credentials,
            root_certificates=root_certificates,
        )
        warn_if_public_key(api_key)
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
        self._connections = holder = open_connections(
            endpoint=endpoint,
            api_key=api_key,
            project_id=project_id,
            channel=channel,
            credentials=credentials,
            channel_options=channel_options,
            interceptors=interceptors,
            allow_insecure=allow_insecure,
            transport=transport,
            root_certificates=root_certificates,
            compression=compression,
            credentials_interceptor=CredentialsInterceptor(api_key=api_key, project_id=project_id),
        )
        settings = batch if batch is not None else BatchSettings()
        queue = queue_storage(storage, settings)
        self._engine = engine = Engine(
            batch=settings,
            retry=retry,
            report=safe_reporter(on_error),
            make_sink=sink_factory(
                holder,
                send=send,
                transport=transport,
                timeout=self._timeout,
                compression=compression,
                encoded=not interceptors and channel is None,
                workers=settings.max_in_flight,
            ),
            make_storage=None if queue is None else (lambda: queue),
            on_closed=holder.close,
            connection_problem=connection_problem(self._tls, endpoint),
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
