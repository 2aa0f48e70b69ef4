"""Page tokens of the local server's reads: opaque to clients, keyset cursors inside.

An event token continues after one stored row (its time and sequence); a profile token after
one profile (its create time and id). A token that does not decode is ``INVALID_ARGUMENT``
with reason ``INVALID_PAGE_TOKEN``.
"""

from __future__ import annotations

import base64

from pug_grpc.testing._status import invalid_argument

__all__ = ["event_cursor", "event_token", "profile_cursor", "profile_token"]


def _encode(*parts: object) -> str:
    return base64.urlsafe_b64encode(":".join(map(str, parts)).encode()).decode()


def _cursor(token: str, kind: str) -> tuple[int, str] | None:
    """(number, text) of a token made by ``_encode(kind, number, text)``; None for no token."""
    if not token:
        return None
    try:
        found, number, text = base64.urlsafe_b64decode(token.encode()).decode().split(":", 2)
        if found != kind:
            raise ValueError(kind)
        return int(number), text
    except ValueError:
        raise invalid_argument("page_token is not valid", "INVALID_PAGE_TOKEN") from None


def event_token(occur_us: int, seq: int) -> str:
    """The token of the page after the event row (``occur_us``, ``seq``)."""
    return _encode("after", occur_us, seq)


def event_cursor(token: str) -> tuple[int, int] | None:
    """The (time, sequence) an event page token continues after; None for the first page."""
    found = _cursor(token, "after")
    if found is None:
        return None
    try:
        return found[0], int(found[1])
    except ValueError:
        raise invalid_argument("page_token is not valid", "INVALID_PAGE_TOKEN") from None


def profile_token(create_us: int, profile_id: str) -> str:
    """The token of the page after the profile (``create_us``, ``profile_id``)."""
    return _encode("profile", create_us, profile_id)


def profile_cursor(token: str) -> tuple[int, str] | None:
    """The (create time, id) a profile page token continues after; None for the first page."""
    return _cursor(token, "profile")
