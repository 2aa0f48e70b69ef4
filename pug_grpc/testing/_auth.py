"""Credentials the local server accepts, per service family, and the JWT sessions it issues.

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

import grpc

from pug_grpc.testing._status import ServerError

__all__ = ["Authenticator", "Caller", "SessionIssuer", "family_of"]


def family_of(method: str) -> str:
    """``sdk``, ``shared``, ``dashboard`` or ``public``, from a full method path."""
    service = method.lstrip("/")
    for family in ("sdk", "shared", "dashboard"):
        if service.startswith(family + "."):
            return family
    return "public"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _unauthenticated(message: str) -> ServerError:
    return ServerError(grpc.StatusCode.UNAUTHENTICATED, message, "UNAUTHENTICATED")


@dataclass(frozen=True)
class Caller:
    """Who made a call: the project it acts on and how it proved it."""

    project_id: str
    credential: str  # "public_key", "private_key", "jwt" or "none"
    user_id: str = ""


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
        ok_email = hmac.compare_digest(email.lower(), self.email.lower())
        ok_password = hmac.compare_digest(password.encode(), self._password.encode())
        if not (ok_email and ok_password):
            raise _unauthenticated("invalid email or password")
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
        with self._lock:
            session_id = self._by_refresh.pop(refresh_token, None)
            session = self._sessions.get(session_id or "")
            if session is None or session.revoked:
                raise _unauthenticated("refresh token is invalid, used or revoked")
            session.refresh_token = "rt_" + secrets.token_urlsafe(32)
            self._by_refresh[session.refresh_token] = session_id or ""
            refresh = session.refresh_token
        return self.access_token(session_id or ""), refresh

    def sign_out(self, refresh_token: str) -> None:
        with self._lock:
            session_id = self._by_refresh.pop(refresh_token, None)
            if session_id is not None:
                self._sessions[session_id].revoked = True

    def access_token(self, session_id: str, *, ttl: float | None = None) -> str:
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
            raise _unauthenticated(
                "access token is malformed or not signed by this server"
            ) from exc
        if expires <= self._clock():
            raise _unauthenticated("access token has expired")
        with self._lock:
            session = self._sessions.get(str(claims.get("sid", "")))
            if session is None or session.revoked:
                raise _unauthenticated("the session of this access token was signed out")
        return claims


class Authenticator:
    """Apply the contract's credential table to a call's metadata."""

    def __init__(self, *, api_keys: Mapping[str, str], sessions: SessionIssuer) -> None:
        self._api_keys = dict(api_keys)
        self._sessions = sessions

    def check(self, method: str, metadata: Mapping[str, str]) -> Caller:
        family = family_of(method)
        if family == "public":
            return Caller(project_id="", credential="none")
        key = metadata.get("x-api-key", "")
        auth = metadata.get("authorization", "")
        wanted_project = metadata.get("x-project-id", "")
        if key:
            project = self._api_keys.get(key)
            if project is None:
                raise _unauthenticated("the API key is not valid for this server")
            credential = "public_key" if key.startswith("pub_") else "private_key"
            if family != "sdk" and credential == "public_key":
                raise _unauthenticated(
                    "a public (pub_) key cannot call this service; use a private (prv_) key"
                )
            if family == "dashboard":
                raise _unauthenticated("dashboard services need a signed-in session, not a key")
            if wanted_project and wanted_project != project:
                raise ServerError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "the API key does not belong to the project in x-project-id",
                    "PERMISSION_DENIED",
                )
            return Caller(project_id=project, credential=credential)
        if auth:
            if family == "sdk":
                raise _unauthenticated("ingestion needs an API key in x-api-key")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise _unauthenticated("authorization must be 'Bearer <access token>'")
            claims = self._sessions.verify(token.strip())
            if not wanted_project:
                raise _unauthenticated("a session call needs the project in x-project-id")
            if wanted_project != self._sessions.project_id:
                raise ServerError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "the signed-in user has no access to this project",
                    "PERMISSION_DENIED",
                )
            return Caller(project_id=wanted_project, credential="jwt", user_id=str(claims["sub"]))
        if family == "sdk":
            raise _unauthenticated("missing API key: send it in the x-api-key header")
        raise _unauthenticated(
            "missing credentials: send a prv_ key in x-api-key, or a Bearer token with x-project-id"
        )
