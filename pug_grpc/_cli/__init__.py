"""The ``pug-grpc`` command line."""

from pug_grpc._cli.main import main

__all__ = ["main"]
