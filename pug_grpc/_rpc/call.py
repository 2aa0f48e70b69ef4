"""How one read or administration call is made: options, guards, auth recovery, retries, errors.

Every namespace (``profiles``, ``orgs``…) builds its request message and hands it to
:func:`unary`, :func:`every_item`, :func:`page_stream` or :func:`stream_items` with a
:class:`Method`; those send it through the context's
:class:`~pug_grpc._rpc.transport.Transport` (gRPC or Connect), so the rules hold everywhere and
exist once: nothing leaves a call but a reply or a :class:`PugError`; a guard can refuse before
the network; ``UNAUTHENTICATED`` triggers at most one session refresh and one resend; retries
follow one :class:`RetrySettings`. The rules themselves live in :mod:`pug_grpc._rpc.context`.

The asyncio clients build their namespaces from the same classes on a context marked
``asynchronous``: these functions then hand the call to :mod:`pug_grpc._rpc.aio_call`, which
returns an awaitable (or an async iterator) where the synchronous path returns the value. Only
the asyncio namespaces (:mod:`pug_grpc._rpc.aio`) ever see those, and they type them so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar, cast, overload

import grpc
from google.protobuf.message import Message

from pug_grpc._retry import retrying
from pug_grpc._rpc.context import (
    USE_CLIENT_DEFAULT,
    AuthHook,
    CallContext,
    CallOptions,
    Paged,
    TokenTrail,
    UseClientDefault,
    check,
    converted,
    option,
    retry_settings,
    unrecoverable,
    wants_refresh,
    with_token,
)
from pug_grpc._rpc.transport import Method, ResponseStream, Transport

__all__ = [
    "USE_CLIENT_DEFAULT",
    "CallContext",
    "CallOptions",
    "PageCursor",
    "PageStream",
    "UseClientDefault",
    "every_item",
    "page_stream",
    "paginate",
    "stream_items",
    "unary",
]

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)
_T = TypeVar("_T")
_Out = TypeVar("_Out")
_Page = TypeVar("_Page", bound=Paged)
_Stream = TypeVar("_Stream")


def _attempt(ctx: CallContext, send: Callable[[], _T]) -> _T:
    """One attempt, with at most one session refresh and resend on ``UNAUTHENTICATED``."""
    auth = cast(AuthHook | None, ctx.auth)
    recovered = False
    while True:
        generation = auth.prepare() if auth is not None else 0
        try:
            return send()
        except grpc.RpcError as error:
            if wants_refresh(ctx, error, recovered) and auth is not None:
                recovered = True
                if auth.recover(generation):
                    continue
            final = unrecoverable(ctx, error)
            if final is not None:
                raise final from error
            raise


def _run(ctx: CallContext, options: CallOptions, send: Callable[[], _T], idempotent: bool) -> _T:
    """Run ``send`` under the retry settings in force; raise only :class:`PugError`."""
    settings = retry_settings(ctx, options, idempotent)
    try:
        if settings is None:
            return _attempt(ctx, send)
        # A fresh policy per call: it holds this call's start time and attempt count.
        policy = retrying(settings, clock=ctx.clock, sleep=ctx.sleep)
        result: _T = policy(_attempt, ctx, send)
        return result
    except grpc.RpcError as error:
        raise converted(ctx, error) from error


def _aio() -> Any:
    """The asyncio call path, imported on first use (it imports this module)."""
    from pug_grpc._rpc import aio_call

    return aio_call


@overload
def unary(
    ctx: CallContext,
    method: Method[_Req, _Resp],
    request: _Req,
    options: CallOptions,
    *,
    idempotent: bool = False,
    then: None = None,
) -> _Resp: ...
@overload
def unary(
    ctx: CallContext,
    method: Method[_Req, _Resp],
    request: _Req,
    options: CallOptions,
    *,
    idempotent: bool = False,
    then: Callable[[_Resp], _Out],
) -> _Out: ...
def unary(
    ctx: CallContext,
    method: Method[_Req, _Resp],
    request: _Req,
    options: CallOptions,
    *,
    idempotent: bool = False,
    then: Callable[[_Resp], Any] | None = None,
) -> Any:
    """Send one unary request under ``ctx`` and the per-call ``options``.

    ``idempotent`` marks a call that only reads, so the client's default retry settings apply.
    ``then`` turns the reply into the result (a sign-in keeps its tokens), on either path.
    """
    metadata = check(ctx, options)
    timeout: float | None = option(options, "timeout", ctx.timeout)
    if ctx.asynchronous:
        return _aio().unary(
            ctx,
            method,
            request,
            options,
            metadata=metadata,
            timeout=timeout,
            idempotent=idempotent,
            then=then,
        )
    transport = cast(Transport, ctx.transport)

    def send() -> _Resp:
        return transport.unary(method, request, metadata=metadata, timeout=timeout)

    reply = _run(ctx, options, send, idempotent)
    return reply if then is None else then(reply)


def paginate(fetch: Callable[[str], _Page], first_token: str = "") -> Iterator[_Page]:
    """Follow ``next_page_token`` from ``first_token`` until the server returns an empty one."""
    trail = TokenTrail()
    token: str | None = first_token
    while token is not None:
        page = fetch(token)
        yield page
        token = trail.follow(page)


def every_item(
    ctx: CallContext,
    method: Method[_Req, Any],
    base: _Req,
    options: CallOptions,
    items: Callable[[Any], Iterable[_T]],
) -> Iterator[_T]:
    """Every item of a ``page_token``-paged read, fetching pages as the iteration needs them.

    The guard runs now, so a refused read fails at the call rather than at the first ``next()``.
    """
    check(ctx, options)  # refuse a closed client or a bad project_id now
    first: str = base.page_token  # type: ignore[attr-defined]
    if ctx.asynchronous:
        return _aio().every_item(ctx, method, base, options, items, first=first)  # type: ignore[no-any-return]

    def fetch(token: str) -> Any:
        return unary(ctx, method, with_token(base, token), options, idempotent=True)

    return (item for page in paginate(fetch, first) for item in items(page))


class PageCursor(Generic[_Page, _Stream]):
    """Where a streamed listing stands: the request, the open stream, the token to resume at.

    Shared by :class:`PageStream` and the asyncio ``AsyncPageStream``, which differ only in
    how they wait for the next page.
    """

    def __init__(
        self,
        ctx: CallContext,
        method: Method[Any, Any],
        base: Message,
        options: CallOptions,
    ) -> None:
        self._metadata = check(ctx, options)
        self._ctx = ctx
        self._method = method
        self._base = base
        self._token: str = base.page_token  # type: ignore[attr-defined]
        self._timeout: float | None = option(options, "timeout", ctx.timeout)
        self._options = options
        self._stream: _Stream | None = None
        self._done = False

    def _opened(self) -> _Stream:
        """The open stream, opened now from the last token received when there is none."""
        if self._stream is None:
            request = with_token(self._base, self._token)
            stream: _Stream = self._ctx.transport.server_stream(  # type: ignore[assignment]
                self._method, request, metadata=self._metadata, timeout=self._timeout
            )
            self._stream = stream
        return self._stream

    def _drop(self) -> None:
        """Forget the open stream (cancelled, in case it still runs); the next pull reopens."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.cancel()  # type: ignore[attr-defined]

    def _keep(self, page: _Page | None) -> _Page | None:
        """Note where to resume after ``page`` (``None``: the stream ended)."""
        if page is None:
            self._done = True
        elif page.next_page_token:
            self._token = page.next_page_token
        return page

    def _stop(self) -> None:
        self._done = True
        self._drop()


