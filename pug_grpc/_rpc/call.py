"""How one read or administration call is made: options, guards, auth recovery, retries, errors.

Every namespace (``profiles``, ``orgs``…) builds its request message and hands it to
:func:`unary`, :func:`every_item` or :class:`PageStream` with a :class:`Method`; those send it
through the context's :class:`~pug_grpc._rpc.transport.Transport` (gRPC or Connect), so the
rules hold everywhere and exist once: nothing leaves a call but a reply or a
:class:`PugError`; a guard can refuse before the network; ``UNAUTHENTICATED`` triggers at most
one session refresh and one resend; retries follow one :class:`RetrySettings`.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypedDict, TypeVar

import grpc
from google.protobuf.message import Message

from pug_grpc._diagnosis import diagnose
from pug_grpc._errors import (
    PugError,
    PugInvalidArgumentError,
    PugMessageTooLargeError,
    error_from_rpc,
)
from pug_grpc._names import ENV_PROJECT_ID, PROJECT_HEADER
from pug_grpc._retry import RetrySettings, retrying, status_code
from pug_grpc._rpc.transport import Metadata, Method, ResponseStream, Transport

__all__ = [
    "USE_CLIENT_DEFAULT",
    "AuthHook",
    "CallContext",
    "CallOptions",
    "PageStream",
    "UseClientDefault",
    "every_item",
    "paginate",
    "unary",
]

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)
_T = TypeVar("_T")


class UseClientDefault(enum.Enum):
    """The type of :data:`USE_CLIENT_DEFAULT`."""

    USE_CLIENT_DEFAULT = "USE_CLIENT_DEFAULT"

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = UseClientDefault.USE_CLIENT_DEFAULT
"""A call option's value that means "the client's default", the same as leaving it out."""


class CallOptions(TypedDict, total=False):
    """Per-call overrides every facade method takes as keywords; absent means the client's default.

    ``timeout`` is in seconds (``None``: no deadline; for a streamed listing it bounds the wait
    for each page); ``retry`` a :class:`RetrySettings` (``None``: no retries); ``project_id``
    the ``x-project-id`` of this call (JWT sessions only: an API key implies its project).
    Any of them may be :data:`USE_CLIENT_DEFAULT`, the same as leaving it out.
    """

    timeout: float | UseClientDefault | None
    retry: RetrySettings | UseClientDefault | None
    project_id: str | UseClientDefault | None


class AuthHook(Protocol):
    """What a JWT session offers the call layer (see ``pug_grpc._rpc.session``)."""

    def prepare(self) -> int:
        """Make the access token fresh enough to send; return its generation number."""

    def recover(self, generation: int) -> bool:
        """After ``UNAUTHENTICATED`` for ``generation``: refresh unless done; True to resend."""


@dataclass(frozen=True, slots=True)
class CallContext:
    """The transport and the defaults a namespace applies to each call.

    ``retry`` is the client's default for idempotent calls only (``None``: no retries); a call
    that changes something is retried only when given ``retry=`` itself. ``guard`` runs before
    anything is sent (the ``pub_`` refusal lives there). ``require_project`` refuses a call
    that would go out without an ``x-project-id`` (JWT sessions need one for project-scoped
    services); ``api_key`` marks an API-key client, whose calls refuse a ``project_id=`` the
    server would ignore. ``clock`` and ``sleep`` drive the retry waits.
    """

    transport: Transport
    timeout: float | None = 30.0
    retry: RetrySettings | None = None
    project_id: str | None = None
    guard: Callable[[], None] | None = None
    auth: AuthHook | None = None
    require_project: bool = False
    api_key: bool = False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def replace(self, **changes: Any) -> CallContext:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


def _option(options: CallOptions, name: str, default: _T) -> Any:
    value = options.get(name, USE_CLIENT_DEFAULT)
    return default if value is USE_CLIENT_DEFAULT else value


def _metadata(ctx: CallContext, options: CallOptions) -> Metadata:
    given = _option(options, "project_id", None)
    if given and ctx.api_key:
        raise PugInvalidArgumentError.client_side(
            f"project_id={given!r} has no effect on a call made with an API key: the server "
            "reads the key's own project and ignores x-project-id; use a key of that project, "
            "or a PugAdmin session",
            reason="PROJECT_ID_WITH_API_KEY",
        )
    project = given or ctx.project_id
    if project:
        return ((PROJECT_HEADER, project),)
    if ctx.require_project:
        raise PugInvalidArgumentError.client_side(
            "this call is project-scoped: pass project_id=... to the call or the client "
            f"(or set {ENV_PROJECT_ID})",
            reason="PROJECT_ID_REQUIRED",
        )
    return ()


def _convert(ctx: CallContext, error: grpc.RpcError) -> PugError:
    transport = ctx.transport
    return error_from_rpc(error, tls=transport.tls, endpoint=transport.endpoint)


