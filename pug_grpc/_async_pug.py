"""``AsyncPug``: the ``Pug`` client for asyncio code, with its reads on ``grpc.aio``.

Ingestion is a :class:`~pug_grpc.Pug` held inside: ``track()``, ``identify()`` and ``alias()``
are that client's own methods (a dictionary lookup and a hand-off to its queue; no event loop
involved), and ``flush()`` / ``aclose()`` wait for its engine from a worker thread, so the
loop keeps running meanwhile. The engine keeps its own thread: events queued before the loop
stalls still go out, the exit and fork hooks drain without a loop, and a ``grpc.aio`` channel
(bound to one loop) could not serve the worker anyway. Reads (``profiles``, ``activity``,
``insights``) are the shared namespaces on an asynchronous context over a ``grpc.aio``
channel of their own, opened inside the running loop on the first call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import grpc
import grpc.aio

from pug_grpc._client_options import DEFAULT_RETRY, Interceptor, from_env
from pug_grpc._connections import connect_transport
from pug_grpc._credentials import CredentialHeaders
from pug_grpc._ingest.hooks import BeforeSend
from pug_grpc._ingest.outcomes import FlushResult
from pug_grpc._ingest.reports import Reporter
from pug_grpc._ingest.sessions import DEFAULT_MAX_USERS
from pug_grpc._ingest.settings import BatchSettings
from pug_grpc._ingest.storage import Storage
from pug_grpc._names import ENV_API_KEY, ENV_ENDPOINT, ENV_PROJECT_ID
from pug_grpc._pug import Pug
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.admin_calls import tls_credentials
from pug_grpc._rpc.aio import AsyncActivity, AsyncInsights, AsyncProfiles, delegated
from pug_grpc._rpc.aio_transport import (
    AioTransport,
    AsyncClosing,
    AsyncTransport,
    LoopChannel,
    ThreadedTransport,
)
from pug_grpc._rpc.reads import Reads
from pug_grpc._transport import open_aio_channel, parse_endpoint

__all__ = ["AsyncPug"]


class AsyncPug(AsyncClosing):
    """:class:`~pug_grpc.Pug` for asyncio: the same constructor, ingestion and reads.

    ``track()``, ``identify()`` and ``alias()`` return at once and never raise, as ``Pug``'s
    do; ``await flush()`` and ``await aclose()`` wait without blocking the loop. Every read is
    a coroutine or an async iterator (``async for profile in apug.profiles.list()``).

    The options are ``Pug``'s, with these asyncio differences: ``channel`` is a
    ``grpc.aio.Channel`` for the reads (ingestion then still opens its own to ``endpoint``);
    ``interceptors`` may mix both kinds: ``grpc.aio`` ones wrap the reads' channel, the
    synchronous ones ingestion's. ``sync_mode=True`` sends inside ``track()`` and so blocks
    the loop: keep it for tests. Use ``async with AsyncPug(...) as apug:`` or
    ``await apug.aclose()``.
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
        channel: grpc.aio.Channel | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[Interceptor | grpc.aio.ClientInterceptor] = (),
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
        aio_interceptors = [i for i in interceptors if isinstance(i, grpc.aio.ClientInterceptor)]
        # Ingestion, and every check of the options, is Pug's own.
        self._core = Pug(
            api_key,
            endpoint,
            project_id,
            batch=batch,
            retry=retry,
            on_error=on_error,
            timeout=timeout,
            credentials=credentials,
            channel_options=channel_options,
            interceptors=[i for i in interceptors if i not in aio_interceptors],  # type: ignore[misc]
            compression=compression,
            allow_insecure=allow_insecure,
            send=send,
            sync_mode=sync_mode,
            shutdown_timeout=shutdown_timeout,
            send_pii=send_pii,
            read_retry=read_retry,
            transport=transport,
            root_certificates=root_certificates,
            storage=storage,
            default_properties=default_properties,
            before_send=before_send,
            strict_catalog=strict_catalog,
            max_session_users=max_session_users,
        )
        self._endpoint = endpoint
        self._closed = False
        headers = CredentialHeaders(api_key=api_key, project_id=project_id)
        tls: bool | None = None
        reads_transport: AsyncTransport
        if transport == "connect":
            assert endpoint is not None
            connect = connect_transport(
                endpoint,
                credentials=headers,
                allow_insecure=allow_insecure,
                root_certificates=root_certificates,
            )
            reads_transport = ThreadedTransport(connect)
        else:
            source: LoopChannel
            if channel is not None:
                source = LoopChannel(channel)
            else:
                target = endpoint
                creds = tls_credentials(credentials, root_certificates)
                if target is not None:
                    tls = parse_endpoint(
                        target, allow_insecure=allow_insecure, force_tls=creds is not None
                    ).tls

                def open_reads_channel() -> grpc.aio.Channel:
                    if target is None:
                        raise ValueError("reads need an endpoint (pass endpoint=... or channel=)")
                    return open_aio_channel(
                        target,
                        credentials=creds,
                        channel_options=channel_options,
                        allow_insecure=allow_insecure,
                        interceptors=aio_interceptors,
                    )

                source = LoopChannel(open_reads_channel)
            shown = endpoint if channel is None else None
            reads_transport = AioTransport(source, credentials=headers, endpoint=shown, tls=tls)
        self._reads_transport = reads_transport
        self._reads = Reads(
            reads_transport,
            api_key=api_key,
            timeout=float(timeout),
            retry=read_retry,
            project_id=project_id,
            is_closed=lambda: self._closed,
            endpoint=endpoint,
            tls=tls,
            asynchronous=True,
        )
        self._namespaces: tuple[AsyncProfiles, AsyncActivity, AsyncInsights] | None = None

    def __repr__(self) -> str:
        return f"Async{self._core!r}"

    # -- ingestion: Pug's own methods ------------------------------------------------------

    track = delegated(Pug.track)
    identify = delegated(Pug.identify)
    alias = delegated(Pug.alias)
    stats = delegated(Pug.stats)
    session_for = delegated(Pug.session_for)
    context = delegated(Pug.context)

    async def flush(self, timeout: float | None = None) -> FlushResult:
        """:meth:`Pug.flush`, awaited: the engine is waited for in a thread, not on the loop.

        Reports every item enqueued since the previous ``flush()`` returned, each once.
        """
        return await asyncio.to_thread(self._core.flush, timeout)

    async def aclose(self, timeout: float | None = 5.0) -> None:
        """:meth:`Pug.close`, awaited (the drain runs in a thread), then the reads' channel."""
        self._closed = True
        try:
            await asyncio.to_thread(self._core.close, timeout)
        finally:
            await self._reads_transport.close()

    # -- reads -----------------------------------------------------------------------------

    def _read_namespaces(self) -> tuple[AsyncProfiles, AsyncActivity, AsyncInsights]:
        found = self._namespaces
        if found is None:
            reads = self._reads
            found = (
                AsyncProfiles(reads.profiles),
                AsyncActivity(reads.activity),
                AsyncInsights(reads.insights),
            )
            self._namespaces = found
        return found

    @property
    def profiles(self) -> AsyncProfiles:
        """Read and delete profiles (needs a ``prv_`` key); raises ``PugError``."""
        return self._read_namespaces()[0]

    @property
    def activity(self) -> AsyncActivity:
        """A user's events, the event explorer and per-user stats; raises ``PugError``."""
        return self._read_namespaces()[1]

    @property
    def insights(self) -> AsyncInsights:
        """Insight queries and segments; raises ``PugError``."""
        return self._read_namespaces()[2]
