"""A JWT session: the access/refresh token pair of a signed-in customer, kept fresh.

The access token is refreshed shortly before its ``exp`` claim (read without checking the
signature: only the server can, and it will) and once after the server answers
``UNAUTHENTICATED``. One lock serialises refreshes, and a generation number lets concurrent
callers that saw the same rejected token share a single refresh instead of each burning the
refresh token.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
from collections.abc import Callable

from pug_grpc._credentials import mask
from pug_grpc._errors import PugAuthenticationError, PugError

__all__ = ["Session", "jwt_expiry"]

_log = logging.getLogger("pug_grpc.admin")

TokenPair = tuple[str, str]
Refresher = Callable[[str], TokenPair]
"""Trades a refresh token for a new (access, refresh) pair; raises :class:`PugError`."""


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


class Session:
    """Thread-safe holder of the token pair; see the module docstring for the refresh rules."""

    def __init__(
        self,
        refresher: Refresher,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        clock: Callable[[], float],
        refresh_margin: float = 60.0,
        on_tokens: Callable[[str, str], None] | None = None,
    ) -> None:
        self._refresher = refresher
        self._clock = clock
        self._margin = refresh_margin
        self._on_tokens = on_tokens
        self._lock = threading.RLock()
        self._access: str | None = access_token or None
        self._refresh: str | None = refresh_token or None
        self._expires_at = jwt_expiry(self._access)
        self._generation = 0

    def __repr__(self) -> str:
        return f"Session(access={mask(self._access)}, refresh={mask(self._refresh)})"

    @property
    def access_token(self) -> str | None:
        """The current access token, if any."""
        with self._lock:
            return self._access

    @property
    def refresh_token(self) -> str | None:
        """The current refresh token, if any."""
        with self._lock:
            return self._refresh

    @property
    def expires_at(self) -> float | None:
        """Epoch seconds from the access token's ``exp`` claim, when it has one."""
        with self._lock:
            return self._expires_at

    def set_tokens(self, access_token: str, refresh_token: str | None) -> None:
        """Adopt a new pair (sign-in or refresh); an empty refresh token keeps the old one."""
        with self._lock:
            self._access = access_token or None
            if refresh_token:
                self._refresh = refresh_token
            self._expires_at = jwt_expiry(self._access)
            self._generation += 1
            _log.debug(
                "session tokens set: access %s, refresh %s", mask(self._access), mask(self._refresh)
            )
            if self._on_tokens is not None and self._access and self._refresh:
                self._on_tokens(self._access, self._refresh)

    def clear(self) -> None:
        """Forget both tokens (after sign-out)."""
        with self._lock:
            self._access = self._refresh = None
            self._expires_at = None
            self._generation += 1

    def _expiring(self) -> bool:
        return self._expires_at is not None and self._clock() >= self._expires_at - self._margin

    def _expired(self) -> bool:
        return self._expires_at is not None and self._clock() >= self._expires_at

    def _do_refresh(self, why: str) -> None:
        token = self._refresh
        if not token:
            raise PugAuthenticationError.client_side(
                "no refresh token: sign in again (or pass refresh_token=...)",
                reason="NO_REFRESH_TOKEN",
            )
        access, refresh = self._refresher(token)
        self.set_tokens(access, refresh)
        _log.info("session refreshed (%s); access token now %s", why, mask(access))

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
            if self._refresh and self._expiring():
                try:
                    self._do_refresh("expiring")
                except PugError as exc:
                    if self._expired():
                        raise
                    _log.warning("early session refresh failed, using current token: %s", exc)
            return self._generation

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
            if generation != self._generation:
                return self._access is not None  # another caller already refreshed
            if not self._refresh:
                return False
            try:
                self._do_refresh("rejected by server")
            except PugError as exc:
                _log.warning("session refresh after UNAUTHENTICATED failed: %s", exc)
                return False
            return True
