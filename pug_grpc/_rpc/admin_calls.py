"""What ``PugAdmin`` and ``AsyncPugAdmin`` share: contexts, namespaces by name, the sign-in flows.

A facade opens its transports and its session (threaded or asyncio) and hands them here; the
contexts, the project switch and every ``public.auth.v1`` flow (request building, adopting the
returned tokens) are written once. A sign-in passes what it keeps from the reply as ``then=``,
so the same method serves the blocking path and, on an asynchronous context, the awaited one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, Unpack

import grpc

from pug_grpc._credentials import CredentialHeaders, mask
from pug_grpc._errors import PugError
from pug_grpc._names import ENV_PROJECT_ID
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.call import CallContext, CallOptions, unary
from pug_grpc._rpc.convert import request
from pug_grpc._rpc.transport import Transport, method
from pug_grpc.gen.public.auth.v1 import auth_pb2 as auth_pb

if TYPE_CHECKING:
    from pug_grpc._rpc.aio_transport import AsyncTransport

__all__ = ["AdminCalls", "Scope", "check_options", "connect_pair", "tls_credentials"]

_log = logging.getLogger("pug_grpc.admin")

_T = TypeVar("_T")

Scope = Literal["org", "project", "public"]
"""Which context a namespace calls under: the session without or with ``x-project-id``, or no
credential at all."""


class _TokenHolder(Protocol):
    @property
    def refresh_token(self) -> str | None: ...

    def set_tokens(self, access_token: str, refresh_token: str | None) -> None: ...

    def clear(self) -> None: ...


_S = TypeVar("_S", bound=_TokenHolder)

_AUTH = auth_pb.DESCRIPTOR.services_by_name["AuthService"]
_SIGN_IN_WITH_EMAIL = method(
    _AUTH, "SignInWithEmail", auth_pb.SignInWithEmailRequest, auth_pb.SignInWithEmailResponse
)
_REQUEST_MAGIC_LINK = method(
    _AUTH, "RequestMagicLink", auth_pb.RequestMagicLinkRequest, auth_pb.RequestMagicLinkResponse
)
_COMPLETE_MAGIC_LINK = method(
    _AUTH,
    "CompleteMagicLink",
    auth_pb.CompleteMagicLinkRequest,
    auth_pb.CompleteMagicLinkResponse,
)
_COMPLETE_OAUTH = method(
    _AUTH,
    "CompleteOAuthSignIn",
    auth_pb.CompleteOAuthSignInRequest,
    auth_pb.CompleteOAuthSignInResponse,
)
_REFRESH_SESSION = method(
    _AUTH, "RefreshSession", auth_pb.RefreshSessionRequest, auth_pb.RefreshSessionResponse
)
_SIGN_OUT = method(_AUTH, "SignOut", auth_pb.SignOutRequest, auth_pb.SignOutResponse)
_DEMO_SIGN_IN = method(_AUTH, "DemoSignIn", auth_pb.DemoSignInRequest, auth_pb.DemoSignInResponse)


def check_options(retry: object, transport: object) -> None:
    """Refuse an admin client's ``retry`` or ``transport`` that no call could use."""
    if retry is not None and not isinstance(retry, RetrySettings):
        raise TypeError(f"retry takes pug_grpc.RetrySettings or None, not {type(retry)}")
    if transport not in ("grpc", "connect"):
        raise ValueError(f'transport must be "grpc" or "connect", not {transport!r}')


def connect_pair(
    target: str,
    bearer: CredentialHeaders,
    *,
    grpc_options: bool,
    allow_insecure: bool,
    root_certificates: bytes | None,
) -> tuple[Transport, Transport]:
    """The public and the signed-in Connect transports of an admin client, on one pool.

    ``grpc_options`` says that ``channel``, ``credentials`` or ``channel_options`` were given,
    which only ``transport="grpc"`` takes.
    """
    if grpc_options:
        raise ValueError(
            'channel, credentials and channel_options are for transport="grpc"; '
            'with transport="connect" pass root_certificates= for a private root'
        )
    from pug_grpc._rpc.connect import ConnectTransport

    public = ConnectTransport(
        target, allow_insecure=allow_insecure, root_certificates=root_certificates
    )
    return public, public.with_credentials(bearer)


def tls_credentials(
    credentials: grpc.ChannelCredentials | None, root_certificates: bytes | None
) -> grpc.ChannelCredentials | None:
    """The channel credentials to use: the caller's, or TLS trusting ``root_certificates``."""
    if credentials is None and root_certificates is not None:
        return grpc.ssl_channel_credentials(root_certificates=root_certificates)
    return credentials


def _pair(reply: auth_pb.RefreshSessionResponse) -> tuple[str, str]:
    return reply.token, reply.refresh_token


