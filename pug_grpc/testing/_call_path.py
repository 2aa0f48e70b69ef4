"""The path every call takes around its handler: record, faults, credentials, validation.

One server interceptor wraps each unary and server-streaming handler. Before the handler runs:
a simulated outage, latency, an injected failure, the credential check and the protovalidate
rules, in that order; after it, an injected lost reply. A :class:`ServerError` from anywhere
becomes a status with Pug's error details; any other exception is ``INTERNAL``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import message

from pug_grpc.testing._call_context import CallInfo, reset_current_call, set_current_call
from pug_grpc.testing._credential_checks import Authenticator, Caller
from pug_grpc.testing._faults import Faults, InjectedFailure
from pug_grpc.testing._recording import RecordedCall, Recorder
from pug_grpc.testing._request_validation import RequestValidator, refusal_message
from pug_grpc.testing._status import ServerError, internal, to_grpc_status

__all__ = ["CallPath"]

_log = logging.getLogger("pug_grpc.testing")

_BATCH_METHOD = "/sdk.events.v1.EventsService/BatchCreate"

_Handler = Callable[[Any, grpc.ServicerContext], Any]
_StreamHandler = Callable[[Any, grpc.ServicerContext], Iterator[Any]]


def _text_metadata(context: grpc.ServicerContext) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata():
        if not key.endswith("-bin"):
            found[key] = value if isinstance(value, str) else value.decode("latin-1")
    return found


def _injected(failure: InjectedFailure) -> ServerError:
    return ServerError(
        failure.code, failure.message, failure.reason, pushback_ms=failure.pushback_ms
    )


class CallPath(grpc.ServerInterceptor):
    """Wrap every handler with recording, faults, credentials, validation and error details."""

    def __init__(
        self,
        *,
        recorder: Recorder,
        faults: Faults,
        authenticator: Authenticator,
        validator: RequestValidator | None,
        stopping: threading.Event,
    ) -> None:
        self._recorder = recorder
        self._faults = faults
        self._auth = authenticator
        self._validator = validator
        self._stopping = stopping

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The handler of one method, wrapped."""
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

    def _admit(self, call: RecordedCall, request: message.Message) -> Caller:
        """Everything before the handler: outage, latency, injected failure, auth, validation."""
        method = call.method
        if self._faults.in_outage():
            raise ServerError(
                grpc.StatusCode.UNAVAILABLE,
                "the local Pug server is in a simulated outage",
                "UNAVAILABLE",
            )
        delay = self._faults.latency_for(method)
        if delay > 0:
            self._stopping.wait(delay)
        failure = self._faults.take_failure(method)
        if failure is not None:
            raise _injected(failure)
        caller = self._auth.check(method, call.metadata)
        if self._validator is not None:
            violations = self._validator.violations(request)
            if violations:
                raise ServerError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    refusal_message(violations),
                    "INVALID_EVENT_BATCH" if method == _BATCH_METHOD else "INVALID_ARGUMENT",
                    violations=violations,
                )
        return caller

    def _after(self, call: RecordedCall) -> None:
        failure = self._faults.take_failure_after(call.method)
        if failure is not None:
            raise _injected(failure)

    def _fail(self, context: grpc.ServicerContext, call: RecordedCall, error: ServerError) -> None:
        call.code = error.code
        _log.debug("%s %s failed: %s", call.request_id, call.method, error)
        context.abort_with_status(to_grpc_status(error, request_id=call.request_id))

    def _succeed(self, context: grpc.ServicerContext, call: RecordedCall) -> None:
        call.code = grpc.StatusCode.OK
        context.set_trailing_metadata((("x-request-id", call.request_id),))

    @contextlib.contextmanager
    def _handling(self, call: RecordedCall, request: message.Message) -> Iterator[None]:
        """Admit the call, make it current while its handler runs, then check for a lost reply."""
        caller = self._admit(call, request)
        token = set_current_call(CallInfo(call.request_id, call.method, caller, call.metadata))
        try:
            yield
        finally:
            reset_current_call(token)
        self._after(call)

    def _as_server_error(self, call: RecordedCall, error: Exception) -> ServerError:
        if isinstance(error, ServerError):
            return error
        _log.error("%s %s crashed", call.request_id, call.method, exc_info=error)
        return internal("internal error")

    def _unary(self, method: str, behavior: _Handler) -> _Handler:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            call = self._recorder.call(method, _text_metadata(context), request)
            try:
                with self._handling(call, request):
                    response = behavior(request, context)
            except Exception as error:
                self._fail(context, call, self._as_server_error(call, error))
                return None
            self._succeed(context, call)
            return response

        return wrapped

    def _stream(self, method: str, behavior: _StreamHandler) -> _StreamHandler:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            call = self._recorder.call(method, _text_metadata(context), request)
            try:
                with self._handling(call, request):
                    yield from behavior(request, context)
            except Exception as error:
                self._fail(context, call, self._as_server_error(call, error))
                return
            self._succeed(context, call)

        return wrapped
