"""The asyncio call path: :mod:`pug_grpc._rpc.call` with ``await`` where it waits.

The namespaces do not know which path they are on: :func:`pug_grpc._rpc.call.unary` and its
siblings hand a context marked ``asynchronous`` to these functions, after the same guard and
``x-project-id`` checks. Every decision (which failure earns a session refresh, which one
ends a call at once, which retry settings apply, where a listing resumes, when a page token
loops) is taken by the same functions of :mod:`pug_grpc._rpc.context`; only the waiting
differs: ``await`` on the transport, the session and ``tenacity.AsyncRetrying``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.message import Message

from pug_grpc._retry import async_retrying
from pug_grpc._rpc.aio_transport import AsyncResponseStream, AsyncTransport
from pug_grpc._rpc.call import PageCursor
from pug_grpc._rpc.call import unary as call_unary
from pug_grpc._rpc.context import (
    AsyncAuthHook,
    CallContext,
    CallOptions,
    Paged,
    TokenTrail,
    converted,
    retry_settings,
    unrecoverable,
    wants_refresh,
    with_token,
)
from pug_grpc._rpc.transport import Metadata, Method

__all__ = ["AsyncPageStream", "every_item", "items_of", "unary"]

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)
_T = TypeVar("_T")
_Page = TypeVar("_Page", bound=Paged)


async def _attempt(ctx: CallContext, send: Callable[[], Awaitable[_T]]) -> _T:
    """One attempt, with at most one session refresh and resend on ``UNAUTHENTICATED``."""
    auth = cast(AsyncAuthHook | None, ctx.auth)
    recovered = False
    while True:
        generation = await auth.prepare() if auth is not None else 0
        try:
            return await send()
        except grpc.RpcError as error:
            if wants_refresh(ctx, error, recovered) and auth is not None:
                recovered = True
                if await auth.recover(generation):
                    continue
            final = unrecoverable(ctx, error)
            if final is not None:
                raise final from error
            raise


async def _run(
    ctx: CallContext, options: CallOptions, send: Callable[[], Awaitable[_T]], idempotent: bool
) -> _T:
    """Run ``send`` under the retry settings in force; raise only :class:`PugError`."""
    settings = retry_settings(ctx, options, idempotent)
    try:
        if settings is None:
            return await _attempt(ctx, send)
        policy = async_retrying(settings, clock=ctx.clock, sleep=ctx.sleep)
        result: _T = await policy(_attempt, ctx, send)
        return result
    except grpc.RpcError as error:
        raise converted(ctx, error) from error


async def unary(
    ctx: CallContext,
    method: Method[_Req, _Resp],
    request: _Req,
    options: CallOptions,
    *,
    metadata: Metadata,
    timeout: float | None,
    idempotent: bool,
    then: Callable[[_Resp], Any] | None,
) -> Any:
    """Send one unary request (already checked by :func:`pug_grpc._rpc.call.unary`)."""
    transport = cast(AsyncTransport, ctx.transport)

    def send() -> Awaitable[_Resp]:
        return transport.unary(method, request, metadata=metadata, timeout=timeout)

    reply = await _run(ctx, options, send, idempotent)
    return reply if then is None else then(reply)


async def every_item(
    ctx: CallContext,
    method: Method[_Req, Any],
    base: _Req,
    options: CallOptions,
    items: Callable[[Any], Iterable[_T]],
    *,
    first: str,
) -> AsyncGenerator[_T, None]:
    """Every item of a ``page_token``-paged read, fetching each page when the last is used up."""
    trail = TokenTrail()
    token: str | None = first
    while token is not None:
        sent = call_unary(ctx, method, with_token(base, token), options, idempotent=True)
        page = await cast(Awaitable[Any], sent)
        for item in items(page):
            yield item
        token = trail.follow(page)


class AsyncPageStream(PageCursor[_Page, AsyncResponseStream[_Page]], AsyncIterator[_Page]):
    """Pages of a server-streaming listing (``ProfilesService.List``), awaited one by one.

    The asyncio form of :class:`~pug_grpc.PageStream`, with the same rules: the deadline
    bounds the wait for each page, and under retry settings a broken stream reopens from the
    last page received. ``await aclose()`` (or ``contextlib.aclosing``) cancels it early.
    """

    def __aiter__(self) -> AsyncPageStream[_Page]:
        return self

    async def __anext__(self) -> _Page:
        if self._done:
            raise StopAsyncIteration
        page = self._keep(await _run(self._ctx, self._options, self._pull, True))
        if page is None:
            raise StopAsyncIteration
        return page

    async def _pull(self) -> _Page | None:
        try:
            return await anext(self._opened())
        except StopAsyncIteration:
            self._stream = None
            return None
        except BaseException:  # a failure, or the awaiting task cancelled: end the call too
            self._drop()
            raise

    async def aclose(self) -> None:
        """Stop early: cancel the open server stream, if any; later iteration ends at once."""
        self._stop()


async def items_of(
    pages: AsyncPageStream[_Page], items: Callable[[_Page], Iterable[_T]]
) -> AsyncGenerator[_T, None]:
    """Every item of every page, closing the stream when the iteration ends or stops."""
    try:
        async for page in pages:
            for item in items(page):
                yield item
    finally:
        await pages.aclose()
