"""``AsyncPugAdmin``: :class:`~pug_grpc.PugAdmin` for asyncio, on ``grpc.aio``.

The constructor, the namespaces and every argument are ``PugAdmin``'s; the calls are its own
(:mod:`pug_grpc._rpc.admin_calls` and the synchronous namespaces), run on asynchronous
contexts and awaited. The channel opens on the first call, inside the running loop.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import grpc
import grpc.aio

from pug_grpc._credentials import CredentialHeaders, mask
from pug_grpc._errors import PugError
from pug_grpc._names import ENV_ENDPOINT
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.admin_calls import AdminCalls, check_options, connect_pair, tls_credentials
from pug_grpc._rpc.aio import (
    AsyncActivity,
    AsyncCustomers,
    AsyncDashboards,
    AsyncEmailProviders,
    AsyncInsights,
    AsyncOrgs,
    AsyncProfiles,
    AsyncProjects,
    AsyncSharedDashboards,
    awaited,
)
from pug_grpc._rpc.aio_session import AsyncSession
from pug_grpc._rpc.aio_transport import (
    AioTransport,
    AsyncClosing,
    AsyncTransport,
    LoopChannel,
    ThreadedTransport,
)
from pug_grpc._transport import open_aio_channel, parse_endpoint

__all__ = ["AsyncPugAdmin"]

_log = logging.getLogger("pug_grpc.admin")


class _Bearer(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Adds the session's bearer token to the calls of generated stubs on ``admin.channel``.

    Facade calls carry it already; a stub call first gives the session its chance to refresh
    (failures are logged, and the call goes out with the token there is).
    """

    def __init__(self, session: AsyncSession, credentials: CredentialHeaders) -> None:
        self._session = session
        self._credentials = credentials

    async def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        try:
            await self._session.prepare()
        except PugError as exc:
            _log.warning("session refresh failed: %s", exc)
        existing = tuple(details.metadata or ())
        merged = grpc.aio.Metadata(*self._credentials.merged(existing))  # type: ignore[arg-type]
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, merged, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        """Add the bearer token to a unary call."""
        return await continuation(await self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        """Add the bearer token to a server-streaming call."""
        return await continuation(await self._details(details), request)


class AsyncPugAdmin(AsyncClosing):
    """:class:`~pug_grpc.PugAdmin` for asyncio: the same constructor, namespaces and arguments.

    Every call is a coroutine (``await admin.orgs.list()``); the session refreshes as
    ``PugAdmin``'s does, with concurrent tasks sharing one refresh. ``channel`` is a
    ``grpc.aio.Channel`` you made (used as is, never closed here); without one, the client
    opens its own on the first call, inside the running event loop, and serves that loop
    only. ``transport="connect"`` runs the blocking Connect runtime in worker threads. Use
    ``async with AsyncPugAdmin(...) as admin:`` or ``await admin.aclose()``.
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
        channel: grpc.aio.Channel | None = None,
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
        session = AsyncSession(
            self._trade_refresh_token,
            access_token=access_token,
            refresh_token=refresh_token,
            clock=clock,
            refresh_margin=refresh_margin,
            on_tokens=on_tokens,
        )
        bearer = CredentialHeaders(access_token=lambda: session.access_token)
        self._stub_channel: LoopChannel | None = None
        public: AsyncTransport
        authed: AsyncTransport
        if transport == "connect":
            sync_public, sync_authed = connect_pair(
                target,
                bearer,
                grpc_options=any((channel, credentials, channel_options)),
                allow_insecure=allow_insecure,
                root_certificates=root_certificates,
            )
            public, authed = ThreadedTransport(sync_public), ThreadedTransport(sync_authed)
        else:
            credentials = tls_credentials(credentials, root_certificates)
            tls: bool | None = None
            shown: str | None = None
            if channel is None:
                tls = parse_endpoint(
                    target, allow_insecure=allow_insecure, force_tls=credentials is not None
                ).tls
                shown = target

                def open_with(*interceptors: grpc.aio.ClientInterceptor) -> LoopChannel:
                    return LoopChannel(
                        lambda: open_aio_channel(
                            target,
                            credentials=credentials,
                            channel_options=channel_options,
                            allow_insecure=allow_insecure,
                            interceptors=interceptors,
                        )
                    )

                self._stub_channel = open_with(_Bearer(session, bearer))
                shared = open_with()
            else:
                shared = LoopChannel(channel)
            public = AioTransport(shared, endpoint=shown, tls=tls)
            authed = public.with_credentials(bearer)
        self._transports = (public, authed)
        self._core: AdminCalls[AsyncSession] = AdminCalls(
            public,
            authed,
            session=session,
            timeout=timeout,
            retry=retry,
            project_id=project_id,
            asynchronous=True,
            name="AsyncPugAdmin",
        )

    def __repr__(self) -> str:
        return (
            f"AsyncPugAdmin(project_id={self.project_id!r}, "
            f"access_token={mask(self.session.access_token)})"
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connections this client opened. Tokens are kept; see sign_out()."""
        self._core._closed = True
        for transport in self._transports:
            await transport.close()
        if self._stub_channel is not None:
            await self._stub_channel.close()

    @property
    def session(self) -> AsyncSession:
        """The token pair, refreshed before its ``exp`` and once after ``UNAUTHENTICATED``."""
        return self._core.session

    @property
    def channel(self) -> grpc.aio.Channel:
        """A signed-in ``grpc.aio`` channel for the generated stubs (read it inside the loop).

        It is the channel you passed, as is, when you passed one; otherwise a channel of its
        own whose calls carry the session's token. Only with ``transport="grpc"``.
        """
        if self._stub_channel is not None:
            return self._stub_channel.get()
        if isinstance(self._transports[0], AioTransport):
            return self._transports[0].loop_channel.get()
        raise PugError.client_side(
            'an AsyncPugAdmin with transport="connect" has no gRPC channel', reason="NO_CHANNEL"
        )

    @property
    def project_id(self) -> str | None:
        """The project sent as ``x-project-id`` on project-scoped calls."""
        return self._core.project_id

    @project_id.setter
    def project_id(self, value: str | None) -> None:
        """Switch project; namespaces built for the old one are dropped."""
        self._core.project_id = value

    async def refresh(self) -> None:
        """Trade the refresh token for a new pair now (normally automatic)."""
        self._core._check_open()
        await self.session.refresh()

    async def _trade_refresh_token(self, refresh_token: str) -> tuple[str, str]:
        pair: tuple[str, str] = await self._core._trade_refresh_token(refresh_token)  # type: ignore[misc]
        return pair

    # -- namespaces ------------------------------------------------------------------------

    @property
    def orgs(self) -> AsyncOrgs:
        """Organisations, members and invitations (``dashboard.orgs.v1``)."""
        return self._core._namespace("orgs", AsyncOrgs.on, "org")

    @property
    def projects(self) -> AsyncProjects:
        """Projects and their API keys (``dashboard.projects.v1``)."""
        return self._core._namespace("projects", AsyncProjects.on, "project")

    @property
    def dashboards(self) -> AsyncDashboards:
        """The current project's dashboards, including rendering (``QueryDashboard``)."""
        return self._core._namespace("dashboards", AsyncDashboards.on, "project")

    @property
    def customers(self) -> AsyncCustomers:
        """The signed-in customer's account (``dashboard.customers.v1``)."""
        return self._core._namespace("customers", AsyncCustomers.on, "org")

    @property
    def email_providers(self) -> AsyncEmailProviders:
        """An organisation's outgoing mail settings (``dashboard.orgemailproviders.v1``)."""
        return self._core._namespace("email_providers", AsyncEmailProviders.on, "org")

    @property
    def profiles(self) -> AsyncProfiles:
        """The shared profile reads, as this customer, in the current project."""
        return self._core._namespace("profiles", AsyncProfiles.on, "project")

    @property
    def activity(self) -> AsyncActivity:
        """The shared activity reads, as this customer, in the current project."""
        return self._core._namespace("activity", AsyncActivity.on, "project")

    @property
    def insights(self) -> AsyncInsights:
        """The shared insight queries, as this customer, in the current project."""
        return self._core._namespace("insights", AsyncInsights.on, "project")

    @property
    def shared_dashboards(self) -> AsyncSharedDashboards:
        """Public dashboards by share id; these calls carry no credential."""
        return self._core._namespace("shared_dashboards", AsyncSharedDashboards.on, "public")

    # -- authentication: PugAdmin's flows, awaited -------------------------------------------

    sign_in_with_email = awaited(AdminCalls.sign_in_with_email)
    request_magic_link = awaited(AdminCalls.request_magic_link)
    complete_magic_link = awaited(AdminCalls.complete_magic_link)
    complete_oauth_sign_in = awaited(AdminCalls.complete_oauth_sign_in)
    demo_sign_in = awaited(AdminCalls.demo_sign_in)
    sign_out = awaited(AdminCalls.sign_out)
