"""Fixtures of the local-server tests: the package's own pytest plugin fixtures."""

from pug_grpc.testing.pytest_plugin import pug_server, pug_server_config

__all__ = ["pug_server", "pug_server_config"]
