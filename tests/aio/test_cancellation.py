"""Cancelling a task that awaits a read cancels the RPC itself, and leaves nothing behind.

The server here is a small grpcio server whose ``Get`` and ``List`` hold the call open until
the client goes away, and record that they saw it go: proof that the cancellation reached the
wire rather than only the awaiting task. The coroutine runner fails a test that leaves any
task running.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc

from pug_grpc import AsyncPug
from tests.rpc.clients import KEY


class _Hanging(profiles_pb2_grpc.ProfilesServiceServicer):
    """Answers ``GetByExternalId`` at once; holds ``Get`` and ``List`` until cancelled."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

    def _hold(self, context: grpc.ServicerContext) -> None:
        self.started.set()
        while context.is_active():
            threading.Event().wait(0.01)
        self.cancelled.set()

    def Get(
        self, request: profiles_pb2.GetRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.GetResponse:
        self._hold(context)
        return profiles_pb2.GetResponse()

    def GetByExternalId(
        self, request: profiles_pb2.GetByExternalIdRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.GetByExternalIdResponse:
        return profiles_pb2.GetByExternalIdResponse()

    def List(
        self, request: profiles_pb2.ListRequest, context: grpc.ServicerContext
    ) -> Iterator[profiles_pb2.ListResponse]:
        yield profiles_pb2.ListResponse(
            profiles=[profiles_pb2.Profile(id="p0")], next_page_token="1"
        )
        self._hold(context)


@pytest.fixture
def hanging() -> Iterator[tuple[_Hanging, str]]:
    servicer = _Hanging()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    profiles_pb2_grpc.add_ProfilesServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


async def _until(event: threading.Event) -> None:
    """Wait for a server-side event without blocking the loop."""
    assert await asyncio.to_thread(event.wait, 10.0), "the server never saw it"


async def test_cancelling_a_call_cancels_the_rpc(hanging: tuple[_Hanging, str]) -> None:
    servicer, endpoint = hanging
    async with AsyncPug(KEY, endpoint, send=False, timeout=60.0) as client:
        task = asyncio.ensure_future(client.profiles.get("p1"))
        await _until(servicer.started)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        await _until(servicer.cancelled)
        # The channel is unharmed: the next call goes through.
        await client.profiles.get_by_external_id("u1", timeout=5.0)


async def test_cancelling_a_streamed_listing_cancels_the_stream(
    hanging: tuple[_Hanging, str],
) -> None:
    servicer, endpoint = hanging
    seen: list[str] = []

    async def listing(client: AsyncPug) -> None:
        async for profile in client.profiles.list(timeout=None):
            seen.append(profile.id)

    async with AsyncPug(KEY, endpoint, send=False) as client:
        task = asyncio.ensure_future(listing(client))
        await _until(servicer.started)
        while not seen:  # the first page arrives, then the stream hangs
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _until(servicer.cancelled)
    assert seen == ["p0"]


async def test_a_timeout_around_a_call_cancels_it(hanging: tuple[_Hanging, str]) -> None:
    servicer, endpoint = hanging
    async with AsyncPug(KEY, endpoint, send=False, timeout=60.0) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await client.profiles.get("p1")
        await _until(servicer.cancelled)
