"""AsyncPug's ingestion: Pug's engine on its own thread, awaited without blocking the loop.

Against the local Pug server (``pug_server``, the package's pytest plugin). A slow server
makes ``flush()`` and ``aclose()`` wait; the loop must keep running other tasks meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from pug_grpc import AsyncPug
from pug_grpc.testing import LocalServer


async def _ticks_while(waiting: Awaitable[object]) -> tuple[object, int]:
    """Await ``waiting`` while a ticker task counts how often the loop let it run."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    counting = asyncio.ensure_future(ticker())
    try:
        result = await waiting
    finally:
        done.set()
        await counting
    return result, ticks


async def test_track_then_flush_delivers_without_blocking_the_loop(
    pug_server: LocalServer,
) -> None:
    pug_server.faults.set_latency(0.3, "BatchCreate")
    async with AsyncPug(pug_server.private_key, pug_server.endpoint) as client:
        for i in range(50):
            client.track(f"user-{i}", "page_view", {"n": i})
        client.identify("user-1", {"plan": "pro"})
        client.alias("anon-1", "user-1")
        result, ticks = await _ticks_while(client.flush(timeout=30.0))
        stats = client.stats()
    assert result.ok, result  # type: ignore[attr-defined]
    assert result.accepted == 50  # type: ignore[attr-defined]
    assert ticks > 1, "the loop stood still while flush() waited"
    assert stats.enqueued == 52
    assert len(pug_server.events) == 50


async def test_aclose_drains_without_blocking_the_loop(pug_server: LocalServer) -> None:
    pug_server.faults.set_latency(0.3, "BatchCreate")
    client = AsyncPug(pug_server.private_key, pug_server.endpoint)
    client.track("user-1", "signup")
    _, ticks = await _ticks_while(client.aclose(timeout=30.0))
    assert ticks > 1
    assert [e.distinct_id for e in pug_server.events] == ["user-1"]
    client.track("user-2", "late")  # after close: counted and reported, never raised
    assert client.stats().enqueued == 1


async def test_reads_on_the_local_server(pug_server: LocalServer) -> None:
    async with AsyncPug(pug_server.private_key, pug_server.endpoint) as client:
        client.identify("user-7", {"plan": "pro"})
        assert (await client.flush(timeout=30.0)).ok
        found = await client.profiles.get_by_external_id("user-7")
        listed = [p.external_id async for p in client.profiles.list()]
    assert found.profile.external_id == "user-7"
    assert listed == ["user-7"]
