"""Endpoint parsing, the TLS/plaintext rules, and the channel rules of the real server.

The endpoint rules exist so that a ``prv_`` key never travels in clear text by accident:
plaintext is only chosen for loopback addresses, or for another host when the caller opts in
with ``allow_insecure=True``. The channel rules follow what Pug does on the wire: gzip is the
only compression it accepts, its largest reply (a 1,000-event page) can pass gRPC's default
4 MiB receive limit, and channels that sit idle behind proxies must not die silently.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc
import grpc.aio

from pug_grpc._names import ENV_ENDPOINT
from pug_grpc._version import __version__

# grpc imports these on the first channel. A fork while another thread is importing them leaves
# the module's import lock held for ever in the child, so they load with this package instead.
for _lazy in ("grpc._channel", "grpc._interceptor"):
    importlib.import_module(_lazy)

__all__ = [
    "KEEPALIVE_OPTIONS",
    "RECEIVE_LIMIT",
    "USER_AGENT",
    "Endpoint",
    "check_compression",
    "intercept",
    "is_loopback",
    "open_aio_channel",
    "open_channel",
    "parse_endpoint",
]

_log = logging.getLogger("pug_grpc.transport")

USER_AGENT = f"pug-grpc/{__version__}"

_UA_OPTION = "grpc.primary_user_agent"
_RETRIES_OPTION = "grpc.enable_retries"
_RECEIVE_OPTION = "grpc.max_receive_message_length"

_MAX_PAGE_EVENTS = 1_000
"""The largest ``page_size`` of the feed and the explorer."""
_MAX_EVENT_BYTES = 1024 * 1024 + 16 * 1024
"""An event was accepted inside one ``BatchCreate`` published as one message of at most 1 MiB;
the server adds a few hundred bytes of its own properties, and a read adds its framing."""
RECEIVE_LIMIT = _MAX_PAGE_EVENTS * _MAX_EVENT_BYTES
"""The largest reply the server can send (a full page of the largest events), about 1 GiB.

gRPC's default of 4 MiB is passed by a 1,000-event page of ordinary events, and the failure is
local and permanent; this bound never refuses a reply the server may legitimately send."""

METADATA_LIMIT = 1024 * 1024
"""Received metadata (trailers) a reply may carry."""
_METADATA_OPTION = "grpc.max_metadata_size"

KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    # Ping only while calls are in flight, and no more often than gRPC servers accept by
    # default (5 minutes): a front that counts pings never answers ENHANCE_YOUR_CALM.
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 2),
    # An idle channel lets its connection go after 50 s and reconnects on the next call, so a
    # proxy's idle cutoff (often 60 s) never leaves it holding a silently dead connection.
    ("grpc.client_idle_timeout_ms", 50_000),
)
"""Channel options for long-lived channels behind proxies; ``channel_options`` overrides them."""

_ALLOWED_COMPRESSION = (None, grpc.Compression.NoCompression, grpc.Compression.Gzip)
_LOCAL_SCHEMES = ("unix:", "unix-abstract:")

_Interceptor = (
    grpc.UnaryUnaryClientInterceptor
    | grpc.UnaryStreamClientInterceptor
    | grpc.StreamUnaryClientInterceptor
    | grpc.StreamStreamClientInterceptor
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to connect (a gRPC target) and whether the connection uses TLS."""

    target: str
    host: str
    tls: bool


