"""The asyncio side of the transport seam: ``grpc.aio``, and blocking transports run in threads.

:class:`AsyncTransport` is :class:`~pug_grpc._rpc.transport.Transport` with coroutines: one
request to one method, the reply back, failures in gRPC's shape, so the asyncio call path
decodes them with the same :func:`~pug_grpc._errors.error_from_rpc`. :class:`AioTransport`
speaks native gRPC through ``grpc.aio``; its channel is opened inside the running event loop
on the first call (a ``grpc.aio`` channel belongs to the loop that made it), and a call from
another loop is refused with a clear error rather than failing deep inside gRPC.
:class:`ThreadedTransport` drives a blocking transport (Connect) from worker threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message

from pug_grpc._credentials import CredentialHeaders
from pug_grpc._errors import PugError
from pug_grpc._rpc.transport import Metadata, Method, ResponseStream, StatusError, Transport

__all__ = [
    "AioTransport",
    "AsyncClosing",
    "AsyncResponseStream",
    "AsyncTransport",
    "LoopChannel",
    "ThreadedTransport",
    "running_loop",
]

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)
_Out_co = TypeVar("_Out_co", covariant=True)

ChannelOpener = Callable[[], grpc.aio.Channel]


class AsyncClosing:
    """``async with`` for a client with ``aclose()``: the block's end closes it."""

    async def aclose(self) -> None:
        """Close the client."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def running_loop(what: str) -> asyncio.AbstractEventLoop:
    """The running loop, or a :class:`PugError` saying that ``what`` must be awaited in one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise PugError.client_side(
            f"{what} runs inside an asyncio event loop: await it from a coroutine",
            reason="NO_EVENT_LOOP",
        ) from None


class AsyncResponseStream(Protocol[_Out_co]):
    """The replies of a server-streaming call, in order; ``cancel()`` stops it early."""

    def __aiter__(self) -> AsyncIterator[_Out_co]:
        """The stream itself."""

    async def __anext__(self) -> _Out_co:
        """The next reply; ``StopAsyncIteration`` at the end."""

    def cancel(self) -> None:
        """Stop the call; later iteration ends or fails at once."""


class AsyncTransport(Protocol):
    """:class:`~pug_grpc._rpc.transport.Transport` for coroutines (the same rules apply)."""

    @property
    def endpoint(self) -> str | None:
        """The endpoint as the user gave it, for messages."""

    @property
    def tls(self) -> bool | None:
        """Whether the connection uses TLS, when known."""

    async def unary(
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
    ) -> AsyncResponseStream[_Resp]:
        """Open a server stream; messages and failures arrive as it is iterated."""

    async def close(self) -> None:
        """Release what the transport opened itself."""


class _IdleDeadlineStream(AsyncIterator[_Resp]):
    """A ``grpc.aio`` stream whose deadline applies to the wait for each message.

    As on the blocking side, a message later than ``timeout`` cancels the call and is
    reported as ``DEADLINE_EXCEEDED``; the stream as a whole has no deadline.
    """

    __slots__ = ("_call", "_timeout")

    def __init__(self, call: grpc.aio.UnaryStreamCall[Any, _Resp], timeout: float | None) -> None:
        self._call = call
        self._timeout = timeout

    async def __anext__(self) -> _Resp:
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._call.read()
        except TimeoutError:
            self._call.cancel()
            await self._call.code()  # the call's own status, CANCELLED at once: nothing left
            raise StatusError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no message of the stream within {self._timeout:g} s",
            ) from None
        if reply is grpc.aio.EOF:
            raise StopAsyncIteration
        message: _Resp = reply  # type: ignore[assignment]
        return message

    def cancel(self) -> None:
        self._call.cancel()


class LoopChannel:
    """A ``grpc.aio`` channel opened on first use inside the running loop, and only used there.

    ``channel`` is either a channel the caller made (used as is, never closed here) or a
    function that opens one (called once, inside the loop; :meth:`close` closes it).
    """

    __slots__ = ("_channel", "_loop", "_opener")

    def __init__(self, channel: grpc.aio.Channel | ChannelOpener) -> None:
        self._opener: ChannelOpener | None = None
        self._channel: grpc.aio.Channel | None = None
        if isinstance(channel, grpc.aio.Channel):
            self._channel = channel
        else:
            self._opener = channel
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> grpc.aio.Channel:
        """The channel, opened now when it is ours and not open yet."""
        loop = running_loop("a call of the asyncio client")
        if self._opener is None:
            assert self._channel is not None
            return self._channel
        if self._channel is None:
            self._channel = self._opener()
            self._loop = loop
        elif loop is not self._loop:
            raise PugError.client_side(
                "this asyncio client opened its channel in another event loop, and a grpc.aio "
                "channel serves only the loop that made it: make one client per event loop",
                reason="OTHER_EVENT_LOOP",
            )
        return self._channel

    async def close(self) -> None:
        """Close the channel when it is ours (a caller's channel stays open)."""
        channel = self._channel
        if self._opener is not None and channel is not None:
            self._channel = None
            await channel.close()


