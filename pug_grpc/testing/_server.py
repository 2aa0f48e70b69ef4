"""The local Pug server: a real grpcio server on loopback with Pug's observable behaviour."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import message

from pug_grpc.gen.sdk.events.v1 import events_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.testing._auth import Authenticator, Caller, SessionIssuer
from pug_grpc.testing._context import CallInfo, reset_current_call, set_current_call
from pug_grpc.testing._faults import Faults
from pug_grpc.testing._services import Received, Services, add_all, served_methods
from pug_grpc.testing._status import ServerError, new_request_id, to_grpc_status
from pug_grpc.testing._store import Store
from pug_grpc.testing._validation import RequestValidator

__all__ = ["LocalServer", "RecordedCall", "ServerConfig", "local_server"]

_log = logging.getLogger("pug_grpc.testing")

_BATCH_METHOD = "/sdk.events.v1.EventsService/BatchCreate"


def _key(prefix: str) -> str:
    return prefix + "local_" + secrets.token_hex(12)


@dataclass(frozen=True)
class ServerConfig:
    """How a :class:`LocalServer` listens, what it accepts and where it keeps data.

    Keys left as ``None`` are generated per server; ``database`` is ``":memory:"`` or a SQLite
    file path (data then survives a restart).
    """

    host: str = "127.0.0.1"
    port: int = 0
    database: str | Path = ":memory:"
    project_id: str = "proj_local"
    public_key: str | None = None
    private_key: str | None = None
    extra_api_keys: Mapping[str, str] = field(default_factory=dict)
    user_email: str = "dev@pug.local"
    user_password: str = "pug-local-password"
    user_id: str = "user_local"
    access_token_ttl: float = 900.0
    validate: bool = True
    record: bool = True
    list_page_size: int = 100
    max_workers: int = 16


@dataclass
class RecordedCall:
    """One call the server received: method, metadata, request and how it ended."""

    method: str
    metadata: dict[str, str]
    request: message.Message | None
    request_id: str
    received_at: float
    code: grpc.StatusCode | None = None
    """``None`` while the call runs; ``OK`` or the error code once it has answered."""

    @property
    def short_method(self) -> str:
        return self.method.rsplit("/", 1)[-1]


class LocalServer:
    """A Pug server on loopback for development and tests.

    Start it with :meth:`start` (or use it as a context manager), point a client at
    :attr:`endpoint` with :attr:`private_key`, then inspect :attr:`events`, :attr:`identifies`
    and :attr:`calls`, or inject faults through :attr:`faults`.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        config = config or ServerConfig()
        self.config = replace(
            config,
            public_key=config.public_key or _key("pub_"),
            private_key=config.private_key or _key("prv_"),
        )
        self._clock = clock
        self.store = Store(self.config.database)
        self.faults = Faults(served_methods(), clock=monotonic)
        self.sessions = SessionIssuer(
            email=self.config.user_email,
            password=self.config.user_password,
            user_id=self.config.user_id,
            project_id=self.config.project_id,
            secret=secrets.token_bytes(32),
            access_ttl=self.config.access_token_ttl,
            clock=clock,
        )
        keys = {
            str(self.config.public_key): self.config.project_id,
            str(self.config.private_key): self.config.project_id,
            **self.config.extra_api_keys,
        }
        self._auth = Authenticator(api_keys=keys, sessions=self.sessions)
        self._validator = RequestValidator() if self.config.validate else None
        self._received = Received()
        self._calls: list[RecordedCall] = []
        self._calls_lock = threading.Lock()
        self._services = Services(
            store=self.store,
            sessions=self.sessions,
            faults=self.faults,
            clock=clock,
            received=self._received if self.config.record else None,
            list_page_size=self.config.list_page_size,
        )
        self._server: grpc.Server | None = None
        self._port = self.config.port
        self._stopping = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalServer:
        """Bind and serve; the first start picks a free port when the config says 0."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self.config.max_workers, thread_name_prefix="pug-local"
            ),
            interceptors=[_CallWrapper(self)],
            options=[("grpc.so_reuseport", 0)],
        )
        add_all(self._services, server)
        port = server.add_insecure_port(f"{self.config.host}:{self._port}")
        if port == 0:
            raise OSError(f"the local Pug server could not bind {self.config.host}:{self._port}")
        self._port = port
        server.start()
        self._server = server
        _log.info("local Pug server listening on %s", self.address)
        return self

    def stop(self, grace: float | None = 0.5) -> None:
        """Stop serving (calls in flight get ``grace`` seconds); data and recordings are kept."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.stop(grace).wait()
        _log.info("local Pug server on %s stopped", self.address)

    def restart(self, *, downtime: float = 0.0) -> None:
        """Stop, optionally stay down for ``downtime`` seconds, and serve again on the same port."""
        self.stop()
        if downtime > 0:
            time.sleep(downtime)
        self.start()

    def close(self) -> None:
        """Stop and release the database."""
        self.stop()
        self.store.close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- where and how to connect ---------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        """``host:port``, for ``grpc.insecure_channel``."""
        return f"{self.config.host}:{self._port}"

    @property
    def endpoint(self) -> str:
        """``http://host:port``, the plaintext loopback endpoint form the client accepts."""
        return f"http://{self.address}"

    @property
    def project_id(self) -> str:
        return self.config.project_id

    @property
    def public_key(self) -> str:
        return str(self.config.public_key)

    @property
    def private_key(self) -> str:
        return str(self.config.private_key)

    def channel(self) -> grpc.Channel:
        """A new plaintext channel to this server (the caller closes it)."""
        return grpc.insecure_channel(self.address)

    def issue_tokens(self, *, ttl: float | None = None) -> tuple[str, str]:
        """A signed-in session for the configured user: (access JWT, refresh token).

        ``ttl`` overrides the access token's lifetime in seconds (0 gives an expired token).
        """
        access, refresh = self.sessions.new_session()
        if ttl is not None:
            access = self.sessions.access_token(str(self.sessions.verify(access)["sid"]), ttl=ttl)
        return access, refresh

    # -- inspection -----------------------------------------------------------------------

    @property
    def events(self) -> list[events_pb2.Event]:
        """Every accepted event in arrival order (a redelivered event appears again)."""
        with self._received.lock:
            return list(self._received.events)

    @property
    def identifies(self) -> list[sdk_profiles_pb2.IdentifyRequest]:
        """Every accepted identify request in arrival order."""
        with self._received.lock:
            return list(self._received.identifies)

    @property
    def calls(self) -> list[RecordedCall]:
        """Every call received, in order, including refused and failed ones."""
        with self._calls_lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Calls of one method (short, ``Service.Method`` or full path)."""
        path = self.faults.resolve(method)
        return [c for c in self.calls if c.method == path]

    def stored_event_count(self) -> int:
        """Distinct events in storage (redeliveries of the same event id count once)."""
        return self.store.count_events(self.project_id)

    def wait_for_events(self, count: int, *, timeout: float = 10.0) -> list[events_pb2.Event]:
        """Block until at least ``count`` events were accepted; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        with self._received.lock:
            while len(self._received.events) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self._received.events)} of {count} events arrived in {timeout} s"
                    )
                self._received.lock.wait(left)
            return list(self._received.events)

    def wait_for_identifies(self, count: int, *, timeout: float = 10.0) -> list[Any]:
        """Block until at least ``count`` identify requests were accepted."""
        deadline = time.monotonic() + timeout
        with self._received.lock:
            while len(self._received.identifies) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{count} identifies did not arrive in {timeout} s")
                self._received.lock.wait(left)
            return list(self._received.identifies)

    def reset(self) -> None:
        """Forget recordings and injected faults (stored data stays)."""
        self.faults.clear()
        with self._received.lock:
            self._received.events.clear()
            self._received.identifies.clear()
        with self._calls_lock:
            self._calls.clear()

    # -- the call path (used by the wrapper) ----------------------------------------------

    def _record(self, method: str, metadata: dict[str, str], request: Any) -> RecordedCall:
        call = RecordedCall(
            method=method,
            metadata=metadata,
            request=request if self.config.record else None,
            request_id=new_request_id(),
            received_at=self._clock(),
        )
        if self.config.record:
            with self._calls_lock:
                self._calls.append(call)
        return call

    def _admit(self, call: RecordedCall, request: message.Message) -> Caller:
        """Everything before the handler: outage, latency, injected failure, auth, validation."""
        method = call.method
        if self.faults.in_outage():
            raise ServerError(
                grpc.StatusCode.UNAVAILABLE,
                "the local Pug server is in a simulated outage",
                "UNAVAILABLE",
            )
        delay = self.faults.latency_for(method)
        if delay > 0:
            self._stopping.wait(delay)
        failure = self.faults.take_failure(method)
        if failure is not None:
            raise ServerError(
                failure.code, failure.message, failure.code.name, pushback_ms=failure.pushback_ms
            )
        caller = self._auth.check(method, call.metadata)
        if self._validator is not None:
            violations = self._validator.violations(request)
            if violations:
                first = violations[0]
                where = f"{first.field}: " if first.field else ""
                more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
                raise ServerError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"invalid request: {where}{first.description}{more}",
                    "INVALID_EVENT_BATCH" if method == _BATCH_METHOD else "INVALID_ARGUMENT",
                    violations=violations,
                )
        return caller

    def _after(self, call: RecordedCall) -> None:
        failure = self.faults.take_failure_after(call.method)
        if failure is not None:
            raise ServerError(failure.code, failure.message, failure.code.name)