def _attempt(ctx: CallContext, send: Callable[[], _T]) -> _T:
    """One attempt, with at most one session refresh and resend on ``UNAUTHENTICATED``.

    A failure that another attempt cannot cure (a misconfigured endpoint, a message over a
    size limit) is converted here, so no retry policy spends its budget on it.
    """
    recovered = False
    while True:
        generation = ctx.auth.prepare() if ctx.auth is not None else 0
        try:
            return send()
        except grpc.RpcError as error:
            if (
                not recovered
                and status_code(error) == grpc.StatusCode.UNAUTHENTICATED
                and ctx.auth is not None
                and ctx.auth.recover(generation)
            ):
                recovered = True
                continue
            converted = _convert(ctx, error)
            found = diagnose(error, tls=ctx.transport.tls)
            if (found is not None and not found.retryable) or isinstance(
                converted, PugMessageTooLargeError
            ):
                raise converted from error
            raise


def _run(ctx: CallContext, options: CallOptions, send: Callable[[], _T], idempotent: bool) -> _T:
    """Run ``send`` under the retry settings in force; raise only :class:`PugError`."""
    settings: object = _option(options, "retry", ctx.retry if idempotent else None)
    if settings is not None and not isinstance(settings, RetrySettings):
        raise TypeError(f"retry= takes RetrySettings or None, not {type(settings).__name__}")
    try:
        if settings is None:
            return _attempt(ctx, send)
        # A fresh policy per call: it holds this call's start time and attempt count.
        policy = retrying(settings, clock=ctx.clock, sleep=ctx.sleep)
        result: _T = policy(_attempt, ctx, send)
        return result
    except grpc.RpcError as error:
        raise _convert(ctx, error) from error


def unary(
    ctx: CallContext,
    method: Method[_Req, _Resp],
    request: _Req,
    options: CallOptions,
    *,
    idempotent: bool = False,
) -> _Resp:
    """Send one unary request under ``ctx`` and the per-call ``options``.

    ``idempotent`` marks a call that only reads, so the client's default retry settings apply.
    """
    if ctx.guard is not None:
        ctx.guard()
    metadata = _metadata(ctx, options)
    timeout: float | None = _option(options, "timeout", ctx.timeout)
    transport = ctx.transport

    def send() -> _Resp:
        return transport.unary(method, request, metadata=metadata, timeout=timeout)

    return _run(ctx, options, send, idempotent)


class _Paged(Protocol):
    @property
    def next_page_token(self) -> str: ...


_Page = TypeVar("_Page", bound=_Paged)


def paginate(fetch: Callable[[str], _Page], first_token: str = "") -> Iterator[_Page]:
    """Follow ``next_page_token`` from ``first_token`` until the server returns an empty one."""
    token = first_token
    seen: set[str] = set()
    while True:
        page = fetch(token)
        yield page
        token = page.next_page_token
        if not token:
            return
        if token in seen:
            raise PugError(
                f"the server repeated page token {token[:32]!r}; stopping to avoid a loop",
                code=grpc.StatusCode.INTERNAL,
                reason="PAGE_TOKEN_REPEATED",
            )
        seen.add(token)


def _with_token(base: _Req, token: str) -> _Req:
    request = type(base)()
    request.CopyFrom(base)
    if token:
        request.page_token = token  # type: ignore[attr-defined]
    return request


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
    if ctx.guard is not None:
        ctx.guard()
    _metadata(ctx, options)  # refuse a bad project_id now too

    def fetch(token: str) -> Any:
        return unary(ctx, method, _with_token(base, token), options, idempotent=True)

    first: str = base.page_token  # type: ignore[attr-defined]
    return (item for page in paginate(fetch, first) for item in items(page))


class PageStream(Iterator[_Page]):
    """Pages of a server-streaming call that itself pages (``ProfilesService.List``).

    The deadline bounds the wait for each page, so a project of any size streams to the end.
    Each page is one retry unit: after a failure the stream is reopened from the last
    ``next_page_token`` received, so retry settings resume instead of starting over.
    """

    def __init__(
        self,
        ctx: CallContext,
        method: Method[Any, Any],
        base: Message,
        options: CallOptions,
    ) -> None:
        if ctx.guard is not None:
            ctx.guard()
        self._ctx = ctx
        self._method = method
        self._base = base
        self._token: str = base.page_token  # type: ignore[attr-defined]
        self._metadata = _metadata(ctx, options)
        self._timeout: float | None = _option(options, "timeout", ctx.timeout)
        self._options = options
        self._stream: ResponseStream[_Page] | None = None
        self._done = False

    def __iter__(self) -> PageStream[_Page]:
        return self

    def __next__(self) -> _Page:
        if self._done:
            raise StopIteration
        page = _run(self._ctx, self._options, self._pull, True)
        if page is None:
            self._done = True
            raise StopIteration
        if page.next_page_token:
            self._token = page.next_page_token
        return page

    def _pull(self) -> _Page | None:
        if self._stream is None:
            request = _with_token(self._base, self._token)
            self._stream = self._ctx.transport.server_stream(
                self._method, request, metadata=self._metadata, timeout=self._timeout
            )
        try:
            return next(self._stream)
        except StopIteration:
            self._stream = None
            return None
        except BaseException:
            self._stream = None
            raise

    def close(self) -> None:
        """Stop early: cancel the open server stream, if any; later iteration ends at once."""
        self._done = True
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.cancel()
