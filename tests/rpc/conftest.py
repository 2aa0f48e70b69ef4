"""Fixtures shared by the read and admin tests: one loopback read server per module.

A module that sets ``TRANSPORTS = ("grpc", "connect")`` runs each of its tests against the
gRPC server and against the independent Connect server (tests/rpc/connect_server.py); tests
named in its ``GRPC_ONLY`` run against gRPC alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.rpc.connect_server import serve_connect
from tests.support.read_servers import Running, serve


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "running" not in metafunc.fixturenames:
        return
    transports = getattr(metafunc.module, "TRANSPORTS", ("grpc",))
    if metafunc.function.__name__ in getattr(metafunc.module, "GRPC_ONLY", ()):
        transports = ("grpc",)
    metafunc.parametrize("running", transports, indirect=True, scope="module")


@pytest.fixture(scope="module")
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    """The scripted read server (tests/support/read_servers.py) over gRPC or Connect."""
    transport = getattr(request, "param", "grpc")
    with serve() if transport == "grpc" else serve_connect() as running:
        yield running


@pytest.fixture
def server(running: Running) -> Running:
    """The module's read server, reset to a clean state for each test."""
    return running.reset()