def _metadata(context: grpc.ServicerContext) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata():
        if not key.endswith("-bin"):
            found[key] = value if isinstance(value, str) else value.decode("latin-1")
    return found


class _CallWrapper(grpc.ServerInterceptor):
    """Wrap every handler with recording, faults, credentials, validation and error details."""

    def __init__(self, server: LocalServer) -> None:
        self._server = server

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _fail(self, context: grpc.ServicerContext, call: RecordedCall, error: ServerError) -> None:
        call.code = error.code
        _log.debug("%s %s failed: %s", call.request_id, call.method, error)
        context.abort_with_status(to_grpc_status(error, request_id=call.request_id))

    def _unary(
        self, method: str, behavior: Callable[[Any, grpc.ServicerContext], Any]
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        server = self._server

        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            call = server._record(method, _metadata(context), request)
            error: ServerError
            try:
                caller = server._admit(call, request)
                token = set_current_call(CallInfo(call.request_id, method, caller, call.metadata))
                try:
                    response = behavior(request, context)
                finally:
                    reset_current_call(token)
                server._after(call)
            except ServerError as exc:
                error = exc
            except Exception:
                _log.exception("%s %s crashed", call.request_id, method)
                error = ServerError(grpc.StatusCode.INTERNAL, "internal error", "INTERNAL")
            else:
                call.code = grpc.StatusCode.OK
                context.set_trailing_metadata((("x-request-id", call.request_id),))
                return response
            self._fail(context, call, error)
            return None

        return wrapped

    def _stream(
        self, method: str, behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        server = self._server

        def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            call = server._record(method, _metadata(context), request)
            error: ServerError
            try:
                caller = server._admit(call, request)
                token = set_current_call(CallInfo(call.request_id, method, caller, call.metadata))
                try:
                    yield from behavior(request, context)
                finally:
                    reset_current_call(token)
                server._after(call)
            except ServerError as exc:
                error = exc
            except Exception:
                _log.exception("%s %s crashed", call.request_id, method)
                error = ServerError(grpc.StatusCode.INTERNAL, "internal error", "INTERNAL")
            else:
                call.code = grpc.StatusCode.OK
                context.set_trailing_metadata((("x-request-id", call.request_id),))
                return
            self._fail(context, call, error)

        return wrapped


@contextlib.contextmanager
def local_server(config: ServerConfig | None = None, **changes: Any) -> Iterator[LocalServer]:
    """Run a :class:`LocalServer` for the duration of a ``with`` block.

    Keyword arguments override fields of ``config`` (or of the default config), for example
    ``local_server(database="pug.db", port=50051)``.
    """
    server = LocalServer(replace(config or ServerConfig(), **changes))
    server.start()
    try:
        yield server
    finally:
        server.close()
