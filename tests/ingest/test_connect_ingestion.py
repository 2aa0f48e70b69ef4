"""Ingestion over ``transport="connect"`` against an independent Connect server (HTTP/1.1 only).

The server is the official ``connectrpc`` runtime on waitress, as in tests/rpc: the same engine
(requests in flight, retries, splits, exact outcomes) runs over the Connect protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import EndpointSync
from pug_grpc.gen.sdk.events.v1 import events_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

from pug_grpc import BatchSettings, Pug, RetrySettings
from tests.rpc.connect_server import connect_error, serve_endpoints

KEY = "prv_connect_ingestion_key_01"


@dataclass
class IngestState:
    """What the Connect server received, and the failures it is told to answer with."""

    batches: list[events_pb2.BatchCreateRequest] = field(default_factory=list)
    identifies: list[profiles_pb2.IdentifyRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    fail: list[grpc.StatusCode] = field(default_factory=list)
    refuse_kind: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def batch_create(
        self, request: events_pb2.BatchCreateRequest, ctx: RequestContext[Any, Any]
    ) -> events_pb2.BatchCreateResponse:
        with self.lock:
            self.headers.append(dict(ctx.request_headers.items()))
            if self.fail:
                raise connect_error(self.fail.pop(0), "scripted failure")
            if any(e.kind == self.refuse_kind for e in request.events) and len(request.events):
                raise connect_error(grpc.StatusCode.INVALID_ARGUMENT, "event[0]: kind")
            self.batches.append(request)
        return events_pb2.BatchCreateResponse(accepted=len(request.events))

    def identify(
        self, request: profiles_pb2.IdentifyRequest, ctx: RequestContext[Any, Any]
    ) -> profiles_pb2.IdentifyResponse:
        with self.lock:
            self.identifies.append(request)
        return profiles_pb2.IdentifyResponse()

    def events(self) -> list[events_pb2.Event]:
        with self.lock:
            return [e for b in self.batches for e in b.events]


def _info(service: str, name: str, request: Any, response: Any) -> MethodInfo[Any, Any]:
    return MethodInfo(
        name=name,
        service_name=service,
        input=request,
        output=response,
        idempotency_level=IdempotencyLevel.UNKNOWN,
        stream_type=StreamType.UNARY,
    )


@pytest.fixture
def connect_sink() -> Iterator[tuple[IngestState, int]]:
    state = IngestState()
    found = {
        "/sdk.events.v1.EventsService/BatchCreate": EndpointSync.unary(
            method=_info(
                "sdk.events.v1.EventsService",
                "BatchCreate",
                events_pb2.BatchCreateRequest,
                events_pb2.BatchCreateResponse,
            ),
            function=state.batch_create,
        ),
        "/sdk.profiles.v1.ProfilesSDKService/Identify": EndpointSync.unary(
            method=_info(
                "sdk.profiles.v1.ProfilesSDKService",
                "Identify",
                profiles_pb2.IdentifyRequest,
                profiles_pb2.IdentifyResponse,
            ),
            function=state.identify,
        ),
    }
    with serve_endpoints(found) as port:
        yield state, port


def client(port: int, **options: Any) -> Pug:
    options.setdefault("batch", BatchSettings(max_wait=0.02))
    options.setdefault("retry", RetrySettings(initial_backoff=0.01, max_backoff=0.05))
    return Pug(KEY, f"http://127.0.0.1:{port}", transport="connect", **options)


def test_events_and_identifies_reach_a_connect_server_over_http1(
    connect_sink: tuple[IngestState, int],
) -> None:
    state, port = connect_sink
    with client(port, compression=grpc.Compression.Gzip) as pug:
        for n in range(3000):
            pug.track(f"user-{n % 7}", "connect.event", {"n": n})
        pug.identify("user-1", {"plan": "pro"})
        pug.alias("anon-0190a3c2-0000-7000-8000-000000000001", "user-1")
        result = pug.flush(30)
    assert (result.accepted, result.identified, result.ok) == (3000, 2, True)
    events = state.events()
    assert sorted(int(e.custom_properties["n"].int_value) for e in events) == list(range(3000))
    assert len({e.event_id for e in events}) == 3000
    assert {h.get("x-api-key") for h in state.headers} == {KEY}
    assert len(state.batches) > 1, "several requests, as over gRPC"


def test_a_transient_connect_error_is_retried_with_the_same_ids(
    connect_sink: tuple[IngestState, int],
) -> None:
    state, port = connect_sink
    state.fail = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL]
    with client(port) as pug:
        for n in range(10):
            pug.track("user-1", "connect.retry", {"n": n})
        result = pug.flush(30)
        stats = pug.stats()
    assert (result.accepted, result.ok) == (10, True)
    assert stats.retried == 2
    assert len({e.event_id for e in state.events()}) == 10


def test_a_refused_event_is_split_out_and_the_rest_delivered(
    connect_sink: tuple[IngestState, int],
) -> None:
    state, port = connect_sink
    state.refuse_kind = "connect.bad"
    reasons: list[str] = []

    def on_error(error: BaseException, items: Any) -> None:
        reasons.append(getattr(error, "reason", ""))

    with client(port, on_error=on_error) as pug:
        for n in range(20):
            pug.track("user-1", "connect.bad" if n == 13 else "connect.good", {"n": n})
        result = pug.flush(30)
    assert (result.accepted, result.dead_lettered) == (19, 1)
    assert len(reasons) == 1
