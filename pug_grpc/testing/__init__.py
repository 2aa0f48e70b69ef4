"""A local Pug server for development and tests.

It speaks the real wire contract over real gRPC on loopback: the same credential rules,
protovalidate validation, error details and ingestion limits as Pug, with storage in memory (or
a SQLite file), inspection of what was received, and fault injection::

    from pug_grpc.testing import local_server

    with local_server() as server:
        ...  # point a client at server.endpoint with server.private_key
        assert server.events

Installing pug-grpc also installs a pytest plugin (``pug_grpc.testing.pytest_plugin``, loaded
by itself) with the fixtures ``pug_server``, ``pug`` and ``pug_admin``; see
``docs/local-server.md``.
"""

from pug_grpc.testing._faults import Faults
from pug_grpc.testing._recording import RecordedCall
from pug_grpc.testing._server import LocalServer, ServerConfig, local_server
from pug_grpc.testing._status import DOMAIN

__all__ = ["DOMAIN", "Faults", "LocalServer", "RecordedCall", "ServerConfig", "local_server"]