class AioTransport:
    """Native gRPC over one ``grpc.aio`` channel (a :class:`LoopChannel`).

    ``credentials`` are merged into every call's metadata, as the Connect transport does, so a
    caller's own channel needs no interceptor; :meth:`with_credentials` makes a sibling on the
    same channel (the public and the signed-in calls of an admin client).
    """

    __slots__ = ("_callables", "_channel", "_compression", "_credentials", "_endpoint", "_tls")

    def __init__(
        self,
        channel: LoopChannel,
        *,
        credentials: CredentialHeaders | None = None,
        endpoint: str | None = None,
        tls: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> None:
        self._channel = channel
        self._credentials = credentials
        self._endpoint = endpoint
        self._tls = tls
        self._compression = compression
        self._callables: dict[str, Any] = {}

    @property
    def loop_channel(self) -> LoopChannel:
        """The channel calls go through."""
        return self._channel

    def with_credentials(self, credentials: CredentialHeaders | None) -> AioTransport:
        """A transport on the same channel with other credentials."""
        return AioTransport(
            self._channel,
            credentials=credentials,
            endpoint=self._endpoint,
            tls=self._tls,
            compression=self._compression,
        )

    @property
    def endpoint(self) -> str | None:
        """The endpoint as the user gave it, when known."""
        return self._endpoint

    @property
    def tls(self) -> bool | None:
        """Whether the channel uses TLS, when known."""
        return self._tls

    def _callable(self, method: Method[Any, Any]) -> Any:
        channel = self._channel.get()
        found = self._callables.get(method.path)
        if found is None:
            make = channel.unary_stream if method.server_streaming else channel.unary_unary
            found = make(
                method.path,
                request_serializer=method.request.SerializeToString,
                response_deserializer=method.response.FromString,
            )
            self._callables[method.path] = found
        return found

    def _metadata(self, metadata: Metadata) -> Metadata:
        return self._credentials.merged(metadata) if self._credentials else metadata

    async def unary(
        self,
        method: Method[_Req, _Resp],
        request: _Req,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> _Resp:
        """Send one request and return its reply; cancelling the awaiting task cancels the call."""
        call = self._callable(method)(
            request,
            timeout=timeout,
            metadata=self._metadata(metadata),
            compression=self._compression,
        )
        reply: _Resp = await call
        return reply

    def server_stream(
        self,
        method: Method[_Req, _Resp],
        request: _Req,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> AsyncResponseStream[_Resp]:
        """Open a server stream with no overall deadline; ``timeout`` bounds each message."""
        call = self._callable(method)(
            request, timeout=None, metadata=self._metadata(metadata), compression=self._compression
        )
        return _IdleDeadlineStream(call, timeout)

    async def close(self) -> None:
        """Close the channel when it is ours (a caller's channel stays open)."""
        self._callables.clear()
        await self._channel.close()


class _ThreadedStream(AsyncIterator[_Resp]):
    """A blocking stream read from a worker thread, one message per ``await``."""

    __slots__ = ("_open", "_stream")

    def __init__(self, open_stream: Callable[[], ResponseStream[_Resp]]) -> None:
        self._open = open_stream
        self._stream: ResponseStream[_Resp] | None = None

    def _next(self) -> _Resp | None:
        if self._stream is None:
            self._stream = self._open()
        return next(self._stream, None)

    async def __anext__(self) -> _Resp:
        reply = await asyncio.to_thread(self._next)
        if reply is None:
            raise StopAsyncIteration
        return reply

    def cancel(self) -> None:
        if self._stream is not None:
            self._stream.cancel()


class ThreadedTransport:
    """A blocking :class:`~pug_grpc._rpc.transport.Transport` driven from asyncio in threads.

    Used for ``transport="connect"``, whose runtime is blocking: each call runs in the loop's
    default executor, so the loop never waits on the network. A cancelled call returns at once
    to the awaiting task, but its thread finishes the request in the background (bounded by
    the call's deadline).
    """

    __slots__ = ("_sync",)

    def __init__(self, sync: Transport) -> None:
        self._sync = sync

    @property
    def endpoint(self) -> str | None:
        """The endpoint as the user gave it."""
        return self._sync.endpoint

    @property
    def tls(self) -> bool | None:
        """Whether calls use TLS."""
        return self._sync.tls

    async def unary(
        self,
        method: Method[_Req, _Resp],
        request: _Req,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> _Resp:
        """Send one request from a worker thread."""
        return await asyncio.to_thread(
            self._sync.unary, method, request, metadata=metadata, timeout=timeout
        )

    def server_stream(
        self,
        method: Method[_Req, _Resp],
        request: _Req,
        *,
        metadata: Metadata,
        timeout: float | None,
    ) -> AsyncResponseStream[_Resp]:
        """Open the stream (in a thread, on the first read); each message is read in a thread."""

        def open_stream() -> ResponseStream[_Resp]:
            return self._sync.server_stream(method, request, metadata=metadata, timeout=timeout)

        return _ThreadedStream(open_stream)

    async def close(self) -> None:
        """Close the blocking transport's connections."""
        await asyncio.to_thread(self._sync.close)
