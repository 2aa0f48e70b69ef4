"""The client's connections and what ingestion builds on them: the sink and its storage.

One channel (or Connect transport) per client, opened on first use so a client made before
``fork()`` works in the child, and shared by ingestion and reads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from pug_grpc._credentials import CredentialHeaders
from pug_grpc._diagnosis import diagnose
from pug_grpc._ingest.settings import BatchSettings
from pug_grpc._ingest.sink import ConnectSink, GrpcSink, NullSink, Sink
from pug_grpc._ingest.sqlite_storage import SqliteStorage
from pug_grpc._ingest.storage import GuardedStorage, MemoryStorage, Storage
from pug_grpc._transport import intercept, open_channel

__all__ = [
    "Connections",
    "connect_transport",
    "connection_problem",
    "open_connections",
    "queue_storage",
    "sink_factory",
]

_log = logging.getLogger("pug_grpc.client")

_abandoned_channels: list[object] = []
"""Parent channels a forked child must neither use nor close (closing would touch shared state)."""


class Connections:
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


def connect_transport(
    endpoint: str,
    *,
    credentials: CredentialHeaders,
    allow_insecure: bool,
    root_certificates: bytes | None,
    compression: grpc.Compression | None = None,
) -> Any:
    """A Connect transport to ``endpoint`` (imported late: only ``transport="connect"`` uses it)."""
    from pug_grpc._rpc.connect import ConnectTransport

    return ConnectTransport(
        endpoint,
        credentials=credentials,
        allow_insecure=allow_insecure,
        root_certificates=root_certificates,
        compression=compression,
    )


def open_connections(
    *,
    endpoint: str | None,
    api_key: str | None,
    project_id: str | None,
    channel: grpc.Channel | None,
    credentials: grpc.ChannelCredentials | None,
    channel_options: Sequence[tuple[str, Any]],
    interceptors: Sequence[Any],
    allow_insecure: bool,
    transport: str,
    root_certificates: bytes | None,
    compression: grpc.Compression | None,
    credentials_interceptor: Any,
) -> Connections:
    """The holder of the client's channel (the user's ``channel``, or one to ``endpoint``)."""

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
        assert endpoint is not None
        return connect_transport(
            endpoint,
            credentials=CredentialHeaders(api_key=api_key, project_id=project_id),
            allow_insecure=allow_insecure,
            root_certificates=root_certificates,
            compression=compression,
        )

    return Connections(
        open_base,
        (credentials_interceptor, *interceptors),
        owned=channel is None,
        open_connect=open_connect if transport == "connect" else None,
    )


def queue_storage(storage: Storage | None, settings: BatchSettings) -> Storage | None:
    """Where batches wait: a storage of the user's is guarded (what it raises is reported)."""
    if storage is not None and not isinstance(storage, MemoryStorage | SqliteStorage):
        return GuardedStorage(storage, max_bytes=settings.max_queue_bytes)
    return storage


def sink_factory(
    holder: Connections,
    *,
    send: bool,
    transport: str,
    timeout: float,
    compression: grpc.Compression | None,
    encoded: bool,
    workers: int,
) -> Callable[[], Sink]:
    """How the engine's worker makes its sink: nothing sent, Connect, or gRPC."""

    def make_sink() -> Sink:
        if not send:
            return NullSink()
        if transport == "connect":
            return ConnectSink(holder.connect(), timeout=timeout, workers=workers)
        return GrpcSink(holder.channel(), timeout=timeout, compression=compression, encoded=encoded)

    return make_sink


def connection_problem(
    tls: bool | None, endpoint: str | None
) -> Callable[[BaseException], str | None]:
    """The engine's test for a misconfigured endpoint (HTTP/1.x, TLS mismatch...)."""

    def problem(error: BaseException) -> str | None:
        """A misconfigured endpoint (HTTP/1.x, TLS mismatch...): retrying cannot help."""
        found = diagnose(error, tls=tls, endpoint=endpoint)
        return None if found is None or found.retryable else found.message

    return problem
