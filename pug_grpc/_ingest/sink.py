"""Where requests go: the :class:`Sink` interface, the gRPC sink and the no-op sink.

A sink starts a request and returns at once; the reply arrives later through the ``done``
callback, on whatever thread the transport completes it (gRPC's own polling thread for the
gRPC sink). The worker never blocks on a request, so several are in flight on one channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import grpc

from pug_grpc._ingest.batches import IDENTIFY, Record
from pug_grpc.gen.sdk.events.v1 import events_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

__all__ = ["Call", "ConnectSink", "GrpcSink", "NullSink", "Reply", "Sink"]

_log = logging.getLogger("pug_grpc.sink")

BATCH_CREATE: Final = "/sdk.events.v1.EventsService/BatchCreate"
IDENTIFY_METHOD: Final = "/sdk.profiles.v1.ProfilesSDKService/Identify"


@dataclass(frozen=True, slots=True)
class Reply:
    """The end of one request: the ``BatchCreate`` response (``None`` for ``Identify``), or
    the error it failed with."""

    response: events_pb2.BatchCreateResponse | None = None
    error: BaseException | None = None


class Call(Protocol):
    """A request in flight."""

    def cancel(self) -> bool:
        """Abandon it; its ``done`` callback still runs (with a cancellation error)."""
        ...


class Sink(Protocol):
    """Starts requests; each ends with exactly one call of its ``done`` callback."""

    def start(self, record: Record, done: Callable[[Reply], None]) -> Call:
        """Send ``record`` and return at once (``done`` may run before this returns)."""
        ...


class _Finished:
    """The call of a sink that answers on the spot: nothing left to cancel."""

    def cancel(self) -> bool:
        return False


class NullSink:
    """``send=False``: every request is answered as fully accepted; nothing leaves the process."""

    def start(self, record: Record, done: Callable[[Reply], None]) -> Call:
        if record.kind == IDENTIFY:
            done(Reply())
        else:
            done(Reply(events_pb2.BatchCreateResponse(accepted=record.count)))
        return _Finished()


def _reply(future: Any) -> Reply:
    """The :class:`Reply` of a finished gRPC future."""
    try:
        response = future.result()
    except BaseException as error:  # grpc.RpcError, or a cancellation
        return Reply(error=error)
    if isinstance(response, events_pb2.BatchCreateResponse):
        return Reply(response)
    return Reply()


class GrpcSink:
    """The production sink: unary calls on the client's one channel, as gRPC futures.

    Payloads go out as they are (already the wire form). With ``encoded=False`` (the caller's
    own interceptors may look at requests) they are parsed into messages first.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        timeout: float,
        compression: grpc.Compression | None = None,
        encoded: bool = True,
    ) -> None:
        def method(
            path: str, request: Any, response: Any
        ) -> grpc.UnaryUnaryMultiCallable[Any, Any]:
            return channel.unary_unary(
                path,
                request_serializer=None if encoded else request.SerializeToString,
                response_deserializer=response.FromString,
            )

        self._batch = method(
            BATCH_CREATE, events_pb2.BatchCreateRequest, events_pb2.BatchCreateResponse
        )
        self._identify = method(
            IDENTIFY_METHOD, profiles_pb2.IdentifyRequest, profiles_pb2.IdentifyResponse
        )
        self._encoded = encoded
        self._timeout = timeout
        self._compression = compression

    def _request(self, record: Record) -> Any:
        if self._encoded:
            return record.payload
        if record.kind == IDENTIFY:
            return profiles_pb2.IdentifyRequest.FromString(record.payload)
        return events_pb2.BatchCreateRequest.FromString(record.payload)

    def start(self, record: Record, done: Callable[[Reply], None]) -> Call:
        method = self._identify if record.kind == IDENTIFY else self._batch
        future = method.future(
            self._request(record), timeout=self._timeout, compression=self._compression
        )

        def finished(f: Any) -> None:
            try:
                done(_reply(f))
            except BaseException:  # never let a report escape into gRPC's polling thread
                _log.exception("handling a reply failed")

        future.add_done_callback(finished)
        return future


class ConnectSink:
    """``transport="connect"``: requests over the Connect protocol (HTTP/1.1 or HTTP/2).

    The Connect runtime's calls block, so a fixed pool of ``workers`` threads (one per request
    that may be in flight, started on first use) carries them; the worker thread still owns
    every decision. A request already started cannot be cancelled.
    """

    def __init__(self, transport: Any, *, timeout: float, workers: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from pug_grpc._rpc.transport import method

        self._transport = transport
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pug-grpc-send")
        events = events_pb2.DESCRIPTOR.services_by_name["EventsService"]
        profiles = profiles_pb2.DESCRIPTOR.services_by_name["ProfilesSDKService"]
        self._batch = method(
            events, "BatchCreate", events_pb2.BatchCreateRequest, events_pb2.BatchCreateResponse
        )
        self._identify = method(
            profiles, "Identify", profiles_pb2.IdentifyRequest, profiles_pb2.IdentifyResponse
        )

    def _send(self, record: Record) -> Reply:
        method = self._identify if record.kind == IDENTIFY else self._batch
        try:
            response = self._transport.send_encoded(method, record.payload, timeout=self._timeout)
        except BaseException as error:
            return Reply(error=error)
        return Reply(response if isinstance(response, events_pb2.BatchCreateResponse) else None)

    def start(self, record: Record, done: Callable[[Reply], None]) -> Call:
        future = self._pool.submit(self._send, record)

        def finished(f: Any) -> None:
            try:
                done(f.result() if not f.cancelled() else Reply(error=_Cancelled()))
            except BaseException:
                _log.exception("handling a reply failed")

        future.add_done_callback(finished)
        return future

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Cancelled(grpc.RpcError):
    """A Connect request cancelled before it started."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.CANCELLED

    def details(self) -> str:
        return "cancelled before it was sent"
