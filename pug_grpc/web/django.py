"""Django middleware opening a request context for each request (sync and async views).

``MIDDLEWARE = [..., "pug_grpc.web.django.PugDjangoMiddleware"]``. The URL is Django's own
``request.build_absolute_uri()``, so ``USE_X_FORWARDED_HOST`` and ``SECURE_PROXY_SSL_HEADER``
decide what a proxy may say about it. A streaming response's body is sent after the
middleware returned: for events tracked while it streams, wrap the WSGI application in
:class:`pug_grpc.web.PugWSGIMiddleware` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from pug_grpc.web._requests import RequestFacts, preferred_locale

__all__ = ["PugDjangoMiddleware", "django_facts"]


def django_facts(request: Any) -> RequestFacts:
    """The request context's fields from a Django ``HttpRequest``."""
    meta = request.META
    try:
        url: str | None = request.build_absolute_uri()
    except Exception:  # DisallowedHost and the like: Django answers that request itself
        url = None
    return RequestFacts(
        url=url,
        referrer=meta.get("HTTP_REFERER"),
        user_agent=meta.get("HTTP_USER_AGENT"),
        locale=preferred_locale(meta.get("HTTP_ACCEPT_LANGUAGE")),
    )


class PugDjangoMiddleware:
    """Events tracked while Django handles a request carry its URL, referrer, locale, browser."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self._acall(request)
        with django_facts(request).context():
            return self.get_response(request)

    async def _acall(self, request: Any) -> Any:
        with django_facts(request).context():
            return await self.get_response(request)