def is_loopback(host: str) -> bool:
    """Say whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_host_port(netloc: str, default_port: int, original: str) -> tuple[str, int]:
    try:
        parts = urlsplit("//" + netloc)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid endpoint {original!r}: {exc}") from None
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None:
        raise ValueError(f"invalid endpoint {original!r}: expected host[:port]")
    return host, default_port if port is None else port


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_endpoint(
    endpoint: str, *, allow_insecure: bool = False, force_tls: bool = False
) -> Endpoint:
    """Turn a user-facing endpoint into a gRPC target and a TLS decision.

    ``https://host[:port]`` is TLS (port 443 by default). ``http://host[:port]`` is plaintext and
    is refused for a host that is not loopback unless ``allow_insecure``. A bare ``host[:port]``
    is TLS except on loopback, or always TLS with ``force_tls`` (explicit channel credentials).
    ``unix:`` targets are local plaintext sockets.
    """
    raw = endpoint.strip() if isinstance(endpoint, str) else ""
    if not raw:
        raise ValueError(f"an endpoint is required (pass endpoint=... or set {ENV_ENDPOINT})")
    lowered = raw.lower()
    if lowered.startswith(_LOCAL_SCHEMES):
        if force_tls:
            raise ValueError(f"TLS credentials were given for the local socket {raw!r}")
        return Endpoint(target=raw, host="localhost", tls=False)
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest = "", raw
    scheme = scheme.lower()
    if scheme not in ("", "http", "https"):
        raise ValueError(f"unsupported endpoint scheme in {raw!r}: use https://host[:port]")
    rest = rest.rstrip("/")
    if "/" in rest or "?" in rest or "#" in rest:
        raise ValueError(f"invalid endpoint {raw!r}: a gRPC endpoint has no path")
    default_port = 80 if scheme == "http" else 443
    host, port = _split_host_port(rest, default_port, raw)
    if scheme == "https":
        tls = True
    elif scheme == "http":
        if force_tls:
            raise ValueError(f"TLS credentials were given for the plaintext endpoint {raw!r}")
        if not is_loopback(host):
            if not allow_insecure:
                raise ValueError(
                    f"refusing plaintext endpoint {raw!r}: credentials would travel unencrypted "
                    "to a host that is not loopback; use https://, or pass allow_insecure=True "
                    "if the network path is trusted"
                )
            _log.warning("using plaintext gRPC to non-loopback host %s (allow_insecure=True)", host)
        tls = False
    else:
        tls = force_tls or not is_loopback(host)
    return Endpoint(target=_target(host, port), host=host, tls=tls)


def check_compression(compression: object) -> grpc.Compression | None:
    """Return ``compression`` when Pug accepts it (gzip, or none), else raise ``ValueError``.

    Pug answers every request compressed any other way (deflate...) with ``UNIMPLEMENTED``, so
    a client built with it could deliver nothing.
    """
    if compression is None or (
        isinstance(compression, grpc.Compression) and compression in _ALLOWED_COMPRESSION
    ):
        return compression
    shown = compression.name if isinstance(compression, grpc.Compression) else repr(compression)
    raise ValueError(
        f"compression={shown} is not accepted by Pug, which answers every request compressed "
        "other than with gzip with UNIMPLEMENTED: use grpc.Compression.Gzip or None"
    )


def _channel_options(extra: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    user_agent = USER_AGENT
    merged: dict[str, Any] = {
        _RECEIVE_OPTION: RECEIVE_LIMIT,
        # A refusal's BadRequest detail (one violation per broken rule) can pass gRPC's 16 KiB
        # default; past it grpcio fails the call locally as RESOURCE_EXHAUSTED instead.
        _METADATA_OPTION: METADATA_LIMIT,
        **dict(KEEPALIVE_OPTIONS),
    }
    for key, value in extra:
        if key == _UA_OPTION:
            user_agent = f"{value} {USER_AGENT}"
        elif key == _RETRIES_OPTION:
            if value:
                _log.warning("ignoring %s=%r: retries are handled by pug-grpc", key, value)
        else:
            merged[key] = value
    # gRPC's built-in retries stay off: a second retry layer would multiply attempts and hide them
    # from the client's own accounting.
    merged[_UA_OPTION] = user_agent
    merged[_RETRIES_OPTION] = 0
    return list(merged.items())


def open_channel(
    endpoint: str,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    channel_options: Sequence[tuple[str, Any]] = (),
    allow_insecure: bool = False,
    compression: grpc.Compression | None = None,
) -> grpc.Channel:
    """Open the one channel a client uses, following the endpoint rules of :func:`parse_endpoint`.

    TLS uses ``credentials`` when given, else the system trust roots. The channel holds
    :data:`RECEIVE_LIMIT` and :data:`KEEPALIVE_OPTIONS` unless ``channel_options`` says
    otherwise; ``compression`` must pass :func:`check_compression`.
    """
    target, creds, options, compression = _channel_plan(
        endpoint, credentials, channel_options, allow_insecure, compression
    )
    if creds is not None:
        return grpc.secure_channel(target, creds, options, compression)
    return grpc.insecure_channel(target, options, compression)


def open_aio_channel(
    endpoint: str,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    channel_options: Sequence[tuple[str, Any]] = (),
    allow_insecure: bool = False,
    compression: grpc.Compression | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """:func:`open_channel` for ``grpc.aio``, with the same rules; call it in the running loop."""
    target, creds, options, compression = _channel_plan(
        endpoint, credentials, channel_options, allow_insecure, compression
    )
    if creds is not None:
        return grpc.aio.secure_channel(target, creds, options, compression, interceptors)
    return grpc.aio.insecure_channel(target, options, compression, interceptors)


def _channel_plan(
    endpoint: str,
    credentials: grpc.ChannelCredentials | None,
    channel_options: Sequence[tuple[str, Any]],
    allow_insecure: bool,
    compression: grpc.Compression | None,
) -> tuple[str, grpc.ChannelCredentials | None, list[tuple[str, Any]], grpc.Compression | None]:
    """Target, TLS credentials (``None``: plaintext), options and compression of a channel."""
    compression = check_compression(compression)
    parsed = parse_endpoint(
        endpoint, allow_insecure=allow_insecure, force_tls=credentials is not None
    )
    _log.debug("opening channel to %s (tls=%s)", parsed.target, parsed.tls)
    creds = None
    if parsed.tls:
        creds = credentials if credentials is not None else grpc.ssl_channel_credentials()
    return parsed.target, creds, _channel_options(channel_options), compression


def intercept(channel: grpc.Channel, *interceptors: _Interceptor) -> grpc.Channel:
    """Wrap ``channel`` so every call passes through ``interceptors`` (first one outermost)."""
    if not interceptors:
        return channel
    return grpc.intercept_channel(channel, *interceptors)
