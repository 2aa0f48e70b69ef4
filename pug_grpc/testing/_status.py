"""Rich error statuses the way Pug sends them: ErrorInfo, RequestInfo and BadRequest details.

Handlers raise :class:`ServerError`; the call wrapper turns it into a gRPC status whose
``grpc-status-details-bin`` trailer a client can decode with ``grpcio-status``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

__all__ = ["DOMAIN", "FieldViolation", "ServerError", "new_request_id", "to_grpc_status"]

DOMAIN = "pug.sh"
_DETAILS_KEY = "grpc-status-details-bin"
_PUSHBACK_KEY = "grpc-retry-pushback-ms"


def new_request_id() -> str:
    """A fresh correlation id, the same shape for every call so logs can be grepped."""
    return "req_" + uuid.uuid4().hex


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str
    reason: str = ""


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
        return self.reason or self.code.name


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
    info = error_details_pb2.ErrorInfo(
        reason=error.reason_token,
        domain=DOMAIN,
        metadata={"trace_id": request_id.removeprefix("req_"), **error.metadata},
    )
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
