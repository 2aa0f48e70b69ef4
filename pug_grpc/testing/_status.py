"""Rich error statuses the way Pug sends them: ErrorInfo, RequestInfo and BadRequest details.

Handlers raise :class:`ServerError`; the call path turns it into a gRPC status whose
``grpc-status-details-bin`` trailer a client can decode with ``grpcio-status``. Pug checks
credentials outside its interceptor chain, so an ``UNAUTHENTICATED`` error carries ErrorInfo and
RequestInfo but never a ``trace_id``; every other error has one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "DOMAIN",
    "FieldViolation",
    "ServerError",
    "internal",
    "invalid_argument",
    "new_request_id",
    "not_found",
    "to_grpc_status",
    "unauthenticated",
    "unimplemented",
]

DOMAIN = "pug.sh"
_DETAILS_KEY = "grpc-status-details-bin"
_PUSHBACK_KEY = "grpc-retry-pushback-ms"


def new_request_id() -> str:
    """A fresh correlation id, the same shape for every call so logs can be grepped."""
    return "req_" + uuid.uuid4().hex


@dataclass(frozen=True)
class FieldViolation:
    """One broken rule: the field path (names only, no indexes), what is wrong, the rule id.

    ``at`` is the same path with list indexes and map keys (``events[3].kind``): Pug shows it
    only in the status message, never in the BadRequest detail.
    """

    field: str
    description: str
    reason: str = ""
    at: str = ""


@dataclass(eq=False)
class ServerError(Exception):
    """A failure a handler reports to the client; ``reason`` is the stable ErrorInfo token."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    violations: Sequence[FieldViolation] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    pushback_ms: int | None = None

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    @property
    def reason_token(self) -> str:
        """The ErrorInfo reason: the one given, or the code's name."""
        return self.reason or self.code.name


def not_found(what: str) -> ServerError:
    """``NOT_FOUND`` for something named in the message."""
    return ServerError(grpc.StatusCode.NOT_FOUND, f"{what} not found", "NOT_FOUND")


def unimplemented(what: str) -> ServerError:
    """``UNIMPLEMENTED`` for a feature the local server does not have (the message says so)."""
    return ServerError(
        grpc.StatusCode.UNIMPLEMENTED,
        f"{what} is not implemented by the local Pug server",
        "UNIMPLEMENTED",
    )


def invalid_argument(message: str, reason: str = "INVALID_ARGUMENT") -> ServerError:
    """``INVALID_ARGUMENT`` without field details (those come from request validation)."""
    return ServerError(grpc.StatusCode.INVALID_ARGUMENT, message, reason)


def unauthenticated(message: str) -> ServerError:
    """``UNAUTHENTICATED`` with reason ``UNAUTHENTICATED``, as every Pug credential failure."""
    return ServerError(grpc.StatusCode.UNAUTHENTICATED, message, "UNAUTHENTICATED")


def internal(message: str) -> ServerError:
    """``INTERNAL``: what Pug answers when its queue or storage fails."""
    return ServerError(grpc.StatusCode.INTERNAL, message, "INTERNAL")


class _Status(grpc.Status):
    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        trailing_metadata: tuple[tuple[str, str | bytes], ...],
    ) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_grpc_status(error: ServerError, *, request_id: str) -> grpc.Status:
    """Build the status (code, message, details trailer, optional push-back) for ``error``."""
    metadata = dict(error.metadata)
    if error.code != grpc.StatusCode.UNAUTHENTICATED:
        metadata.setdefault("trace_id", request_id.removeprefix("req_"))
    info = error_details_pb2.ErrorInfo(reason=error.reason_token, domain=DOMAIN, metadata=metadata)
    details = [_pack(info), _pack(error_details_pb2.RequestInfo(request_id=request_id))]
    if error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.reason
                )
                for v in error.violations
            ]
        )
        details.append(_pack(bad))
    rich = status_pb2.Status(code=error.code.value[0], message=error.message, details=details)
    trailers: list[tuple[str, str | bytes]] = [(_DETAILS_KEY, rich.SerializeToString())]
    if error.pushback_ms is not None:
        trailers.append((_PUSHBACK_KEY, str(error.pushback_ms)))
    return _Status(error.code, error.message, tuple(trailers))
