"""How one read or administration call is made: options, guards, auth recovery, retries, errors.

Every namespace (``profiles``, ``orgs``…) goes through :func:`unary` or :class:`PageStream`, so
the rules hold everywhere: nothing leaves a call but a response or a :class:`PugError`; a guard
can refuse before the network; ``UNAUTHENTICATED`` triggers at most one session refresh and one
resend; retries happen only under a caller-supplied tenacity policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypedDict, TypeVar

import grpc
import tenacity

from pug_grpc._errors import PugError, PugInvalidArgumentError, error_from_rpc

if TYPE_CHECKING:
    from grpc import _CallIterator

__all__ = [
    "AuthHook",
    "CallContext",
    "CallOptions",
    "Metadata",
    "PageStream",
    "paginate",
    "unary",
]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_T = TypeVar("_T")

PROJECT_HEADER: Final = "x-project-id"

Metadata = tuple[tuple[str, str], ...]


class CallOptions(TypedDict, total=False):
    """Per-call overrides every facade method takes as keywords; absent means the client's default.

    ``timeout`` is in seconds (``None``: no deadline); ``retry`` a ``tenacity.Retrying`` policy
    (``None``: no retries); ``project_id`` the ``x-project-id`` sent with this call.
    """

    timeout: float | None
    retry: tenacity.Retrying | None
    project_id: str | None


class AuthHook(Protocol):
    """What a JWT session offers the call layer (see ``pug_grpc._rpc.session``)."""

    def prepare(self) -> int:
        """Make the access token fresh enough to send; return its generation number."""

    def recover(self, generation: int) -> bool:
        """After ``UNAUTHENTICATED`` for ``generation``: refresh unless done; True to resend."""


@dataclass(frozen=True, slots=True)
class CallContext:
    """Defaults a namespace applies to each call; per-call arguments override them.

    ``guard`` runs before anything is sent (the ``pub_`` refusal lives there). ``require_project``
    refuses a call that would go out without an ``x-project-id`` (JWT sessions need one for
    project-scoped services; API keys imply their project).
    """

    timeout: float | None = 30.0
    retry: tenacity.Retrying | None = None
    project_id: str | None = None
    guard: Callable[[], None] | None = None
    auth: AuthHook | None = None
    require_project: bool = False

    def replace(self, **changes: object) -> CallContext:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _metadata(ctx: CallContext, options: CallOptions) -> Metadata:
    project = options.get("project_id", ctx.project_id)
    if project:
        return ((PROJECT_HEADER, project),)
    if ctx.require_project:
        raise PugInvalidArgumentError.client_side(
            "this call is project-scoped: pass project_id=... to the call or the client "
            "(or set PUG_PROJECT_ID)",
            reason="PROJECT_ID_REQUIRED",
        )
    return ()


def _attempt(
    ctx: CallContext,
    send: Callable[[Metadata, float | None], _T],
    metadata: Metadata,
    timeout: float | None,
) -> _T:
    """One attempt, with at most one session refresh and resend on ``UNAUTHENTICATED``."""
    recovered = False
    while True:
        generation = ctx.auth.prepare() if ctx.auth is not None else 0
        try:
            return send(metadata, timeout)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            if (
                not recovered
                and code == grpc.StatusCode.UNAUTHENTICATED
                and ctx.auth is not None
                and ctx.auth.recover(generation)
            ):
                recovered = True
                continue
            raise error_from_rpc(error) from error


def _run(ctx: CallContext, options: CallOptions, fn: Callable[[], _T], idempotent: bool) -> _T:
    # The client-wide default covers only calls that are safe to repeat.
    policy = options.get("retry", ctx.retry if idempotent else None)
    if policy is None:
        return fn()
    try:
        return policy.copy()(fn)
    except tenacity.RetryError as exhausted:
        # A policy without reraise=True wraps the last failure; callers are promised PugError.
        last = exhausted.last_attempt.exception()
        if isinstance(last, PugError):
            raise last from last.__cause__
        raise


def unary(
    ctx: CallContext,
    method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
    request: _Req,
    options: CallOptions,
    *,
    idempotent: bool = False,
) -> _Resp:
    """Send one unary request under ``ctx`` and the per-call ``options``.

    ``idempotent`` marks a call that only reads, so the client's default retry policy applies.
    """
    if ctx.guard is not None:
        ctx.guard()
    metadata = _metadata(ctx, options)
    deadline = options.get("timeout", ctx.timeout)

    def send(md: Metadata, t: float | None) -> _Resp:
        return method(request, timeout=t, metadata=md)

    return _run(ctx, options, lambda: _attempt(ctx, send, metadata, deadline), idempotent)


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


class _PagedRequest(Protocol):
    page_token: str

    def CopyFrom(self, other: Any, /) -> None: ...  # noqa: N802 (protobuf's name)


_PReq = TypeVar("_PReq", bound=_PagedRequest)


def every_item(
    ctx: CallContext,
    method: grpc.UnaryUnaryMultiCallable[_PReq, _Page],
    base: _PReq,
    options: CallOptions,
    items: Callable[[_Page], Iterable[_T]],
) -> Iterator[_T]:
    """Every item of a ``page_token``-paged read, fetching pages as the iteration needs them.

    The guard runs now, so a refused read fails at the call rather than at the first ``next()``.
    """
    if ctx.guard is not None:
        ctx.guard()

    def fetch(token: str) -> _Page:
        req = type(base)()
        req.CopyFrom(base)
        if token:
            req.page_token = token
        return unary(ctx, method, req, options, idempotent=True)

    return (item for page in paginate(fetch, base.page_token) for item in items(page))


class PageStream(Iterator[_Page]):
    """Pages of a server-streaming call that itself pages (``ProfilesService.List``).

    Each page is one retry unit: after a failure the stream is reopened from the last
    ``next_page_token`` received, so a retry policy resumes instead of starting over.
    """

    def __init__(
        self,
        ctx: CallContext,
        open_stream: Callable[[str, Metadata, float | None], _CallIterator[_Page]],
        options: CallOptions,
        *,
        first_token: str = "",
    ) -> None:
        if ctx.guard is not None:
            ctx.guard()
        self._ctx = ctx
        self._open = open_stream
        self._token = first_token
        self._metadata = _metadata(ctx, options)
        self._timeout = options.get("timeout", ctx.timeout)
        self._options = options
        self._stream: _CallIterator[_Page] | None = None
        self._done = False

    def __iter__(self) -> PageStream[_Page]:
        return self

    def __next__(self) -> _Page:
        if self._done:
            raise StopIteration
        page = _run(
            self._ctx,
            self._options,
            lambda: _attempt(self._ctx, self._pull, self._metadata, self._timeout),
            True,
        )
        if page is None:
            self._done = True
            raise StopIteration
        if page.next_page_token:
            self._token = page.next_page_token
        return page

    def _pull(self, metadata: Metadata, timeout: float | None) -> _Page | None:
        if self._stream is None:
            self._stream = self._open(self._token, metadata, timeout)
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