class AdminCalls(Generic[_S]):
    """The calls of an admin client over its two transports; ``session`` keeps the tokens.

    ``public`` carries no credential (sign-in, refresh, shared dashboards), ``authed`` the
    session's bearer token. ``asynchronous`` marks the asyncio client's transports; ``name``
    is the client's, for messages.
    """

    def __init__(
        self,
        public: Transport | AsyncTransport,
        authed: Transport | AsyncTransport,
        *,
        session: _S,
        timeout: float | None,
        retry: RetrySettings | None,
        project_id: str | None,
        asynchronous: bool = False,
        name: str | None = None,
    ) -> None:
        self.session = session
        self._name = name or type(self).__name__
        self._authed_transport = authed
        self._timeout = timeout
        self._retry = retry
        self._closed = False
        self._lock = threading.Lock()
        self._project_id = project_id or os.environ.get(ENV_PROJECT_ID) or None
        self._path: dict[str, Any] = (
            {"asynchronous": True, "sleep": asyncio.sleep} if asynchronous else {}
        )
        self._public = CallContext(
            transport=public, timeout=timeout, guard=self._check_open, **self._path
        )
        self._namespaces: dict[str, object] = {}

    def _check_open(self) -> None:
        if self._closed:
            raise PugError.client_side(f"this {self._name} is closed", reason="CLIENT_CLOSED")

    @property
    def project_id(self) -> str | None:
        """The project sent as ``x-project-id`` on project-scoped calls."""
        return self._project_id

    @project_id.setter
    def project_id(self, value: str | None) -> None:
        """Switch project; namespaces built for the old one are dropped."""
        with self._lock:
            self._project_id = value or None
            self._namespaces.clear()

    def _context(self, scope: Scope) -> CallContext:
        if scope == "public":
            return self._public.replace(retry=self._retry)
        project = scope == "project"
        return CallContext(
            transport=self._authed_transport,
            timeout=self._timeout,
            retry=self._retry,
            project_id=self._project_id if project else None,
            guard=self._check_open,
            auth=self.session,  # type: ignore[arg-type]
            require_project=project,
            **self._path,
        )

    def _namespace(self, name: str, factory: Callable[[CallContext], _T], scope: Scope) -> _T:
        """The namespace ``name``, built on first use for the current project."""
        with self._lock:
            found = self._namespaces.get(name)
            if found is None:
                found = factory(self._context(scope))
                self._namespaces[name] = found
            return found  # type: ignore[return-value]

    # -- authentication (public.auth.v1, no credential sent) -------------------------------

    def _trade_refresh_token(self, refresh_token: str) -> tuple[str, str]:
        req = auth_pb.RefreshSessionRequest(refresh_token=refresh_token)
        return unary(self._public, _REFRESH_SESSION, req, {}, then=_pair)

    def _adopting(self, how: str, *, project: bool = False) -> Callable[[_T], _T]:
        """What a sign-in does with its reply: keep the tokens (and with ``project``, adopt
        the reply's project when none is set), return the reply."""

        def adopt(reply: Any) -> Any:
            token = reply.token
            if not token:
                raise PugError.client_side(
                    f"{how} returned no access token", reason="NO_ACCESS_TOKEN"
                )
            self.session.set_tokens(token, reply.refresh_token)
            _log.info("signed in (%s); access token %s", how, mask(token))
            if project and reply.project_id and not self._project_id:
                self.project_id = reply.project_id
            return reply

        return adopt

    def sign_in_with_email(
        self,
        email: str | auth_pb.SignInWithEmailRequest,
        password: str | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> auth_pb.SignInWithEmailResponse:
        """Sign in with email and password; the session keeps the returned tokens."""
        req = request(
            auth_pb.SignInWithEmailRequest,
            email,
            first="email",
            required=("email", "password"),
            password=password,
        )
        return unary(
            self._public, _SIGN_IN_WITH_EMAIL, req, options, then=self._adopting("email sign-in")
        )

    def request_magic_link(
        self, email: str | auth_pb.RequestMagicLinkRequest, /, **options: Unpack[CallOptions]
    ) -> auth_pb.RequestMagicLinkResponse:
        """Mail a sign-in link; finish with :meth:`complete_magic_link` and the link's token."""
        req = request(auth_pb.RequestMagicLinkRequest, email, first="email", required=("email",))
        return unary(self._public, _REQUEST_MAGIC_LINK, req, options)

    def complete_magic_link(
        self,
        token: str | auth_pb.CompleteMagicLinkRequest,
        /,
        *,
        timezone: str | None = None,
        **options: Unpack[CallOptions],
    ) -> auth_pb.CompleteMagicLinkResponse:
        """Sign in with the token from a magic link."""
        req = request(
            auth_pb.CompleteMagicLinkRequest,
            token,
            first="token",
            required=("token",),
            timezone=timezone,
        )
        return unary(
            self._public, _COMPLETE_MAGIC_LINK, req, options, then=self._adopting("magic link")
        )

    def complete_oauth_sign_in(
        self,
        provider: str | int | auth_pb.CompleteOAuthSignInRequest,
        credential: str | None = None,
        /,
        *,
        timezone: str | None = None,
        **options: Unpack[CallOptions],
    ) -> auth_pb.CompleteOAuthSignInResponse:
        """Sign in with an OAuth provider's credential (``provider="google"``)."""
        req = request(
            auth_pb.CompleteOAuthSignInRequest,
            provider,
            first="provider",
            required=("provider", "credential"),
            credential=credential,
            timezone=timezone,
        )
        return unary(self._public, _COMPLETE_OAUTH, req, options, then=self._adopting("OAuth"))

    def demo_sign_in(
        self, request_: auth_pb.DemoSignInRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> auth_pb.DemoSignInResponse:
        """Sign in to the demo project; adopts its project id when none is set."""
        req = request(auth_pb.DemoSignInRequest, request_)
        return unary(
            self._public, _DEMO_SIGN_IN, req, options, then=self._adopting("demo", project=True)
        )

    def sign_out(self, **options: Unpack[CallOptions]) -> auth_pb.SignOutResponse:
        """Revoke the refresh token on the server and forget both tokens here.

        The tokens are forgotten first, so they are gone even when the server call fails.
        """
        req = auth_pb.SignOutRequest()
        token = self.session.refresh_token
        if token:
            req.refresh_token = token
        self.session.clear()
        return unary(self._public, _SIGN_OUT, req, options)