class PageStream(PageCursor[_Page, ResponseStream[_Page]], Iterator[_Page]):
    """Pages of a server-streaming call that itself pages (``ProfilesService.List``).

    The deadline bounds the wait for each page, so a project of any size streams to the end.
    Each page is one retry unit: after a failure the stream is reopened from the last
    ``next_page_token`` received, so retry settings resume instead of starting over.
    """

    def __iter__(self) -> PageStream[_Page]:
        return self

    def __next__(self) -> _Page:
        if self._done:
            raise StopIteration
        page = self._keep(_run(self._ctx, self._options, self._pull, True))
        if page is None:
            raise StopIteration
        return page

    def _pull(self) -> _Page | None:
        try:
            return next(self._opened())
        except StopIteration:
            self._stream = None
            return None
        except BaseException:
            self._drop()
            raise

    def close(self) -> None:
        """Stop early: cancel the open server stream, if any; later iteration ends at once."""
        self._stop()


def page_stream(
    ctx: CallContext, method: Method[Any, Any], base: Message, options: CallOptions
) -> PageStream[Any]:
    """The pages of a server-streamed listing (an ``AsyncPageStream`` on the asyncio path)."""
    if ctx.asynchronous:
        return _aio().AsyncPageStream(ctx, method, base, options)  # type: ignore[no-any-return]
    return PageStream(ctx, method, base, options)


def stream_items(
    ctx: CallContext,
    method: Method[Any, Any],
    base: Message,
    options: CallOptions,
    items: Callable[[Any], Iterable[_T]],
) -> Iterator[_T]:
    """Every item across the pages of a server-streamed listing; the stream closes after."""
    pages = page_stream(ctx, method, base, options)
    if ctx.asynchronous:
        return _aio().items_of(pages, items)  # type: ignore[no-any-return]
    return _items_of(pages, items)


def _items_of(pages: PageStream[_Page], items: Callable[[_Page], Iterable[_T]]) -> Iterator[_T]:
    try:
        for page in pages:
            yield from items(page)
    finally:
        pages.close()
