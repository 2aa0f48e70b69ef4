"""Why a connection failed, in words a user can act on: one classifier for every caller.

gRPC and the Connect runtime both report a failed connection as ``UNAVAILABLE`` with the real
cause buried in the text (``Failed parsing HTTP/2 (Expected SETTINGS frame ...)`` when the
endpoint speaks HTTP/1.x, ``Connection refused``, ``Domain name not found``, a TLS handshake
error...). :func:`diagnose` reads that text and answers with a :class:`Diagnosis`, or ``None``
when the failure is not a connection problem it recognises. Reads raise it as a
``PugConnectionError``; ingestion and the command line use the same function to report the
cause once instead of retrying a misconfiguration for minutes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Cause", "Diagnosis", "diagnose"]


class Cause(enum.StrEnum):
    """What went wrong while connecting; the value is also the error's ``reason`` token."""

    HTTP1_ENDPOINT = "HTTP1_ENDPOINT"
    """The endpoint answered in HTTP/1.x, which native gRPC cannot speak."""
    HTTP2_ONLY_ENDPOINT = "HTTP2_ONLY_ENDPOINT"
    """A Connect (HTTP/1.1) call reached an endpoint that speaks only HTTP/2 gRPC."""
    CONNECTION_REFUSED = "CONNECTION_REFUSED"
    """Nothing listens at that address and port (yet)."""
    NAME_NOT_FOUND = "NAME_NOT_FOUND"
    """The host name does not resolve."""
    TLS_TO_PLAINTEXT_PORT = "TLS_TO_PLAINTEXT_PORT"
    """TLS was spoken to a port that expects plaintext."""
    PLAINTEXT_TO_TLS_PORT = "PLAINTEXT_TO_TLS_PORT"
    """Plaintext was spoken to a port that expects TLS."""
    TLS_UNTRUSTED = "TLS_UNTRUSTED"
    """The server's certificate is not trusted by the roots in use."""


