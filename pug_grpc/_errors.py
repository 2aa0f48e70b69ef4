"""The one error type of reads and administration, decoded from gRPC's rich error status.

Callers branch on the subclass (or on ``reason``, the server's stable token) instead of on raw
``grpc.StatusCode`` values, and get the server's correlation id for a support request. The
Connect transport presents its errors in the same shape (a code, a message and a
``google.rpc.Status`` details trailer), so :func:`error_from_rpc` is the only decoder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self

import grpc
from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RequestInfo, RetryInfo
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status

from pug_grpc._diagnosis import diagnose

__all__ = [
    "PugAuthenticationError",
    "PugConflictError",
    "PugConnectionError",
    "PugDeadlineExceededError",
    "PugError",
    "PugFailedPreconditionError",
    "PugInvalidArgumentError",
    "PugMessageTooLargeError",
    "PugNotFoundError",
    "PugPermissionError",
    "PugPublicKeyError",
    "PugRateLimitedError",
    "PugUnavailableError",
    "error_from_rpc",
]

_log = logging.getLogger("pug_grpc.errors")

_DETAILS_TRAILER = "grpc-status-details-bin"
CLIENT_DOMAIN = "pug-grpc.client"
"""``domain`` of errors raised on this side, before or instead of a network call."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


class PugError(Exception):
    """A read or administration call failed (on the server, or refused before sending).

    ``code`` is the gRPC status code; ``message`` the server's text; ``reason`` and ``domain`` come
    from the ``google.rpc.ErrorInfo`` detail, ``request_id`` from ``google.rpc.RequestInfo``,
    ``field_violations`` (``(field, description)`` pairs) from ``google.rpc.BadRequest``,
    ``retry_after`` (seconds) from ``google.rpc.RetryInfo``. Errors raised on the client side carry
    ``domain == "pug-grpc.client"`` and no request id.
    """

    default_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str = "",
        domain: str = "",
        request_id: str = "",
        field_violations: Iterable[tuple[str, str]] = (),
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code: grpc.StatusCode = code if code is not None else self.default_code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.request_id = request_id
        self.field_violations: tuple[tuple[str, str], ...] = tuple(field_violations)
        self.metadata: dict[str, str] = dict(metadata or {})
        self.retry_after = retry_after

    @property
    def trace_id(self) -> str:
        """The server's trace id, when its ``ErrorInfo`` metadata carries one."""
        return self.metadata.get("trace_id", "")

    @property
    def is_client_side(self) -> bool:
        """True when this side refused the call before (or instead of) sending it."""
        return self.domain == CLIENT_DOMAIN

    def __str__(self) -> str:
        parts = [f"{self.code.name}: {_one_line(self.message) or '(no message)'}"]
        extra = []
        if self.reason:
            extra.append(f"reason={_one_line(self.reason)}")
        if self.request_id:
            extra.append(f"request_id={_one_line(self.request_id)}")
        if self.field_violations:
            shown = "; ".join(f"{f}: {d}" for f, d in self.field_violations[:3])
            more = len(self.field_violations) - 3
            extra.append(
                f"violations={_one_line(shown)}" + (f" (+{more} more)" if more > 0 else "")
            )
        if extra:
            parts.append("(" + ", ".join(extra) + ")")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code.name}, message={self.message!r}, "
            f"reason={self.reason!r}, request_id={self.request_id!r})"
        )

    @classmethod
    def client_side(cls, message: str, *, reason: str) -> Self:
        """An error raised here, never sent: ``domain`` marks it as the client's."""
        return cls(message, reason=reason, domain=CLIENT_DOMAIN)


class PugAuthenticationError(PugError):
    """The credential is missing, malformed, expired or revoked (``UNAUTHENTICATED``)."""

    default_code = grpc.StatusCode.UNAUTHENTICATED


class PugPermissionError(PugError):
    """The credential is valid but may not do this (``PERMISSION_DENIED``)."""

    default_code = grpc.StatusCode.PERMISSION_DENIED


class PugPublicKeyError(PugPermissionError):
    """A ``pub_`` key was used for a read; refused on this side, before any network call."""


class PugNotFoundError(PugError):
    """The addressed object does not exist (``NOT_FOUND``)."""

    default_code = grpc.StatusCode.NOT_FOUND


class PugInvalidArgumentError(PugError, ValueError):
    """The request breaks a rule (``INVALID_ARGUMENT``, ``OUT_OF_RANGE``).

    See ``field_violations`` for the broken rules. Also a ``ValueError``, for code that catches
    bad input generically.
    """

    default_code = grpc.StatusCode.INVALID_ARGUMENT


class PugConflictError(PugError):
    """The object already exists or changed concurrently (``ALREADY_EXISTS``/``ABORTED``)."""

    default_code = grpc.StatusCode.ALREADY_EXISTS


class PugFailedPreconditionError(PugError):
    """The system is not in a state that allows this call (``FAILED_PRECONDITION``)."""

    default_code = grpc.StatusCode.FAILED_PRECONDITION


