"""API-key checks, secret masking and the channel-level credentials interceptor.

Credentials travel as gRPC metadata added by one interceptor on the channel, so every stub built
on that channel carries them and no call site can forget them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import grpc

from pug_grpc._names import (
    API_KEY_HEADER,
    AUTHORIZATION_HEADER,
    ENV_API_KEY,
    KEY_PREFIXES,
    PROJECT_HEADER,
    PUBLIC_KEY_PREFIX,
)

if TYPE_CHECKING:
    from grpc import _CallFuture, _CallIterator, _Metadata

__all__ = ["CredentialHeaders", "CredentialsInterceptor", "check_api_key", "mask"]

_MIN_REVEAL_LEN = 9
"""Secrets shorter than this are masked whole: showing four characters of them reveals too much."""

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


def mask(secret: str | None) -> str:
    """Return a loggable stand-in for a secret: ``****`` plus its last four characters."""
    if not secret:
        return "<none>"
    if len(secret) < _MIN_REVEAL_LEN:
        return "****"
    return "****" + secret[-4:]


def check_api_key(key: str) -> str:
    """Return ``key`` when it looks like a Pug API key, else raise ``ValueError``.

    The message names the key only through :func:`mask`, so it is safe to log or show.
    """
    if not isinstance(key, str):
        raise ValueError(f"the API key must be a string, not {type(key).__name__}")
    if not key:
        raise ValueError(f"an API key is required (pass api_key=... or set {ENV_API_KEY})")
    if not key.startswith(KEY_PREFIXES):
        raise ValueError(
            f"the API key {mask(key)} must start with {' or '.join(map(repr, KEY_PREFIXES))}"
        )
    if len(key) == len(PUBLIC_KEY_PREFIX):
        raise ValueError("the API key has a prefix but nothing after it")
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        # gRPC metadata values must be printable ASCII; a pasted newline is the usual culprit.
        raise ValueError(f"the API key {mask(key)} contains whitespace or non-ASCII characters")
    return key


class _CallDetailsTuple(NamedTuple):
    method: str
    timeout: float | None
    metadata: _Metadata | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _CallDetails(_CallDetailsTuple, grpc.ClientCallDetails):
    """Concrete call details: grpc only ships the abstract class."""


class CredentialHeaders:
    """The credential headers of one client, computed for each call.

    ``x-api-key`` carries an API key; ``authorization: Bearer <token>`` carries the JWT returned by
    ``access_token()`` at call time (so a refreshed token is picked up without rebuilding
    anything; ``None`` means "no token now"); ``x-project-id`` is added when a project id is set.
    Each configured credential is sent. The gRPC interceptor below and the Connect transport
    both send exactly these headers.
    """

    __slots__ = ("_access_token", "_api_key", "_project_id", "_static")

    def __init__(
        self,
        *,
        api_key: str | None = None,
        access_token: Callable[[], str | None] | None = None,
        project_id: str | None = None,
    ) -> None:
        self._api_key = check_api_key(api_key) if api_key is not None else None
        self._access_token = access_token
        self._project_id = project_id or None
        static: list[tuple[str, str]] = []
        if self._api_key is not None:
            static.append((API_KEY_HEADER, self._api_key))
        if self._project_id is not None:
            static.append((PROJECT_HEADER, self._project_id))
        self._static = tuple(static)

    @property
    def api_key(self) -> str | None:
        """The API key sent in ``x-api-key``, if any."""
        return self._api_key

    def __repr__(self) -> str:
        token = "<callable>" if self._access_token is not None else "<none>"
        return (
            f"api_key={mask(self._api_key)!r}, access_token={token}, "
            f"project_id={self._project_id!r}"
        )

    def headers(self) -> list[tuple[str, str]]:
        """The headers to send now (lower-case names)."""
        headers = list(self._static)
        if self._access_token is not None:
            token = self._access_token()
            if token:
                headers.append((AUTHORIZATION_HEADER, "Bearer " + token))
        return headers

    def merged(self, existing: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """``existing`` plus every credential header it does not carry already.

        A header the call carries in its own metadata is kept as is (a per-call override),
        never duplicated.
        """
        present = {key.lower() for key, _ in existing}
        return (*existing, *((k, v) for k, v in self.headers() if k not in present))


class CredentialsInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Add the :class:`CredentialHeaders` to every call on a channel.

    Takes either ready ``credentials`` or the keywords of :class:`CredentialHeaders`.
    """

    __slots__ = ("_credentials",)

    def __init__(
        self,
        credentials: CredentialHeaders | None = None,
        *,
        api_key: str | None = None,
        access_token: Callable[[], str | None] | None = None,
        project_id: str | None = None,
    ) -> None:
        if credentials is None:
            credentials = CredentialHeaders(
                api_key=api_key, access_token=access_token, project_id=project_id
            )
        self._credentials = credentials

    def __repr__(self) -> str:
        return f"CredentialsInterceptor({self._credentials!r})"

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        existing: _Metadata = tuple(details.metadata or ())
        merged = self._credentials.merged(existing)  # type: ignore[arg-type]
        if len(merged) == len(existing):
            return details
        return _CallDetails(
            details.method,
            details.timeout,
            merged,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Req], _CallFuture[_Resp]],
        client_call_details: grpc.ClientCallDetails,
        request: _Req,
    ) -> _CallFuture[_Resp]:
        """Add the credential headers to a unary call."""
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Req], _CallIterator[_Resp]],
        client_call_details: grpc.ClientCallDetails,
        request: _Req,
    ) -> _CallIterator[_Resp]:
        """Add the credential headers to a server-streaming call."""
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Iterator[_Req]], _CallFuture[_Resp]],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[_Req],
    ) -> _CallFuture[_Resp]:
        """Add the credential headers to a client-streaming call."""
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Iterator[_Req]], _CallIterator[_Resp]],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[_Req],
    ) -> _CallIterator[_Resp]:
        """Add the credential headers to a bidirectional call."""
        return continuation(self._details(client_call_details), request_iterator)
