"""``PugAdmin``: a signed-in customer's client for the dashboard services and the shared reads."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, Unpack

import grpc
import tenacity

from pug_grpc._credentials import CredentialsInterceptor, mask
from pug_grpc._errors import PugError
from pug_grpc._rpc.activity import Activity
from pug_grpc._rpc.call import CallContext, CallOptions, unary
from pug_grpc._rpc.convert import request
from pug_grpc._rpc.dashboards import Dashboards, SharedDashboards
from pug_grpc._rpc.insights import Insights
from pug_grpc._rpc.orgs import Customers, EmailProviders, Orgs
from pug_grpc._rpc.profiles import Profiles
from pug_grpc._rpc.projects import Projects
from pug_grpc._rpc.session import Session
from pug_grpc._transport import intercept, open_channel
from pug_grpc.gen.public.auth.v1 import auth_pb2 as auth_pb
from pug_grpc.gen.public.auth.v1 import auth_pb2_grpc as auth_grpc

__all__ = ["PugAdmin"]

_log = logging.getLogger("pug_grpc.admin")

_T = TypeVar("_T")

_ENV_ENDPOINT = "PUG_ENDPOINT"
_ENV_PROJECT = "PUG_PROJECT_ID"


class PugAdmin:
    """Administration and reads as a signed-in customer (JWT), for operators' automation.

    Sign in with :meth:`sign_in_with_email` (or a magic link / OAuth completion), or pass tokens
    kept from an earlier session. The access token is refreshed before its ``exp`` and once when
    the server answers ``UNAUTHENTICATED``; ``on_tokens`` is told about every new pair so you can
    persist the rotated refresh token. ``project_id`` (or ``PUG_PROJECT_ID``) is sent as
    ``x-project-id`` on project-scoped calls; every call can override it with ``project_id=``.

    ``retry`` (a ``tenacity.Retrying``) is the default for read-only calls; calls that change
    something are retried only when given ``retry=`` themselves.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        project_id: str | None = None,
        timeout: float | None = 30.0,
        retry: tenacity.Retrying | None = None,
        channel: grpc.Channel | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        allow_insecure: bool = False,
        refresh_margin: float = 60.0,
        on_tokens: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if channel is None:
            target = endpoint or os.environ.get(_ENV_ENDPOINT, "")
            channel = open_channel(
                target,
                credentials=credentials,
                channel_options=channel_options,
                allow_insecure=allow_insecure,
            )
            self._owns_channel = True
        else:
            self._owns_channel = False
        self._raw = channel
        self._timeout = timeout
        self._retry = retry
        self._closed = False
        self._lock = threading.Lock()
        self._project_id = project_id or os.environ.get(_ENV_PROJECT) or None
        self._auth = auth_grpc.AuthServiceStub(channel)
        self._public = CallContext(timeout=timeout, guard=self._check_open)
        self.session = Session(
            self._trade_refresh_token,
            access_token=access_token,
            refresh_token=refresh_token,
            clock=clock,
            refresh_margin=refresh_margin,
            on_tokens=on_tokens,
        )
        self._authed = intercept(
            channel, CredentialsInterceptor(access_token=self.session.token_for_call)
        )
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
        """Close the channel (when this client opened it). Tokens are kept; see sign_out()."""
        self._closed = True
        if self._owns_channel:
            self._raw.close()

    def __enter__(self) -> PugAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def channel(self) -> grpc.Channel:
        """The authenticated channel, for the generated stubs (``*_pb2_grpc.*Stub``)."""
        return self._authed

    @property
    def project_id(self) -> str | None:
        return self._project_id

    @project_id.setter
    def project_id(self, value: str | None) -> None:
        with self._lock:
            self._project_id = value or None
            self._namespaces.clear()

    # -- namespaces ------------------------------------------------------------------------

    def _context(self, *, project: bool) -> CallContext:
        return CallContext(
            timeout=self._timeout,
            retry=self._retry,
            project_id=self._project_id if project else None,
            guard=self._check_open,
            auth=self.session,
            require_project=project,
        )

    def _namespace(
        self, name: str, factory: Callable[[grpc.Channel, CallContext], _T], *, project: bool
    ) -> _T:
        with self._lock:
            found = self._namespaces.get(name)
            if found is None:
                found = factory(self._authed, self._context(project=project))
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
                public = self._public.replace(retry=self._retry)
                found = SharedDashboards(self._raw, public)
                self._namespaces["shared_dashboards"] = found
            return found

    # -- authentication (public.auth.v1, no credential sent) -------------------------------

    def _trade_refresh_token(self, refresh_token: str) -> tuple[str, str]:
        req = auth_pb.RefreshSessionRequest(refresh_token=refresh_token)
        resp = unary(self._public, self._auth.RefreshSession, req, {})
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
        resp = unary(self._public, self._auth.SignInWithEmail, req, options)
        self._adopt(resp.token, resp.refresh_token, "email sign-in")
        return resp

    def request_magic_link(
        self, email: str | auth_pb.RequestMagicLinkRequest, /, **options: Unpack[CallOptions]
    ) -> auth_pb.RequestMagicLinkResponse:
        """Mail a sign-in link; finish with :meth:`complete_magic_link` and the link's token."""
        req = request(auth_pb.RequestMagicLinkRequest, email, first="email", required=("email",))
        return unary(self._public, self._auth.RequestMagicLink, req, options)

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
        resp = unary(self._public, self._auth.CompleteMagicLink, req, options)
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
        resp = unary(self._public, self._auth.CompleteOAuthSignIn, req, options)
        self._adopt(resp.token, resp.refresh_token, "OAuth")
        return resp

    def demo_sign_in(
        self, request_: auth_pb.DemoSignInRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> auth_pb.DemoSignInResponse:
        """Sign in to the demo project; adopts its project id when none is set."""
        req = request(auth_pb.DemoSignInRequest, request_)
        resp = unary(self._public, self._auth.DemoSignIn, req, options)
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
            return unary(self._public, self._auth.SignOut, req, options)
        finally:
            self.session.clear()
