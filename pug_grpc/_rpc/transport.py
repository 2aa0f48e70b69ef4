"""The seam between the namespaces and the wire: a method, a transport, and a failed call.

The namespaces build request messages and read reply messages; a :class:`Transport` only moves
one request to one method and brings back the reply (or the pages of a server stream). gRPC
(:class:`GrpcTransport`) and Connect (``pug_grpc._rpc.connect``) are the two implementations, so
request building, retries and error decoding exist once, above this seam. A transport raises
failures in gRPC's shape (``code()``, ``details()``, ``trailing_metadata()``): a real
``grpc.RpcError``, or a :class:`StatusError` made on this side.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

if TYPE_CHECKING:
    from grpc import _CallIterator

__all__ = [
    "GrpcTransport",
    "Metadata",
    "Method",
    "ResponseStream",
    "StatusError",
    "Transport",
    "method",
]

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)
_Out_co = TypeVar("_Out_co", covariant=True)

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Method(Generic[_Req, _Resp]):
    """One RPC: its full path (``/shared.profiles.v1.ProfilesService/Get``) and message types."""

    path: str
    request: type[_Req]
    response: type[_Resp]
    server_streaming: bool = False

    @property
    def service(self) -> str:
        """The full service name (``shared.profiles.v1.ProfilesService``)."""
        return self.path.strip("/").rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        """The method's own name (``Get``)."""
        return self.path.rsplit("/", 1)[1]


def method(
    service: ServiceDescriptor, name: str, request: type[_Req], response: type[_Resp]
) -> Method[_Req, _Resp]:
    """The :class:`Method` ``name`` of ``service``, checked against the generated descriptor.

    A wrong name or message type fails at import, not at the first call.
    """
    found = service.methods_by_name.get(name)
    if found is None:
        raise LookupError(f"{service.full_name} has no method {name}")
    if (found.input_type.full_name, found.output_type.full_name) != (
        request.DESCRIPTOR.full_name,
        response.DESCRIPTOR.full_name,
    ):
        raise TypeError(f"{service.full_name}/{name}: message types do not match the descriptor")
    if found.client_streaming:
        raise TypeError(f"{service.full_name}/{name}: client streaming is not supported")
    return Method(f"/{service.full_name}/{name}", request, response, found.server_streaming)


class StatusError(grpc.RpcError):
    """A failed call in gRPC's shape, made on this side (a Connect reply, a stalled stream).

    ``trailers`` may carry ``grpc-status-details-bin`` (a serialized ``google.rpc.Status``), so
    the one decoder in ``pug_grpc._errors`` reads its details as it reads gRPC's.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        trailers: Sequence[tuple[str, str | bytes]] = (),
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self._code = code
        self._message = message
        self._trailers = tuple(trailers)

    def code(self) -> grpc.StatusCode:
        """The status code."""
        return self._code

    def details(self) -> str:
        """The status message."""
        return self._message

    # The stubs type RpcError's trailers as metadatum objects; grpc itself returns pairs.
    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:  # type: ignore[override]
        """The trailers, including the rich status when there is one."""
        return self._trailers

    def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """No headers are kept: always empty."""
        return ()


class ResponseStream(Iterator[_Out_co], Protocol):
    """The replies of a server-streaming call, in order; ``cancel()`` stops it early."""

    def cancel(self) -> None:
        """Stop the call; later iteration ends or fails at once."""


class Transport(Protocol):
    """Moves requests to methods: what every namespace call goes through.

    ``timeout`` is the call's deadline in seconds (``None``: none). For a server stream it
    bounds the wait for each message, not the whole stream, so a long listing streams to its
    end. ``endpoint`` and ``tls`` describe the connection for error messages (``None`` when
    unknown, e.g. a channel the caller built).
    """

    @property
    def endpoint(self) -> str | None:
        """The endpoint as the user gave it, for messages."""

    @property
    def tls(self) -> bool | None:
        """Whether the connection uses TLS, when known."""

    def unary(
        self,
        method: Method[_Req, _Resp],
        request: _Req,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> _Resp:
        """Send one request and return its reply; raise the failure in gRPC's shape."""

    def server_stream(
        self,
        method: Method[_Req, _Resp],
        request: _Req,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> ResponseStream[_Resp]:
        """Open a server stream; messages and failures arrive as it is iterated."""

    def close(self) -> None:
        """Release what the transport opened itself."""


class _IdleDeadlineStream(Generic[_Resp]):
    """A gRPC stream whose deadline applies to the wait for each message.

    gRPC's own deadline covers the whole call; here a timer cancels the call when one message
    takes longer than ``timeout``, and the cancellation is reported as ``DEADLINE_EXCEEDED``.
    """

    __slots__ = ("_call", "_expired", "_timeout")

    def __init__(self, call: _CallIterator[_Resp], timeout: float | None) -> None:
        self._call = call
        self._timeout = timeout
        self._expired = False

    def __iter__(self) -> _IdleDeadlineStream[_Resp]:
        return self

    def _expire(self) -> None:
        self._expired = True
        self._call.cancel()

    def __next__(self) -> _Resp:
        timer = None
        if self._timeout is not None:
            timer = threading.Timer(self._timeout, self._expire)
            timer.daemon = True
            timer.start()
        try:
            return next(self._call)
        except grpc.RpcError as error:
            if self._expired:
                raise StatusError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no message of the stream within {self._timeout:g} s",
                ) from error
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def cancel(self) -> None:
        self._call.cancel()


class GrpcTransport:
    """The native gRPC transport over one channel (which carries the credentials)."""

    __slots__ = ("_callables", "_channel", "_compression", "_endpoint", "_lock", "_tls")

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        endpoint: str | None = None,
        tls: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> None:
        self._channel = channel
        self._endpoint = endpoint
        self._tls = tls
        self._compression = compression
        self._callables: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def channel(self) -> grpc.Channel:
        """The channel calls go through."""
        return self._channel

    @property
    def endpoint(self) -> str | None:
        """The endpoint as the user gave it, when known."""
        return self._endpoint

    @property
    def tls(self) -> bool | None:
        """Whether the channel uses TLS, when known."""
        return self._tls

    def _callable(self, method: Method[Any, Any]) -> Any:
        found = self._callables.get(method.path)
        if found is None:
            make = (
                self._channel.unary_stream if method.server_streaming else self._channel.unary_unary
            )
            found = make(
                method.path,
                request_serializer=method.request.SerializeToString,
                response_deserializer=method.response.FromString,
            )
            with self._lock:
                self._callables[method.path] = found
        return found

    def unary(
        self,
        method: Method[_Req, _Resp],
        request: _Req,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> _Resp:
        """Send one request and return its reply."""
        reply: _Resp = self._callable(method)(
            request, timeout=timeout, metadata=metadata, compression=self._compression
        )
        return reply

    def server_stream(
        self,
        method: Method[_Req, _Resp],
        request: _Req,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> ResponseStream[_Resp]:
        """Open a server stream with no overall deadline; ``timeout`` bounds each message."""
        call = self._callable(method)(
            request, timeout=None, metadata=metadata, compression=self._compression
        )
        return _IdleDeadlineStream(call, timeout)

    def close(self) -> None:
        """The channel belongs to whoever opened it: nothing to do here."""
