"""The shared reads on an API-key client: what ``Pug.profiles/activity/insights`` are built from.

A ``pub_`` key is meant for browsers and apps and the server refuses it on these services; the
guard here refuses it first, before a request (and the key) leaves the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple

import grpc

from pug_grpc._credentials import CredentialHeaders, mask
from pug_grpc._errors import PugError, PugPublicKeyError
from pug_grpc._names import PRIVATE_KEY_PREFIX, PUBLIC_KEY_PREFIX, is_public_key
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.activity import Activity
from pug_grpc._rpc.aio_transport import AsyncTransport
from pug_grpc._rpc.call import CallContext
from pug_grpc._rpc.insights import Insights
from pug_grpc._rpc.profiles import Profiles
from pug_grpc._rpc.transport import GrpcTransport, Transport

__all__ = ["Activity", "Insights", "Profiles", "Reads", "connect_reads", "public_key_guard"]


def public_key_guard(api_key: str | None) -> Callable[[], None] | None:
    """A guard that refuses every read when ``api_key`` is a ``pub_`` key (None otherwise)."""
    if not is_public_key(api_key):
        return None
    shown = mask(api_key)

    def refuse() -> None:
        raise PugPublicKeyError.client_side(
            f"the API key {shown} is a public ({PUBLIC_KEY_PREFIX}) key, which cannot read data: "
            f"profiles, activity and insights need a private {PRIVATE_KEY_PREFIX} key (server "
            "side only) or a PugAdmin session",
            reason="PUBLIC_KEY_NOT_ALLOWED",
        )

    return refuse


def _retry_settings(retry: object) -> RetrySettings | None:
    if retry is None or isinstance(retry, RetrySettings):
        return retry
    raise TypeError(f"read retries take pug_grpc.RetrySettings or None, not {type(retry).__name__}")


class _Bound(NamedTuple):
    source: Transport | AsyncTransport | grpc.Channel
    profiles: Profiles
    activity: Activity
    insights: Insights


Source = Transport | AsyncTransport | grpc.Channel | Callable[[], grpc.Channel]
"""A transport, a channel, or a function returning the client's current channel."""


class Reads:
    """The three read namespaces of an API-key client, built on first use.

    ``source`` is a :class:`~pug_grpc._rpc.transport.Transport` (gRPC or Connect), a channel
    that already carries the credentials, or a function returning the client's current channel
    (a client may replace its channel, e.g. after a fork; the namespaces are rebuilt when it
    changes). ``retry`` (a :class:`RetrySettings`, ``None`` for none) is the default for reads
    that only read. ``is_closed`` reports whether the owning client is closed, checked before
    every call. ``endpoint`` and ``tls`` describe a channel's connection for the messages of
    connection failures (a transport knows its own). ``asynchronous`` marks an
    :class:`~pug_grpc._rpc.aio_transport.AsyncTransport` source: the namespaces are then the
    cores of the asyncio ones (``pug_grpc.AsyncPug``).
    """

    __slots__ = ("_bound", "_defaults", "_endpoint", "_source", "_tls")

    def __init__(
        self,
        source: Source,
        *,
        api_key: str | None,
        timeout: float | None = 30.0,
        retry: RetrySettings | object | None = None,
        project_id: str | None = None,
        is_closed: Callable[[], bool] | None = None,
        endpoint: str | None = None,
        tls: bool | None = None,
        asynchronous: bool = False,
    ) -> None:
        # ``object`` in the annotation keeps callers still typed for the old tenacity parameter
        # compiling; anything but RetrySettings or None is refused here, at construction.
        settings = _retry_settings(retry)
        self._source = source
        self._endpoint = endpoint
        self._tls = tls
        public_key = public_key_guard(api_key)

        def guard() -> None:
            if is_closed is not None and is_closed():
                raise PugError.client_side("this client is closed", reason="CLIENT_CLOSED")
            if public_key is not None:
                public_key()

        self._defaults: dict[str, Any] = {
            "timeout": timeout,
            "retry": settings,
            "project_id": project_id,
            "guard": guard,
            "api_key": api_key is not None,
        }
        if asynchronous:
            self._defaults.update(asynchronous=True, sleep=asyncio.sleep)
        self._bound: _Bound | None = None

    def _current_source(self) -> Transport | AsyncTransport | grpc.Channel:
        source = self._source
        if isinstance(source, grpc.Channel) or not callable(source):
            return source
        try:
            return source()
        except (AssertionError, ValueError) as exc:
            raise PugError.client_side(
                f"this client has no channel to read through ({exc or 'no endpoint'}): "
                "pass endpoint=... or channel=...",
                reason="NO_CHANNEL",
            ) from exc

    def _current(self) -> _Bound:
        source = self._current_source()
        bound = self._bound
        if bound is None or bound.source is not source:
            transport = (
                GrpcTransport(source, endpoint=self._endpoint, tls=self._tls)
                if isinstance(source, grpc.Channel)
                else source
            )
            ctx = CallContext(transport=transport, **self._defaults)
            bound = _Bound(source, Profiles(ctx), Activity(ctx), Insights(ctx))
            self._bound = bound
        return bound

    @property
    def profiles(self) -> Profiles:
        """Read and delete profiles."""
        return self._current().profiles

    @property
    def activity(self) -> Activity:
        """A user's events, the event explorer and per-user stats."""
        return self._current().activity

    @property
    def insights(self) -> Insights:
        """Insight queries and segments."""
        return self._current().insights


def connect_reads(
    endpoint: str,
    *,
    api_key: str,
    project_id: str | None = None,
    timeout: float | None = 30.0,
    retry: RetrySettings | None = None,
    allow_insecure: bool = False,
    root_certificates: bytes | None = None,
    is_closed: Callable[[], bool] | None = None,
) -> tuple[Reads, Transport]:
    """The reads of an API-key client over the Connect protocol, and the transport they use.

    The caller owns the transport (close it with the client) and may share it with ingestion
    (``ConnectTransport.send_encoded``).
    """
    from pug_grpc._rpc.connect import ConnectTransport

    transport = ConnectTransport(
        endpoint,
        credentials=CredentialHeaders(api_key=api_key, project_id=project_id),
        allow_insecure=allow_insecure,
        root_certificates=root_certificates,
    )
    reads = Reads(
        transport,
        api_key=api_key,
        timeout=timeout,
        retry=retry,
        project_id=project_id,
        is_closed=is_closed,
    )
    return reads, transport
