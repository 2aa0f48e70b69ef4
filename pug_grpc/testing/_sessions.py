"""The JWT sessions of the local server's one configured user.

Access tokens are real HS256 JWTs with ``exp``/``iat``/``sub``/``sid`` claims so clients can
read their expiry; refresh tokens are opaque and rotate on every refresh.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pug_grpc.testing._status import unauthenticated

__all__ = ["SessionIssuer"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class _Session:
    user_id: str
    refresh_token: str
    revoked: bool = False


class SessionIssuer:
    """Signs access tokens and keeps refresh tokens for the one configured user."""

    def __init__(
        self,
        *,
        email: str,
        password: str,
        user_id: str,
        project_id: str,
        secret: bytes,
        access_ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self.email = email
        self._password = password
        self.user_id = user_id
        self.project_id = project_id
        self._secret = secret
        self.access_ttl = access_ttl
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._by_refresh: dict[str, str] = {}
        self._lock = threading.Lock()

    def sign_in(self, email: str, password: str) -> tuple[str, str]:
        """A new session when email (any case) and password match; ``UNAUTHENTICATED`` if not."""
        ok_email = hmac.compare_digest(email.lower().encode(), self.email.lower().encode())
        ok_password = hmac.compare_digest(password.encode(), self._password.encode())
        if not (ok_email and ok_password):
            raise unauthenticated("invalid email or password")
        return self.new_session()

    def new_session(self) -> tuple[str, str]:
        """Start a session for the configured user: (access token, refresh token)."""
        session_id = "sess_" + secrets.token_hex(8)
        refresh = "rt_" + secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = _Session(self.user_id, refresh)
            self._by_refresh[refresh] = session_id
        return self.access_token(session_id), refresh

    def refresh(self, refresh_token: str) -> tuple[str, str]:
        """Trade a refresh token for a new pair; the old refresh token is spent."""
        with self._lock:
            session_id = self._by_refresh.pop(refresh_token, None)
            session = self._sessions.get(session_id or "")
            if session is None or session.revoked:
                raise unauthenticated("refresh token is invalid, used or revoked")
            session.refresh_token = "rt_" + secrets.token_urlsafe(32)
            self._by_refresh[session.refresh_token] = session_id or ""
            refresh = session.refresh_token
        return self.access_token(session_id or ""), refresh

    def sign_out(self, refresh_token: str) -> None:
        """Revoke the session of ``refresh_token``: its access tokens stop working too."""
        with self._lock:
            session_id = self._by_refresh.pop(refresh_token, None)
            if session_id is not None:
                self._sessions[session_id].revoked = True

    def access_token(self, session_id: str, *, ttl: float | None = None) -> str:
        """A signed access token of ``session_id``, valid ``ttl`` (or the configured) seconds."""
        now = int(self._clock())
        claims = {
            "iss": "pug-local",
            "sub": self.user_id,
            "email": self.email,
            "sid": session_id,
            "iat": now,
            "exp": now + int(self.access_ttl if ttl is None else ttl),
            "jti": secrets.token_hex(8),
        }
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self._secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        return f"{header}.{body}.{_b64(signature)}"

    def verify(self, token: str) -> Mapping[str, object]:
        """Return the claims of a valid, unexpired, unrevoked access token."""
        try:
            header, body, signature = token.split(".")
            expected = hmac.new(self._secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(_unb64(signature), expected):
                raise ValueError("bad signature")
            claims = json.loads(_unb64(body))
            if not isinstance(claims, dict):
                raise ValueError("claims are not an object")
            expires = float(claims["exp"])
        except (ValueError, KeyError, TypeError) as exc:
            raise unauthenticated("access token is malformed or not signed by this server") from exc
        if expires <= self._clock():
            raise unauthenticated("access token has expired")
        with self._lock:
            session = self._sessions.get(str(claims.get("sid", "")))
            if session is None or session.revoked:
                raise unauthenticated("the session of this access token was signed out")
        return claims
