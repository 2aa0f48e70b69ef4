"""Fixtures shared by the read and admin tests: one loopback read server per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.read_servers import Running, serve


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    """The scripted read server (tests/support/read_servers.py); modules may define their own."""
    with serve() as running:
        yield running


@pytest.fixture
def server(running: Running) -> Running:
    """The module's read server, reset to a clean state for each test."""
    return running.reset()
