"""``PugAdmin``: a signed-in customer's client for the dashboard services and the shared reads."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, Unpack

import grpc

from pug_grpc._credentials import CredentialHeaders, CredentialsInterceptor, mask
from pug_grpc._errors import PugError
from pug_grpc._names import ENV_ENDPOINT, ENV_PROJECT_ID
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.activity import Activity
from pug_grpc._rpc.call import CallContext, CallOptions, unary
from pug_grpc._rpc.convert import request
from pug_grpc._rpc.dashboards import Dashboards, SharedDashboards
from pug_grpc._rpc.insights import Insights
from pug_grpc._rpc.orgs import Customers, EmailProviders, Orgs
from pug_grpc._rpc.profiles import Profiles
from pug_grpc._rpc.projects import Projects
from pug_grpc._rpc.session import Session
from pug_grpc._rpc.transport import GrpcTransport, Transport, method
from pug_grpc._transport import intercept, open_channel, parse_endpoint
from pug_grpc.gen.public.auth.v1 import auth_pb2 as auth_pb

__all__ = ["PugAdmin"]

_log = logging.getLogger("pug_grpc.admin")

_T = TypeVar("_T")

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


class PugAdmin:
    """Administration and reads as a signed-in customer (JWT), for operators' automation.

    Sign in with :meth:`sign_in_with_email` (or a magic link / OAuth completion), or pass tokens
    kept from an earlier session. The access token is refreshed before its ``exp`` and once when
    the server answers ``UNAUTHENTICATED``; ``on_tokens`` is told about every new pair so you can
    persist the rotated refresh token. ``project_id`` (or ``PUG_PROJECT_ID``) is sent as
    ``x-project-id`` on project-scoped calls; every call can override it with ``project_id=``.

    ``retry`` (a :class:`pug_grpc.RetrySettings`; ``None``, the default, for no retries) applies
    to calls that only read; a call that changes something is retried only when given
    ``retry=`` itself. ``transport="connect"`` speaks the Connect protocol over HTTP/1.1 or
    HTTP/2 (the ``pug-grpc[connect]`` extra), which reaches Pug's own HTTP/1.1 port without an
    HTTP/2 front; ``channel``, ``credentials`` and ``channel_options`` are gRPC's and do not
    apply to it. ``root_certificates`` (PEM) replaces the system trust roots for either
    transport.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        project_id: str | None = None,
        timeout: float | None = 30.0,
        retry: RetrySettings | None = None,
        transport: Literal["grpc", "connect"] = "grpc",
        channel: grpc.Channel | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        root_certificates: bytes | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        allow_insecure: bool = False,
        refresh_margin: float = 60.0,
        on_tokens: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retry is not None and not isinstance(retry, RetrySettings):
            raise TypeError(f"retry takes pug_grpc.RetrySettings or None, not {type(retry)}")
        if transport not in ("grpc", "connect"):
            raise ValueError(f'transport must be "grpc" or "connect", not {transport!r}')
        target = endpoint or os.environ.get(ENV_ENDPOINT, "")
        self.session = Session(
            self._trade_refresh_token,
            access_token=access_token,
            refresh_token=refresh_token,
            clock=clock,
            refresh_margin=refresh_margin,
            on_tokens=on_tokens,
        )
        bearer = CredentialHeaders(access_token=self.session.token_for_call)
        self._raw: grpc.Channel | None = None
        self._authed: grpc.Channel | None = None
        self._owns_channel = channel is None
        public: Transport
        authed: Transport
        if transport == "connect":
            if channel is not None or credentials is not None or channel_options:
                raise ValueError(
                    'channel, credentials and channel_options are for transport="grpc"; '
                    'with transport="connect" pass root_certificates= for a private root'
                )
            from pug_grpc._rpc.connect import ConnectTransport

            public_connect = ConnectTransport(
                target, allow_insecure=allow_insecure, root_certificates=root_certificates
            )
            public, authed = public_connect, public_connect.with_credentials(bearer)
        else:
            if credentials is None and root_certificates is not None:
                credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            tls: bool | None = None
            if channel is None:
                channel = open_channel(
                    target,
                    credentials=credentials,
                    channel_options=channel_options,
                    allow_insecure=allow_insecure,
                )
                tls = parse_endpoint(
                    target, allow_insecure=allow_insecure, force_tls=credentials is not None
                ).tls
            self._raw = channel
            self._authed = intercept(channel, CredentialsInterceptor(bearer))
            shown = target if self._owns_channel else None
            public = GrpcTransport(channel, endpoint=shown, tls=tls)
            authed = GrpcTransport(self._authed, endpoint=shown, tls=tls)
        self._transports = (public, authed)
        self._timeout = timeout
        self._retry = retry
        self._closed = False
        self._lock = threading.Lock()
        self._project_id = project_id or os.environ.get(ENV_PROJECT_ID) or None
        self._public = CallContext(transport=public, timeout=timeout, guard=self._check_open)
        self._namespaces: dict[str, object] = {}

    def __repr__(self) -> str:
        return (
            f"PugAdmin(project_id={self._project_id!r}, "
            f"access_token={mask(self.session.access_token)})"
        )

    # -- lifecycle -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise PugError.client_side("this PugAdmin is closed", reason="CLIENT_CLOSED")

    def close(self) -> None:
        """Close the connection (when this client opened it). Tokens are kept; see sign_out()."""
        self._closed = True
        if not self._owns_channel:
            return
        if self._raw is not None:
            self._raw.close()
        for transport in self._transports:
            transport.close()

    def __enter__(self) -> PugAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def channel(self) -> grpc.Channel:
        """The authenticated channel, for the generated stubs (``*_pb2_grpc.*Stub``).

        Only with ``transport="grpc"``: the Connect transport has no channel.
        """
        if self._authed is None:
            raise PugError.client_side(
                'a PugAdmin with transport="connect" has no gRPC channel', reason="NO_CHANNEL"
            )
        return self._authed

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

    # -- namespaces ------------------------------------------------------------------------

    def _context(self, *, project: bool) -> CallContext:
        return CallContext(
            transport=self._transports[1],
            timeout=self._timeout,
            retry=self._retry,
            project_id=self._project_id if project else None,
            guard=self._check_open,
            auth=self.session,
            require_project=project,
        )

    def _namespace(self, name: str, factory: Callable[[CallContext], _T], *, project: bool) -> _T:
        with self._lock:
            found = self._namespaces.get(name)
            if found is None:
                found = factory(self._context(project=project))
                self._namespaces[name] = found
            return found  # type: ignore[return-value]

    @property
    def orgs(self) -> Orgs:
        """Organisations, members and invitations (``dashboard.orgs.v1``)."""
        return self._namespace("orgs", Orgs, project=False)

    @property
    def projects(self) -> Projects:
        """Projects and their API keys (``dashboard.projects.v1``)."""
        return self._namespace("projects", Projects, project=True)

    @property
    def dashboards(self) -> Dashboards:
        """The current project's dashboards, including rendering (``QueryDashboard``)."""
        return self._namespace("dashboards", Dashboards, project=True)

    @property
    def customers(self) -> Customers:
        """The signed-in customer's account (``dashboard.customers.v1``)."""
        return self._namespace("customers", Customers, project=False)

    @property
    def email_providers(self) -> EmailProviders:
        """An organisation's outgoing mail settings (``dashboard.orgemailproviders.v1``)."""
        return self._namespace("email_providers", EmailProviders, project=False)

    @property
    def profiles(self) -> Profiles:
        """The shared profile reads, as this customer, in the current project."""
        return self._namespace("profiles", Profiles, project=True)

    @property
    def activity(self) -> Activity:
        """The shared activity reads, as this customer, in the current project."""
        return self._namespace("activity", Activity, project=True)

    @property
    def insights(self) -> Insights:
        """The shared insight queries, as this customer, in the current project."""
        return self._namespace("insights", Insights, project=True)

    @property
    def shared_dashboards(self) -> SharedDashboards:
        """Public dashboards by share id; these calls carry no credential."""
        with self._lock:
            found = self._namespaces.get("shared_dashboards")
            if not isinstance(found, SharedDashboards):
                found = SharedDashboards(self._public.replace(retry=self._retry))
                self._namespaces["shared_dashboards"] = found
            return found

    # -- authentication (public.auth.v1, no credential sent) -------------------------------

    def _trade_refresh_token(self, refresh_token: str) -> tuple[str, str]:
        req = auth_pb.RefreshSessionRequest(refresh_token=refresh_token)
        resp = unary(self._public, _REFRESH_SESSION, req, {})
        return resp.token, resp.refresh_token

    def _adopt(self, token: str, refresh_token: str, how: str) -> None:
        if not token:
            raise PugError.client_side(f"{how} returned no access token", reason="NO_ACCESS_TOKEN")
        self.session.set_tokens(token, refresh_token)
        _log.info("signed in (%s); access token %s", how, mask(token))

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
        resp = unary(self._public, _SIGN_IN_WITH_EMAIL, req, options)
        self._adopt(resp.token, resp.refresh_token, "email sign-in")
        return resp

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
        resp = unary(self._public, _COMPLETE_MAGIC_LINK, req, options)
        self._adopt(resp.token, resp.refresh_token, "magic link")
        return resp

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
        resp = unary(self._public, _COMPLETE_OAUTH, req, options)
        self._adopt(resp.token, resp.refresh_token, "OAuth")
        return resp

    def demo_sign_in(
        self, request_: auth_pb.DemoSignInRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> auth_pb.DemoSignInResponse:
        """Sign in to the demo project; adopts its project id when none is set."""
        req = request(auth_pb.DemoSignInRequest, request_)
        resp = unary(self._public, _DEMO_SIGN_IN, req, options)
        self._adopt(resp.token, resp.refresh_token, "demo")
        if resp.project_id and not self._project_id:
            self.project_id = resp.project_id
        return resp

    def refresh(self) -> None:
        """Trade the refresh token for a new pair now (normally automatic)."""
        self._check_open()
        self.session.refresh()

    def sign_out(self, **options: Unpack[CallOptions]) -> auth_pb.SignOutResponse:
        """Revoke the refresh token on the server and forget both tokens here.

        The tokens are forgotten even when the server call fails.
        """
        req = auth_pb.SignOutRequest()
        token = self.session.refresh_token
        if token:
            req.refresh_token = token
        try:
            return unary(self._public, _SIGN_OUT, req, options)
        finally:
            self.session.clear()