class PugRateLimitedError(PugError):
    """Too many requests or a quota is used up (``RESOURCE_EXHAUSTED``); see ``retry_after``."""

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class PugUnavailableError(PugError):
    """The service could not be reached or gave up in time: usually worth retrying."""

    default_code = grpc.StatusCode.UNAVAILABLE


class PugConnectionError(PugUnavailableError):
    """The endpoint could not be reached as configured; ``reason`` names the cause.

    ``reason`` is a :class:`pug_grpc.ConnectionCause` value (``HTTP1_ENDPOINT``,
    ``CONNECTION_REFUSED``, ``NAME_NOT_FOUND``, ``TLS_TO_PLAINTEXT_PORT``,
    ``PLAINTEXT_TO_TLS_PORT``, ``TLS_UNTRUSTED``...) and the message says how to fix it.
    """


class PugMessageTooLargeError(PugError):
    """A message passed a receive limit (``RESOURCE_EXHAUSTED`` "larger than max").

    Not rate limiting, and not worth retrying: the same message fails the same way. Usually a
    reply over this client's limit (ask for smaller pages, or raise
    ``grpc.max_receive_message_length`` in ``channel_options``); sometimes a request over the
    server's (send less per call).
    """

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class PugDeadlineExceededError(PugUnavailableError):
    """The call's deadline passed (``DEADLINE_EXCEEDED``); the server may still have acted."""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


_BY_CODE: dict[grpc.StatusCode, type[PugError]] = {
    grpc.StatusCode.UNAUTHENTICATED: PugAuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PugPermissionError,
    grpc.StatusCode.NOT_FOUND: PugNotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: PugInvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: PugInvalidArgumentError,
    grpc.StatusCode.ALREADY_EXISTS: PugConflictError,
    grpc.StatusCode.ABORTED: PugConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: PugFailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: PugRateLimitedError,
    grpc.StatusCode.UNAVAILABLE: PugUnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: PugDeadlineExceededError,
}


def _rich_status(error: Any) -> Status | None:
    """The ``google.rpc.Status`` trailer of a failed call, or None when absent or unreadable."""
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        # Code or message disagree with the trailer: the details are still worth having.
        status = None
        for key, value in error.trailing_metadata() or ():
            if key == _DETAILS_TRAILER and isinstance(value, bytes):
                status = _parse_status(value)
    except Exception:  # a non-Call RpcError (or a broken trailer) has no rich status
        _log.debug("no readable rich status on %r", type(error).__name__, exc_info=True)
        return None
    return status if isinstance(status, Status) else None


def _parse_status(value: bytes) -> Status | None:
    try:
        return Status.FromString(value)
    except Exception:
        return None


_RECEIVE_LIMIT_TEXT = ("received message larger than max", "larger than configured max")
"""What grpcio and the Connect runtime say when a reply passes the local receive limit."""


def error_from_rpc(
    error: grpc.RpcError, *, tls: bool | None = None, endpoint: str | None = None
) -> PugError:
    """Translate a failed call into the matching :class:`PugError` subclass.

    A connection failure that :func:`pug_grpc._diagnosis.diagnose` recognises becomes a
    :class:`PugConnectionError` whose message says how to fix it (``tls`` and ``endpoint``
    sharpen it); a reply over the local receive limit becomes a
    :class:`PugMessageTooLargeError`, never a rate limit. The caller raises the result
    ``from error`` so the original stays reachable as ``__cause__``.
    """
    code = _call_attr(error, "code")
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    message = _call_attr(error, "details")
    if not isinstance(message, str):
        message = str(error)
    found = diagnose(error, tls=tls, endpoint=endpoint)
    if found is not None:
        return PugConnectionError(
            found.message, code=code, reason=found.reason, domain=CLIENT_DOMAIN
        )
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and any(
        text in message.lower() for text in _RECEIVE_LIMIT_TEXT
    ):
        return PugMessageTooLargeError(
            f"a message passed a receive limit ({message}): for a reply over this client's "
            "limit ask for smaller pages (page_size) or raise grpc.max_receive_message_length "
            "in channel_options; for a request over the server's, send less per call",
            reason="MESSAGE_TOO_LARGE",
            domain=CLIENT_DOMAIN,
        )
    fields: dict[str, Any] = {}
    violations: list[tuple[str, str]] = []
    status = _rich_status(error)
    if status is not None:
        if not message and status.message:
            message = status.message
        for detail in status.details:
            info, request, bad, retry = ErrorInfo(), RequestInfo(), BadRequest(), RetryInfo()
            # Unpack() answers False when the detail holds another type.
            if detail.Unpack(info):
                fields.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
            elif detail.Unpack(request):
                fields["request_id"] = request.request_id
            elif detail.Unpack(bad):
                violations.extend((v.field, v.description) for v in bad.field_violations)
            elif detail.Unpack(retry):
                fields["retry_after"] = retry.retry_delay.ToTimedelta().total_seconds()
    cls = _BY_CODE.get(code, PugError)
    return cls(message, code=code, field_violations=violations, **fields)


def _call_attr(error: grpc.RpcError, name: str) -> object:
    method = getattr(error, name, None)
    if not callable(method):
        return None
    try:
        return method()
    except Exception:
        return None
