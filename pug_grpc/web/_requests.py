"""What a request's headers and URL say about its end user, for the request context.

Shared by the WSGI, ASGI and Django middleware: the URL as the visitor saw it (behind a proxy,
from ``X-Forwarded-Proto`` and ``X-Forwarded-Host``), the ``Referer``, the ``User-Agent`` and
the preferred language of ``Accept-Language``. Header values are whatever the client sent:
nothing here raises on them.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from pug_grpc._ingest.context import RequestContext, derive, request_context

__all__ = ["RequestFacts", "first_forwarded", "no_context", "page_url", "preferred_locale"]

_LANGUAGE: Final = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")
_MAX_HEADER: Final = 4096
"""Longer Accept-Language headers are cut here before parsing."""
_PATH_SAFE: Final = "/;=,~!$&'()*+:@-._"


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """The request context's fields for one request (``None``: the request does not say)."""

    url: str | None
    referrer: str | None
    user_agent: str | None
    locale: str | None

    def context(self) -> AbstractContextManager[RequestContext]:
        """A request context with these fields, merged over the one open now."""
        return request_context(
            url=self.url, referrer=self.referrer, user_agent=self.user_agent, locale=self.locale
        )

    def derived(self) -> RequestContext:
        """The context :meth:`context` would open (for a context copied per request)."""
        return derive(
            url=self.url, referrer=self.referrer, user_agent=self.user_agent, locale=self.locale
        )


def preferred_locale(header: str | None) -> str | None:
    """The language the visitor prefers most (``Accept-Language``, by ``q``, then by order)."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for index, part in enumerate(header[:_MAX_HEADER].split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or _LANGUAGE.match(tag) is None:
            continue
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if not 0.0 < weight <= 1.0:
            continue
        if best is None or weight > best[0]:
            best = (weight, index, tag)
    return None if best is None else best[2]


def first_forwarded(value: str | None) -> str | None:
    """The first (client-most) entry of a comma-separated ``X-Forwarded-*`` header."""
    if not value:
        return None
    first = value.split(",", 1)[0].strip()
    return first or None


def page_url(scheme: str, host: str, path: str, query: str) -> str | None:
    """The URL the visitor asked for, from its decoded parts; ``None`` without a host."""
    if not host:
        return None
    scheme = scheme.lower() if scheme.lower() in ("http", "https") else "http"
    if not path.startswith("/"):
        path = "/" + path  # the host ends where the path begins, whatever the request said
    url = f"{scheme}://{host}{quote(path, safe=_PATH_SAFE)}"
    return f"{url}?{query}" if query else url


def no_context() -> AbstractContextManager[object]:
    """What a middleware opens when reading the request failed: nothing."""
    return nullcontext()
