"""``PugAdmin``: a signed-in customer's client for the dashboard services and the shared reads."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import grpc

from pug_grpc._credentials import CredentialHeaders, CredentialsInterceptor, mask
from pug_grpc._errors import PugError
from pug_grpc._names import ENV_ENDPOINT
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.activity import Activity
from pug_grpc._rpc.admin_calls import AdminCalls, check_options, connect_pair, tls_credentials
from pug_grpc._rpc.dashboards import Dashboards, SharedDashboards
from pug_grpc._rpc.insights import Insights
from pug_grpc._rpc.orgs import Customers, EmailProviders, Orgs
from pug_grpc._rpc.profiles import Profiles
from pug_grpc._rpc.projects import Projects
from pug_grpc._rpc.session import Session
from pug_grpc._rpc.transport import GrpcTransport, Transport
from pug_grpc._transport import intercept, open_channel, parse_endpoint

__all__ = ["PugAdmin"]


class PugAdmin(AdminCalls[Session]):
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
        check_options(retry, transport)
        target = endpoint or os.environ.get(ENV_ENDPOINT, "")
        session = Session(
            self._trade_refresh_token,
            access_token=access_token,
            refresh_token=refresh_token,
            clock=clock,
            refresh_margin=refresh_margin,
            on_tokens=on_tokens,
        )
        bearer = CredentialHeaders(access_token=session.token_for_call)
        self._raw: grpc.Channel | None = None
        self._authed: grpc.Channel | None = None
        self._owns_channel = channel is None
        public: Transport
        authed: Transport
        if transport == "connect":
            public, authed = connect_pair(
                target,
                bearer,
                grpc_options=channel is not None
                or credentials is not None
                or bool(channel_options),
                allow_insecure=allow_insecure,
                root_certificates=root_certificates,
            )
        else:
            credentials = tls_credentials(credentials, root_certificates)
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
        super().__init__(
            public, authed, session=session, timeout=timeout, retry=retry, project_id=project_id
        )

    def __repr__(self) -> str:
        return (
            f"PugAdmin(project_id={self._project_id!r}, "
            f"access_token={mask(self.session.access_token)})"
        )

    # -- lifecycle -------------------------------------------------------------------------

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

    def refresh(self) -> None:
        """Trade the refresh token for a new pair now (normally automatic)."""
        self._check_open()
        self.session.refresh()

    # -- namespaces ------------------------------------------------------------------------

    @property
    def orgs(self) -> Orgs:
        """Organisations, members and invitations (``dashboard.orgs.v1``)."""
        return self._namespace("orgs", Orgs, "org")

    @property
    def projects(self) -> Projects:
        """Projects and their API keys (``dashboard.projects.v1``)."""
        return self._namespace("projects", Projects, "project")

    @property
    def dashboards(self) -> Dashboards:
        """The current project's dashboards, including rendering (``QueryDashboard``)."""
        return self._namespace("dashboards", Dashboards, "project")

    @property
    def customers(self) -> Customers:
        """The signed-in customer's account (``dashboard.customers.v1``)."""
        return self._namespace("customers", Customers, "org")

    @property
    def email_providers(self) -> EmailProviders:
        """An organisation's outgoing mail settings (``dashboard.orgemailproviders.v1``)."""
        return self._namespace("email_providers", EmailProviders, "org")

    @property
    def profiles(self) -> Profiles:
        """The shared profile reads, as this customer, in the current project."""
        return self._namespace("profiles", Profiles, "project")

    @property
    def activity(self) -> Activity:
        """The shared activity reads, as this customer, in the current project."""
        return self._namespace("activity", Activity, "project")

    @property
    def insights(self) -> Insights:
        """The shared insight queries, as this customer, in the current project."""
        return self._namespace("insights", Insights, "project")

    @property
    def shared_dashboards(self) -> SharedDashboards:
        """Public dashboards by share id; these calls carry no credential."""
        return self._namespace("shared_dashboards", SharedDashboards, "public")
