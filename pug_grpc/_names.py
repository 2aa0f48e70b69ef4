"""Names the whole package shares: environment variables, headers, key and id prefixes.

One place for each spelling, so the client, the reads, the command line and the messages that
quote them cannot drift apart.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "API_KEY_HEADER",
    "AUTHORIZATION_HEADER",
    "ENV_API_KEY",
    "ENV_ENDPOINT",
    "ENV_PROJECT_ID",
    "KEY_PREFIXES",
    "PRIVATE_KEY_PREFIX",
    "PROJECT_HEADER",
    "PUBLIC_KEY_PREFIX",
    "RESERVED_ID_PREFIX",
    "is_public_key",
]

ENV_API_KEY: Final = "PUG_API_KEY"
"""Fallback for ``api_key=``."""
ENV_ENDPOINT: Final = "PUG_ENDPOINT"
"""Fallback for ``endpoint=``."""
ENV_PROJECT_ID: Final = "PUG_PROJECT_ID"
"""Fallback for ``project_id=``."""

API_KEY_HEADER: Final = "x-api-key"
"""Carries a ``pub_``/``prv_`` API key."""
AUTHORIZATION_HEADER: Final = "authorization"
"""Carries ``Bearer <access JWT>`` for a signed-in customer."""
PROJECT_HEADER: Final = "x-project-id"
"""Names the project of a JWT call; the server ignores it next to an API key."""

PUBLIC_KEY_PREFIX: Final = "pub_"
"""Keys for browsers and apps: ingestion only, refused by the read services."""
PRIVATE_KEY_PREFIX: Final = "prv_"
"""Keys for server code: ingestion and reads."""
KEY_PREFIXES: Final = (PUBLIC_KEY_PREFIX, PRIVATE_KEY_PREFIX)

RESERVED_ID_PREFIX: Final = "cookieless-"
"""``distinct_id`` prefix that belongs to the server's cookieless mode."""


def is_public_key(api_key: str | None) -> bool:
    """Whether ``api_key`` is a public (``pub_``) key, which cannot read data."""
    return isinstance(api_key, str) and api_key.startswith(PUBLIC_KEY_PREFIX)
