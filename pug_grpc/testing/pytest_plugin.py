"""pytest fixtures for the local Pug server.

Enable in a ``conftest.py`` with ``pytest_plugins = ["pug_grpc.testing.pytest_plugin"]``, then
take ``pug_server`` as a test argument: a fresh, started :class:`~pug_grpc.testing.LocalServer`
with in-memory storage, closed after the test. Override ``pug_server_config`` to change it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pug_grpc.testing._server import LocalServer, ServerConfig

__all__ = ["pug_server", "pug_server_config"]


@pytest.fixture
def pug_server_config() -> ServerConfig:
    """The configuration ``pug_server`` starts with; override this fixture to change it."""
    return ServerConfig()


@pytest.fixture
def pug_server(pug_server_config: ServerConfig) -> Iterator[LocalServer]:
    """A started local Pug server, stopped and discarded after the test."""
    server = LocalServer(pug_server_config)
    server.start()
    try:
        yield server
    finally:
        server.close()
