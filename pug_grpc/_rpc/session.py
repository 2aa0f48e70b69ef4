"""A JWT session: the access/refresh token pair of a signed-in customer, kept fresh.

The access token is refreshed shortly before its ``exp`` claim (read without checking the
signature: only the server can, and it will) and once after the server answers
``UNAUTHENTICATED``. One lock serialises refreshes, and a generation number lets concurrent
callers that saw the same rejected token share a single refresh instead of each burning the
refresh token.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import ClassVar, Generic, TypeVar

from pug_grpc._credentials import mask
from pug_grpc._errors import PugAuthenticationError, PugError

__all__ = ["Refresher", "Session", "TokenPair", "TokenSession", "Tokens", "jwt_expiry"]

_log = logging.getLogger("pug_grpc.admin")

TokenPair = tuple[str, str]
Refresher = Callable[[str], TokenPair]
"""Trades a refresh token for a new (access, refresh) pair; raises :class:`PugError`."""

_F = TypeVar("_F")


def jwt_expiry(token: str | None) -> float | None:
    """The ``exp`` claim of a JWT in epoch seconds, or None when there is none to read."""
    if not token:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        value = float(exp)
        return value if math.isfinite(value) else None
    return None


class Tokens:
    """The token pair, its expiry and a generation number: the state both sessions keep.

    Holds no lock and does no I/O; :class:`Session` (threads) and
    ``pug_grpc._rpc.aio_session.AsyncSession`` (asyncio) wrap it with their own lock and
    refresher, so the refresh rules below exist once.
    """

    __slots__ = ("_clock", "_margin", "_on_tokens", "access", "expires_at", "generation", "refresh")

    def __init__(
        self,
        access_token: str | None,
        refresh_token: str | None,
        *,
        clock: Callable[[], float],
        refresh_margin: float,
        on_tokens: Callable[[str, str], None] | None,
    ) -> None:
        self._clock = clock
        self._margin = refresh_margin
        self._on_tokens = on_tokens
        self.access: str | None = access_token or None
        self.refresh: str | None = refresh_token or None
        self.expires_at = jwt_expiry(self.access)
        self.generation = 0

    def __repr__(self) -> str:
        return f"access={mask(self.access)}, refresh={mask(self.refresh)}"

    def set(self, access_token: str, refresh_token: str | None) -> None:
        """Adopt a new pair; an empty refresh token keeps the old one."""
        self.access = access_token or None
        if refresh_token:
            self.refresh = refresh_token
        self.expires_at = jwt_expiry(self.access)
        self.generation += 1
        _log.debug(
            "session tokens set: access %s, refresh %s", mask(self.access), mask(self.refresh)
        )
        if self._on_tokens is not None and self.access and self.refresh:
            self._on_tokens(self.access, self.refresh)

    def clear(self) -> None:
        """Forget both tokens."""
        self.access = self.refresh = None
        self.expires_at = None
        self.generation += 1

    def due(self) -> bool:
        """Whether :meth:`Session.prepare` should refresh now: expiring within the margin."""
        return (
            self.refresh is not None
            and self.expires_at is not None
            and self._clock() >= self.expires_at - self._margin
        )

    def refresh_token_to_trade(self) -> str:
        """The refresh token to send, or the error that says there is none."""
        if not self.refresh:
            raise PugAuthenticationError.client_side(
                "no refresh token: sign in again (or pass refresh_token=...)",
                reason="NO_REFRESH_TOKEN",
            )
        return self.refresh

    def adopt_refreshed(self, pair: TokenPair, why: str) -> None:
        """Keep the pair a refresh returned."""
        access, refresh = pair
        self.set(access, refresh)
        _log.info("session refreshed (%s); access token now %s", why, mask(access))

    def early_refresh_failed(self, exc: PugError) -> None:
        """Only log a failed early refresh while the token has time left; raise once expired."""
        if self.expires_at is not None and self._clock() >= self.expires_at:
            raise exc
        _log.warning("early session refresh failed, using current token: %s", exc)

    def answer_without_refresh(self, generation: int) -> bool | None:
        """After ``UNAUTHENTICATED`` for ``generation``: the answer when no refresh is needed.

        ``True`` (resend) when another caller refreshed since, ``False`` when there is nothing
        to refresh with, ``None`` when this caller must refresh now.
        """
        if generation != self.generation:
            return self.access is not None
        if not self.refresh:
            return False
        return None


class TokenSession(Generic[_F]):
    """What both sessions show of their :class:`Tokens`: the pair, its expiry, set and clear.

    ``refresher`` trades a refresh token for a new pair. ``_new_lock`` makes what guards every
    read and change: a real lock for threads; nothing on asyncio, where one task runs at a time.
    """

    _new_lock: ClassVar[Callable[[], AbstractContextManager[object]]] = contextlib.nullcontext

    def __init__(
        self,
        refresher: _F,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        clock: Callable[[], float],
        refresh_margin: float = 60.0,
        on_tokens: Callable[[str, str], None] | None = None,
    ) -> None:
        self._refresher = refresher
        self._lock = type(self)._new_lock()
        self._tokens = Tokens(
            access_token,
            refresh_token,
            clock=clock,
            refresh_margin=refresh_margin,
            on_tokens=on_tokens,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._tokens!r})"

    @property
    def access_token(self) -> str | None:
        """The current access token, if any."""
        with self._lock:
            return self._tokens.access

    @property
    def refresh_token(self) -> str | None:
        """The current refresh token, if any."""
        with self._lock:
            return self._tokens.refresh

    @property
    def expires_at(self) -> float | None:
        """Epoch seconds from the access token's ``exp`` claim, when it has one."""
        with self._lock:
            return self._tokens.expires_at

    def set_tokens(self, access_token: str, refresh_token: str | None) -> None:
        """Adopt a new pair (sign-in or refresh); an empty refresh token keeps the old one."""
        with self._lock:
            self._tokens.set(access_token, refresh_token)

    def clear(self) -> None:
        """Forget both tokens (after sign-out)."""
        with self._lock:
            self._tokens.clear()


