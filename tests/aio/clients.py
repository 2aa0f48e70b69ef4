"""Asyncio clients for the tests, against the read server of the module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pug_grpc import AsyncPug, AsyncPugAdmin
from tests.rpc.clients import KEY, transport_of
from tests.support.read_servers import Running


def apug(server: Running, key: str = KEY, **kwargs: Any) -> AsyncPug:
    """An ``AsyncPug`` that only reads (``send=False``), on ``server``'s transport."""
    kwargs.setdefault("timeout", 5.0)
    return AsyncPug(key, server.endpoint, send=False, transport=transport_of(server), **kwargs)


def admin(server: Running, **kwargs: Any) -> AsyncPugAdmin:
    """An ``AsyncPugAdmin`` for project ``proj-1`` on ``server``, with its fake clock."""
    kwargs.setdefault("project_id", "proj-1")
    kwargs.setdefault("timeout", 5.0)
    return AsyncPugAdmin(
        server.endpoint, clock=server.clock, transport=transport_of(server), **kwargs
    )


async def drain(value: object) -> object:
    """What a call gives once awaited: the reply, or every item of an async iterator."""
    if isinstance(value, AsyncIterator):
        return [item async for item in value]
    return await value  # type: ignore[misc]
