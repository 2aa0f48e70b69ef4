"""The Connect transport: the same calls over the Connect protocol, on HTTP/1.1 or HTTP/2.

Pug's own server port speaks HTTP/1.1 only, which native gRPC cannot use; the Connect protocol
(binary protobuf, one POST per unary call, enveloped frames for a server stream) reaches it
directly, as Pug's Node SDK does. This module adapts the official ``connectrpc`` runtime (the
``pug-grpc[connect]`` extra) to :class:`pug_grpc._rpc.transport.Transport`: the same generated
messages, the same credential headers, deadlines, gzip and receive limit, and errors turned
into gRPC's shape (a code, a message, a ``google.rpc.Status`` trailer) so that one decoder
reads both.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status

from pug_grpc._credentials import CredentialHeaders
from pug_grpc._rpc.transport import Metadata, Method, ResponseStream, StatusError
from pug_grpc._transport import RECEIVE_LIMIT, USER_AGENT, check_compression, parse_endpoint

if TYPE_CHECKING:
    from connectrpc.client import ConnectClientSync
    from connectrpc.errors import ConnectError
    from connectrpc.method import MethodInfo
    from pyqwest import SyncHTTPTransport

__all__ = ["ConnectTransport", "connect_available", "status_error"]

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)

_DETAILS_TRAILER = "grpc-status-details-bin"
_TYPE_PREFIX = "type.googleapis.com/"
_INSTALL_HINT = "transport=\"connect\" needs the connect extra: pip install 'pug-grpc[connect]'"


def connect_available() -> bool:
    """Whether the ``connectrpc`` runtime is installed."""
    try:
        import connectrpc.client  # noqa: F401
    except ImportError:
        return False
    return True


def _grpc_code(code: Any) -> grpc.StatusCode:
    name = getattr(code, "name", "UNKNOWN")
    name = "CANCELLED" if name == "CANCELED" else name
    return grpc.StatusCode.__members__.get(name, grpc.StatusCode.UNKNOWN)


def status_error(error: ConnectError) -> StatusError:
    """A Connect error as a :class:`StatusError`: its details become a rich-status trailer."""
    code = _grpc_code(error.code)
    status = Status(code=code.value[0], message=error.message)
    for detail in error.details:
        status.details.append(
            AnyMessage(type_url=_TYPE_PREFIX + detail.type_name, value=detail.message_bytes)
        )
    trailers: tuple[tuple[str, str | bytes], ...] = ()
    if status.details:
        trailers = ((_DETAILS_TRAILER, status.SerializeToString()),)
    return StatusError(code, error.message, trailers)


class _Codec:
    """Binary protobuf with google.protobuf messages; bytes pass through already encoded."""

    def name(self) -> str:
        return "proto"

    def encode(self, message: Message | bytes) -> bytes:
        if isinstance(message, bytes):
            return message
        return message.SerializeToString()

    def decode(self, data: bytes | bytearray, message_class: type[_Resp]) -> _Resp:
        return message_class.FromString(bytes(data))


class _Stream(Iterator[_Resp]):
    """A Connect server stream; failures arrive as :class:`StatusError`."""

    __slots__ = ("_replies",)

    def __init__(self, replies: Iterator[_Resp]) -> None:
        self._replies = replies

    def __next__(self) -> _Resp:
        from connectrpc.errors import ConnectError

        try:
            return next(self._replies)
        except ConnectError as error:
            raise status_error(error) from error

    def cancel(self) -> None:
        close = getattr(self._replies, "close", None)
        if close is not None:
            close()


class ConnectTransport:
    """Calls over the Connect protocol to ``endpoint`` (same endpoint rules as gRPC's).

    Plaintext HTTP/1.1 reaches Pug's own port; over TLS, HTTP/2 is used when the server offers
    it. TLS trusts the system roots, or only ``root_certificates`` (PEM) when given. The
    credential headers are those of ``credentials``; a header the call's ``metadata`` already
    carries (``x-project-id`` given per call) wins. ``compression`` (gzip or None) applies to
    requests; gzipped replies are always accepted.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        credentials: CredentialHeaders | None = None,
        allow_insecure: bool = False,
        root_certificates: bytes | None = None,
        compression: grpc.Compression | None = None,
        receive_limit: int = RECEIVE_LIMIT,
    ) -> None:
        try:
            from connectrpc.client import ConnectClientSync  # noqa: F401
        except ImportError as exc:
            raise ImportError(_INSTALL_HINT) from exc
        parsed = parse_endpoint(
            endpoint, allow_insecure=allow_insecure, force_tls=root_certificates is not None
        )
        if parsed.target.lower().startswith(("unix:", "unix-abstract:")):
            raise ValueError(f'transport="connect" cannot use the local socket {endpoint!r}')
        self._endpoint = endpoint
        self._tls = parsed.tls
        self._address = ("https://" if parsed.tls else "http://") + parsed.target
        self._credentials = credentials
        self._roots = root_certificates
        self._gzip = check_compression(compression) == grpc.Compression.Gzip
        self._receive_limit = receive_limit
        self._lock = threading.Lock()
        self._http: dict[float | None, SyncHTTPTransport] = {}
        self._clients: dict[float | None, ConnectClientSync] = {}
        self._infos: dict[str, MethodInfo[Any, Any]] = {}

    def __repr__(self) -> str:
        return f"ConnectTransport({self._address!r}, {self._credentials!r})"

    def with_credentials(self, credentials: CredentialHeaders | None) -> ConnectTransport:
        """A transport to the same endpoint, sharing its connections, with other credentials."""
        sibling = copy.copy(self)
        sibling._credentials = credentials
        return sibling

    @property
    def endpoint(self) -> str:
        """The endpoint as given."""
        return self._endpoint

    @property
    def tls(self) -> bool:
        """Whether calls use TLS."""
        return self._tls

    def _client(self, read_timeout: float | None) -> ConnectClientSync:
        """One runtime client per read timeout: streams wait at most that long per read."""
        with self._lock:
            found = self._clients.get(read_timeout)
            if found is not None:
                return found
            from connectrpc.client import ConnectClientSync
            from connectrpc.compression.gzip import GzipCompression
            from pyqwest import SyncClient, SyncHTTPTransport

            http = SyncHTTPTransport(
                tls_ca_cert=self._roots,
                tls_include_system_certs=self._roots is None,
                read_timeout=read_timeout,
                use_system_dns=True,
                follow_redirects=False,
                enable_otel=False,
            )
            client = ConnectClientSync(
                self._address,
                codec=_Codec(),
                send_compression=GzipCompression() if self._gzip else None,
                read_max_bytes=self._receive_limit,
                http_client=SyncClient(http),
            )
            self._http[read_timeout] = http
            self._clients[read_timeout] = client
            return client

    def _info(self, method: Method[Any, Any]) -> MethodInfo[Any, Any]:
        found = self._infos.get(method.path)
        if found is None:
            from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType

            found = MethodInfo(
                name=method.name,
                service_name=method.service,
                input=method.request,
                output=method.response,
                idempotency_level=IdempotencyLevel.UNKNOWN,
                stream_type=StreamType.SERVER_STREAM
                if method.server_streaming
                else StreamType.UNARY,
            )
            self._infos[method.path] = found
        return found

    def _headers(self, metadata: Metadata) -> dict[str, str]:
        pairs = self._credentials.merged(metadata) if self._credentials else metadata
        headers = {key.lower(): value for key, value in pairs}
        headers.setdefault("user-agent", USER_AGENT)
        return headers

    def unary(
        self,
        method: Method[_Req, _Resp],
        request: _Req,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> _Resp:
        """Send one request and return its reply; a Connect error becomes a StatusError."""
        return self._unary(method, request, metadata=metadata, timeout=timeout)

    def send_encoded(
        self,
        method: Method[Any, _Resp],
        body: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None,
    ) -> _Resp:
        """Send a request that is already serialized (ingestion's pre-encoded batches)."""
        return self._unary(method, body, metadata=metadata, timeout=timeout)

    def _unary(
        self,
        method: Method[Any, _Resp],
        request: Message | bytes,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> _Resp:
        from connectrpc.errors import ConnectError

        client = self._client(None)
        try:
            reply: _Resp = client.execute_unary(
                request=request,
                method=self._info(method),
                headers=self._headers(metadata),
                timeout_ms=_millis(timeout),
            )
        except ConnectError as error:
            raise status_error(error) from error
        return reply

    def server_stream(
        self,
        method: Method[_Req, _Resp],
        request: _Req,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> ResponseStream[_Resp]:
        """Open a stream with no overall deadline; ``timeout`` bounds each read."""
        client = self._client(timeout)
        replies = client.execute_server_stream(
            request=request,
            method=self._info(method),
            headers=self._headers(metadata),
            timeout_ms=None,
        )
        return _Stream(replies)

    def close(self) -> None:
        """Close the connections this transport (and its siblings) opened."""
        with self._lock:
            clients = list(self._clients.values())
            pools = list(self._http.values())
            self._clients.clear()
            self._http.clear()
        for client in clients:
            client.close()
        for pool in pools:
            pool.close()


def _millis(timeout: float | None) -> int | None:
    if timeout is None:
        return None
    return max(1, int(timeout * 1000))
