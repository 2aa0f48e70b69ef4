"""Credential rules per service family and the JWT session flows of the local server."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import grpc
import pytest
from pug_grpc.gen.public.auth.v1 import auth_pb2, auth_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc

from pug_grpc.testing import LocalServer, ServerConfig
from tests.support.server import details

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> Iterator[LocalServer]:
    with LocalServer(ServerConfig(access_token_ttl=60), clock=clock) as running:
        yield running


@pytest.fixture
def auth(server: LocalServer) -> Iterator[auth_pb2_grpc.AuthServiceStub]:
    with server.channel() as channel:
        yield auth_pb2_grpc.AuthServiceStub(channel)


def _list(server: LocalServer, metadata: list[tuple[str, str]]) -> list[profiles_pb2.ListResponse]:
    with server.channel() as channel:
        stub = profiles_pb2_grpc.ProfilesServiceStub(channel)
        return list(stub.List(profiles_pb2.ListRequest(), metadata=metadata, timeout=10))


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


def _refused(server: LocalServer, metadata: list[tuple[str, str]]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        _list(server, metadata)
    found = details(caught.value)
    return found.code, found.message


def test_sign_in_issues_a_jwt_with_expiry(
    server: LocalServer, auth: auth_pb2_grpc.AuthServiceStub, clock: Clock
) -> None:
    reply = _sign_in(server, auth)
    claims = _claims(reply.token)
    assert claims["exp"] == int(clock.now) + 60
    assert claims["sub"] == server.config.user_id
    assert reply.refresh_token.startswith("rt_")
    ok = _list(
        server, [("authorization", f"Bearer {reply.token}"), ("x-project-id", server.project_id)]
    )
    assert ok[-1].next_page_token == ""


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
    server: LocalServer, auth: auth_pb2_grpc.AuthServiceStub, clock: Clock
) -> None:
    first = _sign_in(server, auth)
    md = [("authorization", f"Bearer {first.token}"), ("x-project-id", server.project_id)]
    clock.now += 61
    code, message = _refused(server, md)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in message
    renewed = auth.RefreshSession(auth_pb2.RefreshSessionRequest(refresh_token=first.refresh_token))
    assert renewed.refresh_token != first.refresh_token
    _list(
        server, [("authorization", f"Bearer {renewed.token}"), ("x-project-id", server.project_id)]
    )
    with pytest.raises(grpc.RpcError) as caught:  # a used refresh token is spent
        auth.RefreshSession(auth_pb2.RefreshSessionRequest(refresh_token=first.refresh_token))
    assert details(caught.value).code == grpc.StatusCode.UNAUTHENTICATED


def test_sign_out_revokes_the_session(
    server: LocalServer, auth: auth_pb2_grpc.AuthServiceStub
) -> None:
    session = _sign_in(server, auth)
    auth.SignOut(auth_pb2.SignOutRequest(refresh_token=session.refresh_token))
    code, _ = _refused(
        server, [("authorization", f"Bearer {session.token}"), ("x-project-id", server.project_id)]
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError):
        auth.RefreshSession(auth_pb2.RefreshSessionRequest(refresh_token=session.refresh_token))


def test_shared_family_credential_rules(server: LocalServer) -> None:
    token, _ = server.issue_tokens()
    cases = {
        "no credential": ([], grpc.StatusCode.UNAUTHENTICATED),
        "public key": ([("x-api-key", server.public_key)], grpc.StatusCode.UNAUTHENTICATED),
        "unknown key": ([("x-api-key", "prv_nope_0000000000")], grpc.StatusCode.UNAUTHENTICATED),
        "jwt without project": (
            [("authorization", f"Bearer {token}")],
            grpc.StatusCode.UNAUTHENTICATED,
        ),
        "jwt other project": (
            [("authorization", f"Bearer {token}"), ("x-project-id", "proj_other")],
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        "key other project": (
            [("x-api-key", server.private_key), ("x-project-id", "proj_other")],
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        "forged jwt": (
            [("authorization", f"Bearer {token[:-4]}AAAA"), ("x-project-id", server.project_id)],
            grpc.StatusCode.UNAUTHENTICATED,
        ),
        "basic auth": (
            [("authorization", "Basic abc"), ("x-project-id", server.project_id)],
            grpc.StatusCode.UNAUTHENTICATED,
        ),
    }
    for name, (metadata, code) in cases.items():
        assert _refused(server, metadata)[0] == code, name
    _list(server, [("x-api-key", server.private_key)])


def test_expired_tokens_can_be_issued_for_tests(server: LocalServer) -> None:
    expired, _ = server.issue_tokens(ttl=0)
    code, message = _refused(
        server, [("authorization", f"Bearer {expired}"), ("x-project-id", server.project_id)]
    )
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
