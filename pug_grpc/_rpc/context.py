"""The rules of one read or administration call that do not depend on how it is awaited.

Per-call options and their defaults, the context a namespace calls under, the ``x-project-id``
rules, which failures earn a session refresh or end a call at once, and page-token handling:
the synchronous path (:mod:`pug_grpc._rpc.call`) and the asyncio path
(:mod:`pug_grpc._rpc.aio_call`) both decide by these functions.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypedDict, TypeVar

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
from pug_grpc._retry import RetrySettings, status_code
from pug_grpc._rpc.transport import Metadata, Transport

if TYPE_CHECKING:
    from pug_grpc._rpc.aio_transport import AsyncTransport

__all__ = [
    "USE_CLIENT_DEFAULT",
    "AsyncAuthHook",
    "AuthHook",
    "CallContext",
    "CallOptions",
    "Paged",
    "TokenTrail",
    "UseClientDefault",
    "call_metadata",
    "check",
    "converted",
    "option",
    "retry_settings",
    "unrecoverable",
    "wants_refresh",
    "with_token",
]

_Req = TypeVar("_Req", bound=Message)
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


class AsyncAuthHook(Protocol):
    """:class:`AuthHook` for the asyncio path (see ``pug_grpc._rpc.aio_session``)."""

    async def prepare(self) -> int:
        """Make the access token fresh enough to send; return its generation number."""

    async def recover(self, generation: int) -> bool:
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

    ``asynchronous`` marks a context of the asyncio clients: its ``transport`` is an
    :class:`~pug_grpc._rpc.aio_transport.AsyncTransport`, its ``auth`` an asyncio session and
    its ``sleep`` a coroutine function, and every call goes through
    :mod:`pug_grpc._rpc.aio_call`.
    """

    transport: Transport | AsyncTransport
    timeout: float | None = 30.0
    retry: RetrySettings | None = None
    project_id: str | None = None
    guard: Callable[[], None] | None = None
    auth: AuthHook | AsyncAuthHook | None = None
    require_project: bool = False
    api_key: bool = False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Any] = time.sleep
    asynchronous: bool = False

    def replace(self, **changes: Any) -> CallContext:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


def option(options: CallOptions, name: str, default: _T) -> Any:
    """The per-call value of option ``name``, or ``default`` when absent or USE_CLIENT_DEFAULT."""
    value = options.get(name, USE_CLIENT_DEFAULT)
    return default if value is USE_CLIENT_DEFAULT else value


def call_metadata(ctx: CallContext, options: CallOptions) -> Metadata:
    """The ``x-project-id`` of a call, or the refusal of a project it cannot (or must) carry."""
    given = option(options, "project_id", None)
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


def converted(ctx: CallContext, error: grpc.RpcError) -> PugError:
    """``error`` as the :class:`PugError` to raise, with this context's endpoint in messages."""
    transport = ctx.transport
    return error_from_rpc(error, tls=transport.tls, endpoint=transport.endpoint)


def wants_refresh(ctx: CallContext, error: grpc.RpcError, recovered: bool) -> bool:
    """Whether a failed attempt earns the one session refresh and resend of a call."""
    return (
        not recovered
        and ctx.auth is not None
        and status_code(error) == grpc.StatusCode.UNAUTHENTICATED
    )


def unrecoverable(ctx: CallContext, error: grpc.RpcError) -> PugError | None:
    """The converted error when no other attempt can cure ``error``, else ``None``.

    A misconfigured endpoint or a message over a size limit is raised at once, so no retry
    policy spends its budget on it.
    """
    error_out = converted(ctx, error)
    found = diagnose(error, tls=ctx.transport.tls)
    if (found is not None and not found.retryable) or isinstance(
        error_out, PugMessageTooLargeError
    ):
        return error_out
    return None


def retry_settings(
    ctx: CallContext, options: CallOptions, idempotent: bool
) -> RetrySettings | None:
    """The retry settings of one call: its own ``retry=``, else the default for reads only."""
    settings: object = option(options, "retry", ctx.retry if idempotent else None)
    if settings is not None and not isinstance(settings, RetrySettings):
        raise TypeError(f"retry= takes RetrySettings or None, not {type(settings).__name__}")
    return settings


def check(ctx: CallContext, options: CallOptions) -> Metadata:
    """What runs before anything is sent: the guard, then the call's metadata."""
    if ctx.guard is not None:
        ctx.guard()
    return call_metadata(ctx, options)


class Paged(Protocol):
    """A reply that may have a next page."""

    @property
    def next_page_token(self) -> str: ...


class TokenTrail:
    """The page tokens a listing has followed: the next one to ask for, and the loop guard."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def follow(self, page: Paged) -> str | None:
        """The token after ``page``, or ``None`` at the end; a repeated token is refused."""
        token = page.next_page_token
        if not token:
            return None
        if token in self._seen:
            raise PugError(
                f"the server repeated page token {token[:32]!r}; stopping to avoid a loop",
                code=grpc.StatusCode.INTERNAL,
                reason="PAGE_TOKEN_REPEATED",
            )
        self._seen.add(token)
        return token


def with_token(base: _Req, token: str) -> _Req:
    """A copy of the listing request ``base`` asking for the page at ``token``."""
    request = type(base)()
    request.CopyFrom(base)
    if token:
        request.page_token = token  # type: ignore[attr-defined]
    return request
