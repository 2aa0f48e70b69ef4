"""Endpoint parsing, the TLS/plaintext rules, and channel construction.

The rules exist so that a ``prv_`` key never travels in clear text by accident: plaintext is only
chosen for loopback addresses, or for another host when the caller opts in with
``allow_insecure=True``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc

from pug_grpc._version import __version__

__all__ = [
    "USER_AGENT",
    "Endpoint",
    "intercept",
    "is_loopback",
    "open_channel",
    "parse_endpoint",
]

_log = logging.getLogger("pug_grpc.transport")

USER_AGENT = f"pug-grpc/{__version__}"

_UA_OPTION = "grpc.primary_user_agent"
_RETRIES_OPTION = "grpc.enable_retries"
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
        raise ValueError("an endpoint is required (pass endpoint=... or set PUG_ENDPOINT)")
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


def _channel_options(extra: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    user_agent = USER_AGENT
    merged: dict[str, Any] = {}
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

    TLS uses ``credentials`` when given, else the system trust roots.
    """
    parsed = parse_endpoint(
        endpoint, allow_insecure=allow_insecure, force_tls=credentials is not None
    )
    options = _channel_options(channel_options)
    _log.debug("opening channel to %s (tls=%s)", parsed.target, parsed.tls)
    if parsed.tls:
        creds = credentials if credentials is not None else grpc.ssl_channel_credentials()
        return grpc.secure_channel(parsed.target, creds, options, compression)
    return grpc.insecure_channel(parsed.target, options, compression)


def intercept(channel: grpc.Channel, *interceptors: _Interceptor) -> grpc.Channel:
    """Wrap ``channel`` so every call passes through ``interceptors`` (first one outermost)."""
    if not interceptors:
        return channel
    return grpc.intercept_channel(channel, *interceptors)
