"""Checking the client's constructor options, so a bad one fails in ``Pug(...)``, not later.

``Pug`` and ``AsyncPug`` share these: the environment fallbacks, the option checks (same
messages, same order) and the defaults their signatures show.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any, Final

import grpc

from pug_grpc._credentials import check_api_key, mask
from pug_grpc._ingest.storage import Storage
from pug_grpc._names import is_public_key
from pug_grpc._retry import RetrySettings
from pug_grpc._transport import check_compression, parse_endpoint

__all__ = [
    "DEFAULT_RETRY",
    "Interceptor",
    "check_options",
    "check_transport",
    "from_env",
    "warn_if_public_key",
]

_log = logging.getLogger("pug_grpc.client")

Interceptor = (
    grpc.UnaryUnaryClientInterceptor
    | grpc.UnaryStreamClientInterceptor
    | grpc.StreamUnaryClientInterceptor
    | grpc.StreamStreamClientInterceptor
)
"""A synchronous gRPC client interceptor of any of the four kinds."""

DEFAULT_RETRY: Final = RetrySettings()


def from_env(value: str | None, name: str) -> str | None:
    """``value`` when given, else the environment variable ``name`` (an empty one is unset)."""
    return value if value is not None else (os.environ.get(name) or None)


def check_options(
    *,
    api_key: str | None,
    endpoint: str | None,
    send: bool,
    channel: grpc.Channel | None,
    credentials: grpc.ChannelCredentials | None,
    allow_insecure: bool,
    on_error: object,
    timeout: float,
    shutdown_timeout: float,
    retry: object,
    read_retry: object,
    storage: object,
    compression: grpc.Compression | None,
    before_send: object,
    default_properties: object,
) -> grpc.Compression | None:
    """Raise ``ValueError`` on the first bad option; return the checked ``compression``."""
    if api_key is not None or send:
        check_api_key(api_key or "")
    if send and channel is None:
        if endpoint is None:
            raise ValueError("an endpoint is required (pass endpoint=... or set PUG_ENDPOINT)")
        # Fail now on a bad endpoint; the channel itself opens on first use (fork-friendly).
        parse_endpoint(endpoint, allow_insecure=allow_insecure, force_tls=credentials is not None)
    if on_error is not None and not callable(on_error):
        raise ValueError("on_error must be callable as on_error(error, events)")
    for name, value in (("timeout", timeout), ("shutdown_timeout", shutdown_timeout)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    for name, given in (("retry", retry), ("read_retry", read_retry)):
        if given is not None and not isinstance(given, RetrySettings):
            raise ValueError(f"{name} must be a RetrySettings, or None to turn retries off")
    if storage is not None and not isinstance(storage, Storage):
        raise ValueError("storage must be a pug_grpc.Storage (MemoryStorage, SqliteStorage...)")
    checked = check_compression(compression)
    if before_send is not None and not callable(before_send):
        raise ValueError("before_send must be callable as before_send(event)")
    if default_properties is not None and not isinstance(default_properties, Mapping):
        raise ValueError("default_properties must be a mapping")
    return checked


def check_transport(
    transport: Any,
    *,
    channel: grpc.Channel | None,
    credentials: grpc.ChannelCredentials | None,
    root_certificates: bytes | None,
) -> grpc.ChannelCredentials | None:
    """Check the transport choice; return the channel credentials gRPC then uses.

    A private certificate authority (``root_certificates``) becomes TLS credentials.
    """
    if transport not in ("grpc", "connect"):
        raise ValueError(f'transport must be "grpc" or "connect", not {transport!r}')
    if transport == "connect" and (channel is not None or credentials is not None):
        raise ValueError(
            'transport="connect" takes no grpc channel or credentials '
            "(pass root_certificates= for a private certificate authority)"
        )
    if root_certificates is not None and credentials is None and transport == "grpc":
        return grpc.ssl_channel_credentials(root_certificates)
    return credentials


def warn_if_public_key(api_key: str | None) -> None:
    """A ``pub_`` key works for ingestion, but server code should hold a private one."""
    if is_public_key(api_key):
        _log.warning(
            "API key %s is a public (pub_) key, meant for browsers and apps; server code "
            "should use a private (prv_) key",
            mask(api_key),
        )
