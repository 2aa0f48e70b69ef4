"""The shared reads on an API-key client: what ``Pug.profiles/activity/insights`` are built from.

A ``pub_`` key is meant for browsers and apps and the server refuses it on these services; the
guard here refuses it first, before a request (and the key) leaves the process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import grpc
import tenacity

from pug_grpc._credentials import mask
from pug_grpc._errors import PugError, PugPublicKeyError
from pug_grpc._rpc.activity import Activity
from pug_grpc._rpc.call import CallContext
from pug_grpc._rpc.insights import Insights
from pug_grpc._rpc.profiles import Profiles

__all__ = ["Activity", "Insights", "Profiles", "Reads", "public_key_guard"]


def public_key_guard(api_key: str | None) -> Callable[[], None] | None:
    """A guard that refuses every read when ``api_key`` is a ``pub_`` key (None otherwise)."""
    if api_key is None or not api_key.startswith("pub_"):
        return None
    shown = mask(api_key)

    def refuse() -> None:
        raise PugPublicKeyError.client_side(
            f"the API key {shown} is a public (pub_) key, which cannot read data: profiles, "
            "activity and insights need a private prv_ key (server side only) or a PugAdmin "
            "session",
            reason="PUBLIC_KEY_NOT_ALLOWED",
        )

    return refuse


class _Bound(NamedTuple):
    channel: grpc.Channel
    profiles: Profiles
    activity: Activity
    insights: Insights


class Reads:
    """The three read namespaces of an API-key client, built on first use.

    ``channel`` is the channel or a function returning the client's current one (a client may
    replace its channel, e.g. after a fork); the namespaces are rebuilt when it changes.
    ``is_closed`` reports whether the owning client is closed, checked before every call.
    """

    __slots__ = ("_bound", "_channel", "_ctx")

    def __init__(
        self,
        channel: grpc.Channel | Callable[[], grpc.Channel],
        *,
        api_key: str | None,
        timeout: float | None = 30.0,
        retry: tenacity.Retrying | None = None,
        project_id: str | None = None,
        is_closed: Callable[[], bool] | None = None,
    ) -> None:
        self._channel = channel
        public_key = public_key_guard(api_key)

        def guard() -> None:
            if is_closed is not None and is_closed():
                raise PugError.client_side("this client is closed", reason="CLIENT_CLOSED")
            if public_key is not None:
                public_key()

        self._ctx = CallContext(timeout=timeout, retry=retry, project_id=project_id, guard=guard)
        self._bound: _Bound | None = None

    def _current(self) -> _Bound:
        if isinstance(self._channel, grpc.Channel):
            channel = self._channel
        else:
            try:
                channel = self._channel()
            except (AssertionError, ValueError) as exc:
                raise PugError.client_side(
                    f"this client has no channel to read through ({exc or 'no endpoint'}): "
                    "pass endpoint=... or channel=...",
                    reason="NO_CHANNEL",
                ) from exc
        bound = self._bound
        if bound is None or bound.channel is not channel:
            bound = _Bound(
                channel,
                Profiles(channel, self._ctx),
                Activity(channel, self._ctx),
                Insights(channel, self._ctx),
            )
            self._bound = bound
        return bound

    @property
    def profiles(self) -> Profiles:
        return self._current().profiles

    @property
    def activity(self) -> Activity:
        return self._current().activity

    @property
    def insights(self) -> Insights:
        return self._current().insights
