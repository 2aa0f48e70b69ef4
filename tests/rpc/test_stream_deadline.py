"""A streamed listing's deadline applies between pages, on gRPC and on Connect.

Pug streams every page of ``ProfilesService.List`` in one call, so a deadline on the whole call
would cut a large project short. Here a server streams pages with pauses (the listing outlives
the timeout and still ends), sends no whole-call deadline, and a server that stops sending
mid-stream is reported as ``DEADLINE_EXCEEDED``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import EndpointSync
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2 as pb

from pug_grpc import PugDeadlineExceededError
from pug_grpc._rpc.reads import Reads
from tests.rpc.clients import KEY, reads
from tests.rpc.connect_server import serve_endpoints
from tests.support.read_servers import Running

pytestmark = pytest.mark.timeout(60)

SERVICE = "shared.profiles.v1.ProfilesService"


@dataclass
class Pacing:
    """How the scripted List stream sends: ``pages`` pages, ``gap`` seconds apart."""

    pages: int = 4
    gap: float = 0.0
    stall_after: int | None = None  # pages sent before the stream stops sending
    release: threading.Event = field(default_factory=threading.Event)
    deadlines: list[float | None] = field(default_factory=list)

    def pages_for(self) -> Iterator[pb.ListResponse]:
        for i in range(self.pages):
            if i and self.gap:
                threading.Event().wait(self.gap)
            if self.stall_after is not None and i == self.stall_after:
                self.release.wait(30)
                return
            last = i == self.pages - 1
            yield pb.ListResponse(
                profiles=[pb.Profile(id=f"p{i}")], next_page_token="" if last else str(i + 1)
            )


@contextmanager
def grpc_server(pacing: Pacing) -> Iterator[Running]:
    def listing(request: pb.ListRequest, context: grpc.ServicerContext) -> Iterator[Any]:
        pacing.deadlines.append(context.time_remaining())
        return pacing.pages_for()

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "List": grpc.unary_stream_rpc_method_handler(
                listing,
                request_deserializer=pb.ListRequest.FromString,
                response_serializer=pb.ListResponse.SerializeToString,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield Running(None, port, None)  # type: ignore[arg-type]
    finally:
        pacing.release.set()
        server.stop(grace=None)


@contextmanager
def connect_server(pacing: Pacing) -> Iterator[Running]:
    def listing(request: pb.ListRequest, ctx: RequestContext[Any, Any]) -> Iterator[Any]:
        pacing.deadlines.append(ctx.timeout_ms)
        return pacing.pages_for()

    info = MethodInfo(
        name="List",
        service_name=SERVICE,
        input=pb.ListRequest,
        output=pb.ListResponse,
        idempotency_level=IdempotencyLevel.UNKNOWN,
        stream_type=StreamType.SERVER_STREAM,
    )
    endpoints = {f"/{SERVICE}/List": EndpointSync.server_stream(method=info, function=listing)}
    with serve_endpoints(endpoints) as port:
        running = Running(None, port, None)  # type: ignore[arg-type]
        running.transport = "connect"  # type: ignore[attr-defined]
        try:
            yield running
        finally:
            pacing.release.set()  # before the server stops: it waits for its threads


SERVERS = {"grpc": grpc_server, "connect": connect_server}


def client(running: Running, timeout: float) -> Reads:
    return reads(running, KEY, timeout=timeout)


@pytest.mark.parametrize("transport", sorted(SERVERS))
def test_no_whole_call_deadline_is_sent(transport: str) -> None:
    pacing = Pacing(pages=3)
    with SERVERS[transport](pacing) as running:
        ids = [p.id for p in client(running, timeout=5.0).profiles.list()]
    assert ids == ["p0", "p1", "p2"]
    [deadline] = pacing.deadlines
    assert deadline is None or deadline > 1e6  # gRPC reports "no deadline" as a huge number


@pytest.mark.parametrize("transport", sorted(SERVERS))
def test_a_listing_longer_than_the_timeout_streams_to_the_end(transport: str) -> None:
    pacing = Pacing(pages=5, gap=0.3)  # about 1.2 s in all, each page well inside 1 s
    with SERVERS[transport](pacing) as running:
        ids = [p.id for p in client(running, timeout=1.0).profiles.list()]
    assert ids == [f"p{i}" for i in range(5)]


@pytest.mark.parametrize("transport", sorted(SERVERS))
def test_a_stream_that_stops_sending_hits_the_deadline(transport: str) -> None:
    pacing = Pacing(pages=5, stall_after=2)
    with SERVERS[transport](pacing) as running:
        profiles = client(running, timeout=0.3).profiles.list()
        assert [next(profiles).id, next(profiles).id] == ["p0", "p1"]
        with pytest.raises(PugDeadlineExceededError) as caught:
            next(profiles)
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
