"""Which credential each service family accepts, applied to a call's metadata.

The messages a client can act on are Pug's own: "x-api-key header not present" and "invalid
API key" (also for a ``pub_`` key on the shared services, checked on the prefix alone) are
permanent. With an API key, ``x-project-id`` is ignored and the key's own project is used; only
the JWT path reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import grpc

from pug_grpc._names import PROJECT_HEADER, PUBLIC_KEY_PREFIX
from pug_grpc.testing._sessions import SessionIssuer
from pug_grpc.testing._status import ServerError, unauthenticated

__all__ = ["Authenticator", "Caller", "family_of"]

_API_KEY = "x-api-key"
_AUTHORIZATION = "authorization"
_PROJECT = PROJECT_HEADER


def family_of(method: str) -> str:
    """``sdk``, ``shared``, ``dashboard`` or ``public``, from a full method path."""
    service = method.lstrip("/")
    for family in ("sdk", "shared", "dashboard"):
        if service.startswith(family + "."):
            return family
    return "public"


@dataclass(frozen=True)
class Caller:
    """Who made a call: the project it acts on and how it proved it."""

    project_id: str
    credential: str  # "public_key", "private_key", "jwt" or "none"
    user_id: str = ""


class Authenticator:
    """Apply the contract's credential table to a call's metadata."""

    def __init__(self, *, api_keys: Mapping[str, str], sessions: SessionIssuer) -> None:
        self._api_keys = dict(api_keys)
        self._sessions = sessions

    def check(self, method: str, metadata: Mapping[str, str]) -> Caller:
        """The caller of ``method``, or the ``ServerError`` Pug answers for these credentials."""
        family = family_of(method)
        if family == "public":
            return Caller(project_id="", credential="none")
        key = metadata.get(_API_KEY, "")
        if key:
            return self._key_caller(family, key)
        if family == "sdk":
            raise unauthenticated("x-api-key header not present")
        if metadata.get(_AUTHORIZATION, ""):
            return self._session_caller(metadata)
        raise unauthenticated(
            "missing credentials: send a prv_ key in x-api-key, or a Bearer token with x-project-id"
        )

    def _key_caller(self, family: str, key: str) -> Caller:
        if family == "shared" and key.startswith(PUBLIC_KEY_PREFIX):
            raise unauthenticated("invalid API key")
        project = self._api_keys.get(key)
        if project is None:
            raise unauthenticated("invalid API key")
        if family == "dashboard":
            raise unauthenticated("dashboard services need a signed-in session, not a key")
        credential = "public_key" if key.startswith(PUBLIC_KEY_PREFIX) else "private_key"
        return Caller(project_id=project, credential=credential)

    def _session_caller(self, metadata: Mapping[str, str]) -> Caller:
        scheme, _, token = metadata[_AUTHORIZATION].partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated("authorization must be 'Bearer <access token>'")
        claims = self._sessions.verify(token.strip())
        wanted_project = metadata.get(_PROJECT, "")
        if not wanted_project:
            raise unauthenticated("a session call needs the project in x-project-id")
        if wanted_project != self._sessions.project_id:
            raise ServerError(
                grpc.StatusCode.PERMISSION_DENIED,
                "the signed-in user has no access to this project",
                "PERMISSION_DENIED",
            )
        return Caller(project_id=wanted_project, credential="jwt", user_id=str(claims["sub"]))
