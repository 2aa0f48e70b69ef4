"""PugAdmin sessions: sign-in flows, refresh before expiry and on UNAUTHENTICATED, masking."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pug_grpc.gen.dashboard.dashboards.v1 import dashboards_pb2, dashboards_pb2_grpc
from pug_grpc.gen.public.auth.v1 import auth_pb2

from pug_grpc import PugAdmin, PugAuthenticationError, PugError, PugInvalidArgumentError
from pug_grpc._rpc.session import jwt_expiry
from tests.rpc.clients import transport_of
from tests.support.read_servers import (
    EMAIL,
    PASSWORD,
    Running,
    make_jwt,
    rich_status,
    sample_profiles,
)

TRANSPORTS = ("grpc", "connect")
GRPC_ONLY = ("test_typed_stubs_on_the_admin_channel_are_authenticated",)

AUTH = "/public.auth.v1.AuthService/"
LIST = "/dashboard.dashboards.v1.DashboardsService/List"
REFRESH = AUTH + "RefreshSession"


def admin(server: Running, **kwargs: object) -> PugAdmin:
    kwargs.setdefault("project_id", "proj-1")
    kwargs.setdefault("transport", transport_of(server))
    return PugAdmin(server.endpoint, clock=server.clock, timeout=5.0, **kwargs)  # type: ignore[arg-type]


def bearer(server: Running, path: str) -> list[str]:
    return [c.metadata.get("authorization", "") for c in server.state.calls(path)]


def test_sign_in_with_email_then_calls_carry_the_token(server: Running) -> None:
    seen: list[tuple[str, str]] = []
    client = admin(server, on_tokens=lambda a, r: seen.append((a, r)))
    reply = client.sign_in_with_email(EMAIL, PASSWORD)
    assert reply.token
    assert reply.refresh_token
    assert seen == [(reply.token, reply.refresh_token)]
    assert server.state.calls(AUTH + "SignInWithEmail")[0].request == (
        auth_pb2.SignInWithEmailRequest(email=EMAIL, password=PASSWORD)
    )
    assert "authorization" not in server.state.calls(AUTH + "SignInWithEmail")[0].metadata
    client.dashboards.list()
    call = server.state.calls(LIST)[0]
    assert call.metadata["authorization"] == f"Bearer {reply.token}"
    assert call.metadata["x-project-id"] == "proj-1"


def test_magic_link_oauth_and_demo_flows(server: Running) -> None:
    client = admin(server, project_id=None)
    client.request_magic_link(EMAIL)
    assert server.state.calls(AUTH + "RequestMagicLink")[0].request.email == EMAIL
    first = client.complete_magic_link("link-token", timezone="Europe/Paris")
    assert client.session.access_token == first.token
    sent = server.state.calls(AUTH + "CompleteMagicLink")[0].request
    assert (sent.token, sent.timezone) == ("link-token", "Europe/Paris")
    second = client.complete_oauth_sign_in("google", "id-token-from-google")
    assert client.session.access_token == second.token
    sent = server.state.calls(AUTH + "CompleteOAuthSignIn")[0].request
    assert sent.provider == auth_pb2.O_AUTH_PROVIDER_GOOGLE
    assert sent.credential == "id-token-from-google"
    demo = client.demo_sign_in()
    assert client.project_id == demo.project_id == "demo-project"
    client.dashboards.list()
    assert server.state.calls(LIST)[0].metadata["x-project-id"] == "demo-project"


def test_constructed_from_existing_tokens(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    client = admin(server, access_token=access, refresh_token=refresh)
    client.dashboards.list()
    assert bearer(server, LIST) == [f"Bearer {access}"]
    assert server.state.calls(REFRESH) == []


def test_refreshes_before_expiry(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    client = admin(server, access_token=access, refresh_token=refresh, refresh_margin=60.0)
    assert client.session.expires_at == server.clock() + 3600.0
    server.clock.advance(3600.0 - 30.0)  # inside the margin, not yet expired
    client.dashboards.list()
    refreshes = server.state.calls(REFRESH)
    assert [r.request.refresh_token for r in refreshes] == [refresh]
    new_access = client.session.access_token
    assert new_access not in (None, access)
    assert bearer(server, LIST) == [f"Bearer {new_access}"]
    assert client.session.refresh_token != refresh  # rotated
    assert "authorization" not in refreshes[0].metadata


def test_refreshes_once_on_unauthenticated_and_resends(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    client = admin(server, access_token=access, refresh_token=refresh)
    server.state.revoke_access(access)  # the server no longer accepts it; exp is still far off
    client.dashboards.list()
    assert len(server.state.calls(REFRESH)) == 1
    tokens = bearer(server, LIST)
    assert tokens[0] == f"Bearer {access}"
    assert tokens[1] == f"Bearer {client.session.access_token}"
    assert len(tokens) == 2


def test_only_one_refresh_when_the_new_token_is_refused_too(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    client = admin(server, access_token=access, refresh_token=refresh)
    denied = rich_status(grpc.StatusCode.UNAUTHENTICATED, "nope", reason="UNAUTHENTICATED")
    server.state.fail(LIST, denied, times=2)
    with pytest.raises(PugAuthenticationError) as caught:
        client.dashboards.list()
    assert caught.value.reason == "UNAUTHENTICATED"
    assert len(server.state.calls(REFRESH)) == 1
    assert len(server.state.calls(LIST)) == 2


def test_revoked_refresh_token_surfaces_the_original_error(server: Running) -> None:
    access, _refresh = server.state.issue_tokens()
    client = admin(server, access_token=access, refresh_token="refresh-unknown-to-server")
    server.state.revoke_access(access)
    with pytest.raises(PugAuthenticationError):
        client.dashboards.list()
    assert len(server.state.calls(REFRESH)) == 1
    assert len(server.state.calls(LIST)) == 1


def test_expired_token_with_failing_refresh_raises_before_sending(server: Running) -> None:
    access, _ = server.state.issue_tokens()
    client = admin(server, access_token=access, refresh_token="refresh-unknown-to-server")
    server.clock.advance(4000.0)
    with pytest.raises(PugAuthenticationError):
        client.dashboards.list()
    assert server.state.calls(LIST) == []


def test_concurrent_rejections_share_one_refresh(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    client = admin(server, access_token=access, refresh_token=refresh)
    server.state.revoke_access(access)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        try:
            barrier.wait(timeout=5)
            client.dashboards.list()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert errors == []
    assert len(server.state.calls(REFRESH)) == 1


def test_explicit_refresh_and_sign_out(server: Running) -> None:
    client = admin(server)
    first = client.sign_in_with_email(EMAIL, PASSWORD)
    client.refresh()
    assert server.state.calls(REFRESH)[0].request.refresh_token == first.refresh_token
    current_refresh = client.session.refresh_token
    client.sign_out()
    assert server.state.calls(AUTH + "SignOut")[0].request.refresh_token == current_refresh
    assert client.session.access_token is None
    assert client.session.refresh_token is None
    with pytest.raises(PugAuthenticationError):
        client.dashboards.list()
    assert "authorization" not in server.state.calls(LIST)[0].metadata
    with pytest.raises(PugAuthenticationError, match="no refresh token"):
        client.refresh()


def test_sign_out_forgets_tokens_even_when_the_server_fails(server: Running) -> None:
    client = admin(server)
    client.sign_in_with_email(EMAIL, PASSWORD)
    server.state.fail(AUTH + "SignOut", rich_status(grpc.StatusCode.UNAVAILABLE, "down"))
    with pytest.raises(PugError):
        client.sign_out()
    assert client.session.access_token is None


def test_tokens_never_reach_logs_or_reprs(
    server: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pug_grpc")
    client = admin(server)
    reply = client.sign_in_with_email(EMAIL, PASSWORD)
    server.clock.advance(3590.0)
    client.dashboards.list()
    server.state.revoke_access(client.session.access_token or "")
    client.dashboards.list()
    secrets = {
        reply.token,
        reply.refresh_token,
        client.session.access_token or "",
        client.session.refresh_token or "",
    }
    assert len(server.state.calls(REFRESH)) == 2
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "session refreshed" in text
    for secret in secrets:
        assert secret[:-4] not in text
        assert secret[:-4] not in repr(client)
        assert secret[:-4] not in repr(client.session)


def test_project_scoped_calls_need_a_project_id(server: Running) -> None:
    client = admin(server, project_id=None)
    client.sign_in_with_email(EMAIL, PASSWORD)
    with pytest.raises(PugInvalidArgumentError, match="project-scoped") as caught:
        client.dashboards.list()
    assert caught.value.is_client_side
    client.orgs.list()  # org-level: no project needed
    assert (
        "x-project-id" not in server.state.calls("/dashboard.orgs.v1.OrgsService/List")[0].metadata
    )
    client.dashboards.list(project_id="proj-9")
    assert server.state.calls(LIST)[0].metadata["x-project-id"] == "proj-9"
    client.project_id = "proj-2"
    client.profiles.get("p1")
    call = server.state.calls("/shared.profiles.v1.ProfilesService/Get")[0]
    assert call.metadata["x-project-id"] == "proj-2"
    assert call.metadata["authorization"].startswith("Bearer ")


def test_typed_stubs_on_the_admin_channel_are_authenticated(server: Running) -> None:
    client = admin(server)
    client.sign_in_with_email(EMAIL, PASSWORD)
    stub = dashboards_pb2_grpc.DashboardsServiceStub(client.channel)
    stub.List(
        dashboards_pb2.DashboardsServiceListRequest(),
        metadata=(("x-project-id", "proj-1"),),
        timeout=5,
    )
    assert bearer(server, LIST) == [f"Bearer {client.session.access_token}"]


def test_closed_client_refuses_calls(server: Running) -> None:
    with admin(server) as client:
        client.sign_in_with_email(EMAIL, PASSWORD)
    with pytest.raises(PugError, match="closed"):
        client.orgs.list()


def test_jwt_expiry_reads_exp() -> None:
    assert jwt_expiry(make_jwt(1234.5, "x")) == 1234.5
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry(None) is None
    assert jwt_expiry("a.e30.c") is None  # {} has no exp
    assert jwt_expiry("a.eyJleHAiOnRydWV9.c") is None  # {"exp": true}


@given(st.text(max_size=300))
def test_jwt_expiry_never_raises(token: str) -> None:
    result = jwt_expiry(token)
    assert result is None or isinstance(result, float)


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_jwt_expiry_round_trips(exp: float) -> None:
    assert jwt_expiry(make_jwt(exp, "s")) == exp


def test_shared_reads_on_a_session_recover_streams_too(server: Running) -> None:
    server.state.profiles = sample_profiles(3)
    server.state.segment = ["d1", "d2", "d3"]
    access, refresh = server.state.issue_tokens()
    client = admin(server, access_token=access, refresh_token=refresh)
    server.state.revoke_access(access)
    assert [p.id for p in client.profiles.list()] == ["p0", "p1", "p2"]
    assert len(server.state.calls(REFRESH)) == 1
    window = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    assert list(client.insights.segment_users(time_range=window)) == ["d1", "d2", "d3"]
    client.activity.profile_stats("u1")
    shared = [c for c in server.state.calls() if c.path.startswith("/shared.")]
    assert {c.metadata["x-project-id"] for c in shared} == {"proj-1"}
    assert shared[-1].metadata["authorization"] == f"Bearer {client.session.access_token}"
