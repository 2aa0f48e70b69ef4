"""The JWT sessions of the local server: sign-in, expiry, refresh rotation, sign-out."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import grpc
import pytest
from pug_grpc.gen.public.auth.v1 import auth_pb2, auth_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc

from pug_grpc.testing import LocalServer, ServerConfig
from tests.support.clock import FakeClock
from tests.support.server import details

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(clock: FakeClock) -> Iterator[LocalServer]:
    with LocalServer(ServerConfig(access_token_ttl=60), clock=clock) as running:
        yield running


@pytest.fixture
def auth(server: LocalServer) -> Iterator[auth_pb2_grpc.AuthServiceStub]:
    with server.channel() as channel:
        yield auth_pb2_grpc.AuthServiceStub(channel)


def _session_md(server: LocalServer, token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}"), ("x-project-id", server.project_id)]


def _list(server: LocalServer, metadata: list[tuple[str, str]]) -> list[profiles_pb2.ListResponse]:
    with server.channel() as channel:
        stub = profiles_pb2_grpc.ProfilesServiceStub(channel)
        return list(stub.List(profiles_pb2.ListRequest(), metadata=metadata, timeout=10))


def _refused(server: LocalServer, metadata: list[tuple[str, str]]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        _list(server, metadata)
    found = details(caught.value)
    return found.code, found.message


def _claims(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    decoded = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert isinstance(decoded, dict)
    return decoded


def _sign_in(
    server: LocalServer, auth: auth_pb2_grpc.AuthServiceStub
) -> auth_pb2.SignInWithEmailResponse:
    request = auth_pb2.SignInWithEmailRequest(
        email=server.config.user_email, password=server.config.user_password
    )
    return auth.SignInWithEmail(request, timeout=10)  # public: no credential needed


def test_sign_in_issues_a_jwt_with_expiry(
    server: LocalServer, auth: auth_pb2_grpc.AuthServiceStub, clock: FakeClock
) -> None:
    reply = _sign_in(server, auth)
    claims = _claims(reply.token)
    assert claims["exp"] == int(clock.now) + 60
    assert claims["sub"] == server.config.user_id
    assert reply.refresh_token.startswith("rt_")
    assert _list(server, _session_md(server, reply.token)) == []  # an empty project: no page


def test_wrong_password_is_unauthenticated(
    server: LocalServer, auth: auth_pb2_grpc.AuthServiceStub
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        auth.SignInWithEmail(
            auth_pb2.SignInWithEmailRequest(email=server.config.user_email, password="wrong")
        )
    assert details(caught.value).code == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as caught:
        auth.SignInWithEmail(auth_pb2.SignInWithEmailRequest(email="not-an-email", password="x"))
    assert details(caught.value).violations[0][0] == "email"


def test_expired_token_is_refused_then_refresh_rotates(
    server: LocalServer, auth: auth_pb2_grpc.AuthServiceStub, clock: FakeClock
) -> None:
    first = _sign_in(server, auth)
    clock.advance(61)
    code, message = _refused(server, _session_md(server, first.token))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in message
    renewed = auth.RefreshSession(auth_pb2.RefreshSessionRequest(refresh_token=first.refresh_token))
    assert renewed.refresh_token != first.refresh_token
    _list(server, _session_md(server, renewed.token))
    with pytest.raises(grpc.RpcError) as caught:  # a used refresh token is spent
        auth.RefreshSession(auth_pb2.RefreshSessionRequest(refresh_token=first.refresh_token))
    assert details(caught.value).code == grpc.StatusCode.UNAUTHENTICATED


def test_sign_out_revokes_the_session(
    server: LocalServer, auth: auth_pb2_grpc.AuthServiceStub
) -> None:
    session = _sign_in(server, auth)
    auth.SignOut(auth_pb2.SignOutRequest(refresh_token=session.refresh_token))
    code, _ = _refused(server, _session_md(server, session.token))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError):
        auth.RefreshSession(auth_pb2.RefreshSessionRequest(refresh_token=session.refresh_token))


def test_expired_tokens_can_be_issued_for_tests(server: LocalServer) -> None:
    expired, _ = server.issue_tokens(ttl=0)
    code, message = _refused(server, _session_md(server, expired))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in message


def test_demo_sign_in_and_unimplemented_flows(
    auth: auth_pb2_grpc.AuthServiceStub, server: LocalServer
) -> None:
    demo = auth.DemoSignIn(auth_pb2.DemoSignInRequest())
    assert demo.project_id == server.project_id
    assert demo.token
    with pytest.raises(grpc.RpcError) as caught:
        auth.RequestMagicLink(auth_pb2.RequestMagicLinkRequest(email="a@b.example"))
    found = details(caught.value)
    assert found.code == grpc.StatusCode.UNIMPLEMENTED
    assert "local Pug server" in found.message
