"""The gRPC sink for pug-grpc: ``EventsService.BatchCreate`` and ``ProfilesSDKService.Identify``.

A ``grpc.aio`` server: each call is a coroutine, so a call waiting out its added latency never
holds up the others (up to the real server's 250 concurrent streams per connection). It checks
the API key, optionally validates the request with protovalidate (on the event loop, one
request at a time, like one busy server process), counts the events by ``event_id`` and
answers ``accepted``. See ``bench_sink_core`` for the knobs and the control protocol.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import grpc
from bench_common import API_KEY, API_KEY_HEADER, MAX_CONCURRENT_STREAMS
from bench_sink_core import Counter, Knobs, control_loop, in_outage, shared_validator
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2, profiles_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class _Gate:
    """The steps every call goes through: key, first half of the delay, outage, validation."""

    def __init__(self, counter: Counter, knobs: Knobs) -> None:
        self.counter = counter
        self.knobs = knobs

    async def enter(self, request: Any, items: int, context: Context) -> int:
        """The call's generation once it may be stored; aborts the call otherwise."""
        generation, first_request = self.counter.arrive()
        if (API_KEY_HEADER, API_KEY) not in (context.invocation_metadata() or ()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid API key")
        delay = self.knobs.delay
        if delay:
            await asyncio.sleep(delay / 2)
        if in_outage(self.knobs, first_request, time.monotonic()):
            self.counter.refuse(generation, items)
            await self.leave()
            await context.abort(grpc.StatusCode.UNAVAILABLE, "bench sink: outage")
        if self.knobs.validate:
            problem = shared_validator().problem(request)
            if problem is not None:
                self.counter.invalid(generation, items)
                await self.leave()
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        return generation

    async def leave(self) -> None:
        """The second half of the delay: the answer's way back."""
        delay = self.knobs.delay
        if delay:
            await asyncio.sleep(delay / 2)


class _Events(events_pb2_grpc.EventsServiceServicer):
    def __init__(self, gate: _Gate) -> None:
        self._gate = gate

    async def BatchCreate(  # noqa: N802 (the generated RPC name)
        self, request: events_pb2.BatchCreateRequest, context: Context
    ) -> events_pb2.BatchCreateResponse:
        count = len(request.events)
        generation = await self._gate.enter(request, count, context)
        self._gate.counter.store(generation, [event.event_id for event in request.events])
        await self._gate.leave()
        return events_pb2.BatchCreateResponse(accepted=count)


class _Profiles(profiles_pb2_grpc.ProfilesSDKServiceServicer):
    def __init__(self, gate: _Gate) -> None:
        self._gate = gate

    async def Identify(  # noqa: N802 (the generated RPC name)
        self, request: profiles_pb2.IdentifyRequest, context: Context
    ) -> profiles_pb2.IdentifyResponse:
        generation = await self._gate.enter(request, 1, context)
        self._gate.counter.store_identify(generation)
        await self._gate.leave()
        return profiles_pb2.IdentifyResponse()


async def _serve(host: str) -> None:
    counter = Counter()
    knobs = Knobs()
    gate = _Gate(counter, knobs)
    server = grpc.aio.server(options=[("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS)])
    events_pb2_grpc.add_EventsServiceServicer_to_server(_Events(gate), server)
    profiles_pb2_grpc.add_ProfilesSDKServiceServicer_to_server(_Profiles(gate), server)
    port = server.add_insecure_port(f"{host}:0")
    await server.start()
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not stopped.done():
            stopped.set_result(None)

    def stop() -> None:
        loop.call_soon_threadsafe(finish)

    control = threading.Thread(
        target=control_loop, args=(port, counter, knobs, stop), name="control", daemon=True
    )
    control.start()
    await stopped
    await server.stop(None)


def run_grpc(host: str) -> None:
    """Serve until the parent says ``quit``."""
    asyncio.run(_serve(host))