class Session(TokenSession[Refresher]):
    """Thread-safe holder of the token pair; see the module docstring for the refresh rules."""

    _new_lock = threading.RLock

    def _do_refresh(self, why: str) -> None:
        tokens = self._tokens
        tokens.adopt_refreshed(self._refresher(tokens.refresh_token_to_trade()), why)

    def refresh(self) -> None:
        """Trade the refresh token for a new pair now."""
        with self._lock:
            self._do_refresh("requested")

    def prepare(self) -> int:
        """Refresh an access token that expires within the margin; return the generation.

        A failed early refresh is only logged while the current token still has time left; once it
        has expired the failure is raised, since sending it could only be refused.
        """
        with self._lock:
            if self._tokens.due():
                try:
                    self._do_refresh("expiring")
                except PugError as exc:
                    self._tokens.early_refresh_failed(exc)
            return self._tokens.generation

    def token_for_call(self) -> str | None:
        """The access token for the credentials interceptor: refreshed if due, never raising.

        Calls made through the facade have already run :meth:`prepare`; this covers typed stubs
        used directly on the admin channel.
        """
        try:
            self.prepare()
        except PugError as exc:
            _log.warning("session refresh failed: %s", exc)
        return self.access_token

    def recover(self, generation: int) -> bool:
        """After ``UNAUTHENTICATED`` for ``generation``: refresh once; say whether to resend."""
        with self._lock:
            answer = self._tokens.answer_without_refresh(generation)
            if answer is not None:
                return answer
            try:
                self._do_refresh("rejected by server")
            except PugError as exc:
                _log.warning("session refresh after UNAUTHENTICATED failed: %s", exc)
                return False
            return True
