"""Helpers for the local-server tests: build events, call with credentials, decode error details."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pug_grpc.gen.sdk.events.v1 import events_pb2

from pug_grpc.testing import LocalServer


def event(
    distinct_id: str = "user-1",
    kind: str = "page_view",
    *,
    when: dt.datetime | None = None,
    session_id: str | None = None,
    custom: dict[str, Any] | None = None,
    auto: dict[str, Any] | None = None,
) -> events_pb2.Event:
    """A valid event; property values are mapped by Python type."""
    built = events_pb2.Event(
        event_id=str(uuid.uuid4()),
        kind=kind,
        distinct_id=distinct_id,
        session_id=session_id or str(uuid.uuid4()),
    )
    built.occur_time.FromDatetime(when or dt.datetime.now(dt.UTC))
    for target, values in ((built.custom_properties, custom), (built.auto_properties, auto)):
        for key, value in (values or {}).items():
            slot = target[key]
            if isinstance(value, bool):
                slot.bool_value = value
            elif isinstance(value, int):
                slot.int_value = value
            elif isinstance(value, float):
                slot.double_value = value
            else:
                slot.string_value = str(value)
    return built


def key_md(server: LocalServer, *, private: bool = True) -> list[tuple[str, str]]:
    return [("x-api-key", server.private_key if private else server.public_key)]


@dataclass
class Details:
    code: grpc.StatusCode
    message: str
    reason: str
    domain: str
    request_id: str
    violations: list[tuple[str, str]]
    trailers: dict[str, Any]


def details(error: grpc.RpcError) -> Details:
    """Decode the rich status of a failed call (ErrorInfo, RequestInfo, BadRequest)."""
    assert isinstance(error, grpc.Call)
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no grpc-status-details-bin trailer"
    info = error_details_pb2.ErrorInfo()
    request = error_details_pb2.RequestInfo()
    bad = error_details_pb2.BadRequest()
    for detail in status.details:
        for target in (info, request, bad):
            if detail.Is(target.DESCRIPTOR):
                detail.Unpack(target)
    return Details(
        code=error.code(),
        message=error.details() or "",
        reason=info.reason,
        domain=info.domain,
        request_id=request.request_id,
        violations=[(v.field, v.description) for v in bad.field_violations],
        trailers=dict(error.trailing_metadata() or ()),
    )
