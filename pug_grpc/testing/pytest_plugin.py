"""pytest fixtures for code that talks to Pug: a local server, a client and an admin session.

Installing pug-grpc registers this module as a pytest plugin (entry point group ``pytest11``),
so the fixtures are there in every test without a ``conftest.py`` line:

- ``pug_server``: a fresh, started :class:`~pug_grpc.testing.LocalServer` (in-memory storage,
  free port), closed after the test;
- ``pug``: a :class:`pug_grpc.Pug` client on it, with its private key, closed after the test;
- ``pug_admin``: a :class:`pug_grpc.PugAdmin` on it, signed in as the server's configured user,
  with the server's project selected.

Override ``pug_server_config`` (a :class:`~pug_grpc.testing.ServerConfig`), ``pug_options``
(keyword arguments for ``Pug``) or ``pug_admin_options`` (for ``PugAdmin``) in a test module or
a ``conftest.py`` to change them. Opt out with ``-p no:pug_grpc.testing.pytest_plugin``.

Only pytest is imported when the plugin loads; pug-grpc itself is imported by the first test
that takes one of these fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pug_grpc import Pug, PugAdmin
    from pug_grpc.testing import LocalServer, ServerConfig

__all__ = [
    "pug",
    "pug_admin",
    "pug_admin_options",
    "pug_options",
    "pug_server",
    "pug_server_config",
]


@pytest.fixture
def pug_server_config() -> ServerConfig:
    """The configuration ``pug_server`` starts with; override this fixture to change it."""
    from pug_grpc.testing import ServerConfig

    return ServerConfig()


@pytest.fixture
def pug_server(pug_server_config: ServerConfig) -> Iterator[LocalServer]:
    """A started local Pug server, stopped and discarded after the test."""
    from pug_grpc.testing import LocalServer

    server = LocalServer(pug_server_config)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pug_options() -> dict[str, Any]:
    """Keyword arguments for the ``pug`` client (for example ``batch=`` or ``on_error=``)."""
    return {}


@pytest.fixture
def pug(pug_server: LocalServer, pug_options: dict[str, Any]) -> Iterator[Pug]:
    """A ``Pug`` client on ``pug_server`` with its private key; closed (and so flushed) after."""
    from pug_grpc import Pug

    client = Pug(pug_server.private_key, pug_server.endpoint, **pug_options)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def pug_admin_options() -> dict[str, Any]:
    """Keyword arguments for the ``pug_admin`` client (for example ``timeout=``)."""
    return {}


@pytest.fixture
def pug_admin(pug_server: LocalServer, pug_admin_options: dict[str, Any]) -> Iterator[PugAdmin]:
    """A ``PugAdmin`` signed in as the server's configured user, on the server's project."""
    from pug_grpc import PugAdmin

    options = {"project_id": pug_server.project_id, **pug_admin_options}
    admin = PugAdmin(pug_server.endpoint, **options)
    try:
        admin.sign_in_with_email(pug_server.config.user_email, pug_server.config.user_password)
        yield admin
    finally:
        admin.close()
