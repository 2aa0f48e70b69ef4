"""A local Pug server for the middleware tests, and a client whose events the views send."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pug_grpc import BatchSettings, Pug
from pug_grpc.testing import LocalServer, local_server

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/125.0.0.0 Safari/537.36"
)


@pytest.fixture(scope="package")
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


@pytest.fixture
def client(server: LocalServer) -> Iterator[Pug]:
    server.reset()
    pug = Pug(server.private_key, server.endpoint, batch=BatchSettings(max_wait=0.01))
    yield pug
    pug.close()


def received(server: LocalServer, pug: Pug) -> list[Any]:
    """What the server received, once everything tracked so far has an outcome."""
    assert pug.flush(10).ok
    return list(server.events)


def auto(event: Any) -> dict[str, Any]:
    return {k: getattr(v, str(v.WhichOneof("value"))) for k, v in event.auto_properties.items()}
