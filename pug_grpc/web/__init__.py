"""WSGI and ASGI middleware that open a request context for every request.

Events tracked while a request is handled then carry the visitor's ``$url``, ``$referrer``,
``$locale`` and browser (docs/context.md). The context belongs to the process, not to one
client: every ``Pug`` sees it. Recipes::

    app.wsgi_app = PugWSGIMiddleware(app.wsgi_app)        # Flask
    app.add_middleware(PugASGIMiddleware)                  # FastAPI / Starlette
    MIDDLEWARE = [..., "pug_grpc.web.django.PugDjangoMiddleware"]  # Django

No framework is imported here.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextlib import AbstractContextManager
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from pug_grpc._ingest.context import set_context
from pug_grpc.web._requests import (
    RequestFacts,
    first_forwarded,
    no_context,
    page_url,
    preferred_locale,
)

__all__ = ["PugASGIMiddleware", "PugWSGIMiddleware", "asgi_facts", "wsgi_facts"]

_log = logging.getLogger("pug_grpc.web")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _wsgi_text(value: str) -> str:
    """A WSGI environ string (bytes as latin-1, PEP 3333) as the UTF-8 text it was."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # already text (a server that decoded it)
        return value


def wsgi_facts(environ: WSGIEnvironment, *, trust_forwarded: bool = True) -> RequestFacts:
    """The request context's fields from a WSGI environ."""
    scheme = str(environ.get("wsgi.url_scheme") or "http")
    host = str(environ.get("HTTP_HOST") or "")
    if not host and environ.get("SERVER_NAME"):
        port = str(environ.get("SERVER_PORT") or "")
        default = "443" if scheme == "https" else "80"
        host = str(environ["SERVER_NAME"]) + ("" if port in ("", default) else f":{port}")
    if trust_forwarded:
        scheme = first_forwarded(environ.get("HTTP_X_FORWARDED_PROTO")) or scheme
        host = first_forwarded(environ.get("HTTP_X_FORWARDED_HOST")) or host
    path = _wsgi_text(str(environ.get("SCRIPT_NAME") or "") + str(environ.get("PATH_INFO") or ""))
    query = str(environ.get("QUERY_STRING") or "")
    referrer = environ.get("HTTP_REFERER")
    agent = environ.get("HTTP_USER_AGENT")
    return RequestFacts(
        url=page_url(scheme, _wsgi_text(host), path, query),
        referrer=_wsgi_text(referrer) if isinstance(referrer, str) else None,
        user_agent=_wsgi_text(agent) if isinstance(agent, str) else None,
        locale=preferred_locale(environ.get("HTTP_ACCEPT_LANGUAGE")),
    )


class _InContext:
    """A WSGI response iterable that runs in the request's context until it is closed.

    The server iterates the body after the application returned: events tracked by a
    streaming body still see the request.
    """

    __slots__ = ("_context", "_iterator", "_result")

    def __init__(self, result: Iterable[bytes], context: contextvars.Context) -> None:
        self._result = result
        self._context = context
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = self._context.run(iter, self._result)
        return self._context.run(next, self._iterator)

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            self._context.run(close)


class PugWSGIMiddleware:
    """Opens a request context for each request of a WSGI application.

    ``trust_forwarded`` (default on): take the scheme and host from ``X-Forwarded-Proto`` and
    ``X-Forwarded-Host`` (set by a proxy in front; turn it off when there is none, so that
    clients cannot choose the ``$url`` host).
    """

    def __init__(self, app: WSGIApplication, *, trust_forwarded: bool = True) -> None:
        self.app = app
        self.trust_forwarded = trust_forwarded

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        context = contextvars.copy_context()
        result = context.run(self._run, environ, start_response)
        return _InContext(result, context)

    def _run(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            set_context(wsgi_facts(environ, trust_forwarded=self.trust_forwarded).derived())
        except Exception:  # never cost the request
            _log.debug("the request could not be read for its context", exc_info=True)
        return self.app(environ, start_response)


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        key = bytes(name).decode("latin-1").lower()
        if key not in found:
            found[key] = bytes(value).decode("utf-8", "replace")
    return found


def asgi_facts(scope: Scope, *, trust_forwarded: bool = True) -> RequestFacts:
    """The request context's fields from an ASGI ``http`` or ``websocket`` scope."""
    headers = _headers(scope)
    scheme = str(scope.get("scheme") or "http")
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    host = headers.get("host", "")
    server = scope.get("server")
    if not host and server:
        name, port = server[0], server[1]
        default = 443 if scheme == "https" else 80
        host = str(name) + ("" if port in (None, default) else f":{port}")
    if trust_forwarded:
        scheme = first_forwarded(headers.get("x-forwarded-proto")) or scheme
        host = first_forwarded(headers.get("x-forwarded-host")) or host
    path = str(scope.get("root_path") or "") + str(scope.get("path") or "")
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    return RequestFacts(
        url=page_url(scheme, host, path, query),
        referrer=headers.get("referer"),
        user_agent=headers.get("user-agent"),
        locale=preferred_locale(headers.get("accept-language")),
    )


class PugASGIMiddleware:
    """Opens a request context for each ``http`` and ``websocket`` request of an ASGI app.

    ``app.add_middleware(PugASGIMiddleware)`` in FastAPI and Starlette. ``trust_forwarded``
    as for :class:`PugWSGIMiddleware`.
    """

    def __init__(self, app: ASGIApp, *, trust_forwarded: bool = True) -> None:
        self.app = app
        self.trust_forwarded = trust_forwarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        opened: AbstractContextManager[object]
        try:
            opened = asgi_facts(scope, trust_forwarded=self.trust_forwarded).context()
        except Exception:  # never cost the request
            _log.debug("the request could not be read for its context", exc_info=True)
            opened = no_context()
        with opened:
            await self.app(scope, receive, send)
