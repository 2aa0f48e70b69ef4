"""The read server of tests/support/read_servers.py, served over the Connect protocol instead.

An independent server: the official ``connectrpc`` server runtime (a WSGI application) on
``waitress``, which speaks HTTP/1.1 only, as Pug's own port does. Every method of every service
routes to the same :class:`ReadServer` state the gRPC tests use, through a small stand-in for
``grpc.ServicerContext``: the scripted faults (rich ``google.rpc.Status`` values) leave as
Connect errors with their details, so the client's error decoding is tested end to end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import protobuf.wkt
import waitress.server
from connectrpc.code import Code
from connectrpc.compat import google_protobuf_binary_codec
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import ConnectWSGIApplication, EndpointSync
from google.protobuf import message_factory
from google.rpc.status_pb2 import Status

from tests.support.clock import FakeClock
from tests.support.read_servers import (
    EPOCH_START,
    SERVICES,
    ReadServer,
    Running,
    _AbortError,
    _service_descriptor,
    rich_status,
)

_DETAILS = "grpc-status-details-bin"


def connect_error(
    code: grpc.StatusCode, message: str, status: Status | None = None
) -> ConnectError:
    """A Connect error carrying the details of a ``google.rpc.Status``, as Pug sends them."""
    name = "CANCELED" if code == grpc.StatusCode.CANCELLED else code.name
    details = [
        ErrorDetail(protobuf.wkt.Any(type_url=d.type_url, value=d.value))
        for d in (status.details if status is not None else ())
    ]
    return ConnectError(Code[name], message, details)


class _Context:
    """The part of ``grpc.ServicerContext`` that ReadServer uses, over a Connect request."""

    def __init__(self, ctx: RequestContext[Any, Any]) -> None:
        self._ctx = ctx

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._ctx.request_headers.allitems())

    def time_remaining(self) -> float | None:
        remaining = self._ctx.timeout_ms
        return None if remaining is None else remaining / 1000.0

    def abort_with_status(self, status: grpc.Status) -> NoReturn:
        rich = None
        for key, value in status.trailing_metadata or ():
            if key == _DETAILS and isinstance(value, bytes):
                rich = Status.FromString(value)
        raise connect_error(status.code, status.details or "", rich)

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise connect_error(code, details)


class _App(ConnectWSGIApplication):
    @property
    def path(self) -> str:
        return ""


def _unary(handle: Callable[..., Any]) -> Callable[[Any, RequestContext[Any, Any]], Any]:
    def call(request: Any, ctx: RequestContext[Any, Any]) -> Any:
        try:
            return handle(request, _Context(ctx))
        except _AbortError as abort:
            raise connect_error(
                abort.code, str(abort), rich_status(abort.code, str(abort), reason="TOKEN")
            ) from None

    return call


def endpoints(state: ReadServer) -> Mapping[str, EndpointSync[Any, Any]]:
    """One Connect endpoint per method of every service in ``SERVICES``."""
    found: dict[str, EndpointSync[Any, Any]] = {}
    for module, service in SERVICES:
        descriptor = _service_descriptor(module, service)
        for method in descriptor.methods:
            path = f"/{descriptor.full_name}/{method.name}"
            output = message_factory.GetMessageClass(method.output_type)
            info = MethodInfo(
                name=method.name,
                service_name=descriptor.full_name,
                input=message_factory.GetMessageClass(method.input_type),
                output=output,
                idempotency_level=IdempotencyLevel.UNKNOWN,
                stream_type=StreamType.SERVER_STREAM
                if method.server_streaming
                else StreamType.UNARY,
            )
            if method.server_streaming:

                def stream(request: Any, ctx: RequestContext[Any, Any]) -> Iterator[Any]:
                    return state.profiles_list(request, _Context(ctx))  # type: ignore[arg-type]

                found[path] = EndpointSync.server_stream(method=info, function=stream)
            else:
                found[path] = EndpointSync.unary(
                    method=info, function=_unary(state.unary(path, output))
                )
    return found


@dataclass
class ConnectRunning(Running):
    """A :class:`Running` whose port speaks Connect over HTTP/1.1."""

    transport: str = "connect"


@contextmanager
def serve_endpoints(found: Mapping[str, EndpointSync[Any, Any]]) -> Iterator[int]:
    """Serve ``found`` as one Connect WSGI application on waitress (HTTP/1.1); yield the port.

    Waitress sends each streamed message as the application yields it, as Pug's server does.
    """
    app = _App(endpoints=found, codecs=[google_protobuf_binary_codec()])
    server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, name="connect-server", daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)  # type: ignore[union-attr]
    finally:
        server.close()
        for channel in list(server._map.values()):  # clients' kept-alive connections
            channel.close()
        thread.join(timeout=10)


@contextmanager
def serve_connect() -> Iterator[ConnectRunning]:
    """Serve every read/admin service over Connect on 127.0.0.1 port 0 for the block."""
    clock = FakeClock(EPOCH_START)
    state = ReadServer(now=clock)
    with serve_endpoints(endpoints(state)) as port:
        yield ConnectRunning(state, port, clock)