_RETRYABLE = frozenset({Cause.CONNECTION_REFUSED})
"""Causes that can clear up by themselves (a server restarting); the rest are configuration."""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The cause of a failed connection and a message that says how to fix it.

    ``retryable`` is False for a misconfiguration, which the same request cannot outlive.
    """

    cause: Cause
    message: str

    @property
    def retryable(self) -> bool:
        """True when waiting and trying again may help."""
        return self.cause in _RETRYABLE

    @property
    def reason(self) -> str:
        """The stable token for the cause (``HTTP1_ENDPOINT``...)."""
        return self.cause.value


_MESSAGES: dict[Cause, str] = {
    Cause.HTTP1_ENDPOINT: (
        "the endpoint speaks HTTP/1.x, but native gRPC needs HTTP/2 (Pug's own server port is "
        "HTTP/1.1 only). Either put an HTTP/2 front in between that forwards gRPC with its "
        "trailers to Pug (Caddy, Envoy or Traefik; the hosted endpoint has one), or use "
        'transport="connect", which speaks the Connect protocol over HTTP/1.1'
    ),
    Cause.HTTP2_ONLY_ENDPOINT: (
        "the endpoint does not speak HTTP/1.1 and answered the Connect protocol's request as "
        'an HTTP/2-only gRPC server does: use transport="grpc" for it'
    ),
    Cause.CONNECTION_REFUSED: (
        "the connection was refused: nothing listens at that address and port (is the server "
        "running, and is the port right?)"
    ),
    Cause.NAME_NOT_FOUND: "the host name was not found: check the endpoint's spelling and DNS",
    Cause.TLS_TO_PLAINTEXT_PORT: (
        "the TLS handshake failed because the port answered in plaintext: use http://host:port "
        "for a plaintext port (loopback, or allow_insecure=True elsewhere), or point https:// "
        "at the TLS port of your front"
    ),
    Cause.PLAINTEXT_TO_TLS_PORT: (
        "the server closed the plaintext connection at once, as a TLS port does: use "
        "https://host:port for it"
    ),
    Cause.TLS_UNTRUSTED: (
        "the server's TLS certificate is not trusted: pass credentials= with the right root "
        "certificate (for example grpc.ssl_channel_credentials(root_certificates=...)), or fix "
        "the server's certificate chain"
    ),
}

# (cause, lower-case fragments any of which identify it), tried in order.
_PATTERNS: tuple[tuple[Cause, tuple[str, ...]], ...] = (
    (
        Cause.HTTP1_ENDPOINT,
        (
            "expected settings frame",  # grpcio reading an HTTP/1.x reply
            "trying to connect an http1.x server",  # grpcio 1.80, an HTTP/1.x status line
            "missing selected alpn",  # a TLS server that did not offer h2
            "http_1_1_required",
        ),
    ),
    (
        Cause.HTTP2_ONLY_ENDPOINT,
        (
            "invalid http version parsed",  # an HTTP/2 reply to an HTTP/1.1 request
            "received unexpected message from connection",  # the server's preface came first
        ),
    ),
    (
        Cause.TLS_TO_PLAINTEXT_PORT,
        (
            "wrong_version_number",
            "wrong version number",
            "corrupt message of type invalidcontenttype",
        ),
    ),
    (
        Cause.TLS_UNTRUSTED,
        (
            "certificate_verify_failed",
            "certificate verify failed",
            "invalid peer certificate",
            "self signed certificate",
        ),
    ),
    (Cause.CONNECTION_REFUSED, ("connection refused",)),
    (
        Cause.NAME_NOT_FOUND,
        (
            "domain name not found",
            "dns resolution failed",
            "errors resolving",
            "dns error",
            "name or service not known",
            "nodename nor servname",
            "no address associated with hostname",
            "temporary failure in name resolution",
        ),
    ),
    # Last: grpcio before 1.85 says only "Failed parsing HTTP/2" for an HTTP/1.x reply (no
    # frame detail); a TLS port hangs up instead (socket closed), so the bytes were HTTP/1.x.
    (Cause.HTTP1_ENDPOINT, ("failed parsing http/2",)),
)

_LOCAL_FAILURE = (
    "failed to connect to all addresses",  # grpcio, connecting
    "errors resolving",  # grpcio, resolving
    "dns resolution failed",
    "error sending request for url",  # the Connect runtime's HTTP client
)
"""Text that only a failure on this side carries: a server's own message (an ``INTERNAL``
"connection refused" from its database, a front's 503) is never taken for ours."""

_CLOSED_AT_ONCE = ("socket closed", "connection reset by peer", "connection closed before message")
"""How a TLS port looks to a plaintext client: the server hangs up before any HTTP/2 or HTTP."""


def _texts(error: BaseException) -> Iterator[str]:
    """The error's own text and that of its causes, each at most once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for name in ("details", "message"):
            value = getattr(current, name, None)
            if callable(value):
                try:
                    value = value()
                except Exception:
                    value = None
            if isinstance(value, str) and value:
                yield value
        yield str(current)
        current = current.__cause__ or current.__context__


def _describe(cause: Cause, endpoint: str | None) -> Diagnosis:
    where = f"{endpoint}: " if endpoint else ""
    return Diagnosis(cause, where + _MESSAGES[cause])


def diagnose(
    error: BaseException, *, tls: bool | None = None, endpoint: str | None = None
) -> Diagnosis | None:
    """Classify a failed call's connection problem, or return ``None`` when it is not one.

    ``error`` is a ``grpc.RpcError``, a Connect runtime error, or an exception raised from one
    (its ``__cause__`` chain is read too). ``tls`` says whether the connection used TLS, when
    the caller knows: a plaintext connection that the server closed at once is then reported
    as :attr:`Cause.PLAINTEXT_TO_TLS_PORT`. ``endpoint`` is quoted at the start of the message.
    """
    text = " | ".join(_texts(error)).lower()
    if not any(marker in text for marker in _LOCAL_FAILURE):
        return None
    for cause, fragments in _PATTERNS:
        if any(fragment in text for fragment in fragments):
            return _describe(cause, endpoint)
    if tls is False and any(fragment in text for fragment in _CLOSED_AT_ONCE):
        return _describe(Cause.PLAINTEXT_TO_TLS_PORT, endpoint)
    return None
