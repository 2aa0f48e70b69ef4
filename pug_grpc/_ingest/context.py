"""The end user's request context: URL, referrer, locale, browser, session, properties.

A backend's events describe its end users' visits, but Pug derives web attribution (pathname,
UTM keys, referrer domain, channel) from ``$url`` and ``$referrer``, and the browser from the
User-Agent, on the server. ``with request_context(url=..., user_agent=...):`` lets every event
tracked inside carry them. It lives in a :class:`contextvars.ContextVar`, so it follows asyncio
tasks and threads started in a copied context (``contextvars.copy_context().run``), and does
not leak between concurrent requests. Nested contexts merge: inner values win.

Only the keys below are ever sent from a context; those Pug strips or owns (``$ip``,
``$channel``, ``$referrerDomain``, geo, bot signals) have no way in. Opening a context never
raises: a value that cannot be sent is dropped with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from pug_grpc._ingest.encoding import encode_auto
from pug_grpc._ingest.properties import MAX_STRING_LEN, Scalar, _valid_text, checked_properties
from pug_grpc._ingest.user_agents import AGENT_KEYS, parse_user_agent
from pug_grpc._ingest.validation import coerce_id, is_uuid

__all__ = [
    "CONTEXT_KEYS",
    "RequestContext",
    "current_context",
    "derive",
    "request_context",
    "set_context",
]

_log = logging.getLogger("pug_grpc.context")

_TEXT_KEYS: Final = (
    ("url", "$url"),
    ("referrer", "$referrer"),
    ("locale", "$locale"),
    ("page_title", "$pageTitle"),
)
CONTEXT_KEYS: Final = frozenset(key for _, key in _TEXT_KEYS) | frozenset(AGENT_KEYS)
"""The auto-properties a context may send; everything else starting with ``$`` stays out."""


def _text(name: str, value: object) -> str | None:
    """A context field as sendable text (clipped to 1,024 characters), or None to drop it."""
    if value is None:
        return None
    if not isinstance(value, str):
        _log.warning("context %s dropped: expected a string, got %s", name, type(value).__name__)
        return None
    text = str.__str__(value)[:MAX_STRING_LEN]
    if not _valid_text(text):
        _log.warning("context %s dropped: not valid Unicode text", name)
        return None
    return text


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What one request says about its end user; empty strings where it says nothing."""

    url: str = ""
    referrer: str = ""
    user_agent: str = ""
    locale: str = ""
    page_title: str = ""
    session_id: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)
    """Custom properties for the context's events (checked when it opened)."""
    auto: Mapping[str, Scalar] = field(default_factory=dict)
    """The auto-properties its events carry (derived from the fields above)."""
    encoded: bytes = b""
    """``auto`` in wire form, once for all the context's events."""

    @classmethod
    def build(
        cls,
        *,
        url: str,
        referrer: str,
        user_agent: str,
        locale: str,
        page_title: str,
        session_id: str,
        properties: Mapping[str, Any],
    ) -> RequestContext:
        texts = {"url": url, "referrer": referrer, "locale": locale, "page_title": page_title}
        values: dict[str, Scalar] = {key: texts[name] for name, key in _TEXT_KEYS if texts[name]}
        values.update(parse_user_agent(user_agent))
        return cls(
            url=url,
            referrer=referrer,
            user_agent=user_agent,
            locale=locale,
            page_title=page_title,
            session_id=session_id,
            properties=properties,
            auto=values,
            encoded=encode_auto(values),
        )

    def merged(
        self,
        *,
        url: object = None,
        referrer: object = None,
        user_agent: object = None,
        locale: object = None,
        page_title: object = None,
        session_id: object = None,
        properties: object = None,
    ) -> RequestContext:
        """This context with the given fields replaced (``None``: keep; ``""``: clear)."""
        sid = self.session_id
        if session_id is not None:
            given = coerce_id(session_id)
            if given == "":
                sid = ""
            elif is_uuid(given):
                sid = str(given)
            else:
                _log.warning("context session_id dropped: it must be a UUID")
        props = dict(self.properties)
        if properties is not None:
            if isinstance(properties, Mapping):
                props.update(checked_properties(properties))
            else:
                _log.warning(
                    "context properties dropped: expected a mapping, got %s",
                    type(properties).__name__,
                )

        def pick(name: str, given: object, current: str) -> str:
            text = _text(name, given)
            return current if text is None else text

        return RequestContext.build(
            url=pick("url", url, self.url),
            referrer=pick("referrer", referrer, self.referrer),
            user_agent=pick("user_agent", user_agent, self.user_agent),
            locale=pick("locale", locale, self.locale),
            page_title=pick("page_title", page_title, self.page_title),
            session_id=sid,
            properties=props,
        )


_EMPTY: Final = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("pug_grpc_request_context", default=None)

current_context = _current.get
"""The innermost open context, or ``None`` outside any (one ContextVar read: the hot path)."""


def derive(
    *,
    url: object = None,
    referrer: object = None,
    user_agent: object = None,
    locale: object = None,
    page_title: object = None,
    session_id: object = None,
    properties: object = None,
) -> RequestContext:
    """The context these fields make, merged over the one open now; never raises."""
    outer = _current.get() or _EMPTY
    try:
        return outer.merged(
            url=url,
            referrer=referrer,
            user_agent=user_agent,
            locale=locale,
            page_title=page_title,
            session_id=session_id,
            properties=properties,
        )
    except Exception:  # hostile input: a value whose own methods raise; never cost the request
        _log.warning("the request context could not be read; the outer one stays", exc_info=True)
        return outer


@contextmanager
def request_context(
    *,
    url: str | None = None,
    referrer: str | None = None,
    user_agent: str | None = None,
    locale: str | None = None,
    page_title: str | None = None,
    session_id: str | None = None,
    properties: Mapping[str, Any] | None = None,
) -> Iterator[RequestContext]:
    """Open a context for the events tracked inside (merged over the one already open)."""
    inner = derive(
        url=url,
        referrer=referrer,
        user_agent=user_agent,
        locale=locale,
        page_title=page_title,
        session_id=session_id,
        properties=properties,
    )
    token = _current.set(inner)
    try:
        yield inner
    finally:
        _current.reset(token)


def set_context(context: RequestContext | None) -> None:
    """Make ``context`` current for good in this context (one copied for a WSGI request)."""
    _current.set(context)
