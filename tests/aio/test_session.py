"""AsyncPugAdmin sessions: refresh before expiry and on UNAUTHENTICATED, shared by tasks."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from pug_grpc.gen.dashboard.dashboards.v1 import dashboards_pb2, dashboards_pb2_grpc

from pug_grpc import PugAuthenticationError
from tests.aio.clients import admin
from tests.support.read_servers import EMAIL, PASSWORD, Running, rich_status

TRANSPORTS = ("grpc", "connect")
GRPC_ONLY = ("test_typed_stubs_on_the_admin_channel_carry_the_token",)

LIST = "/dashboard.dashboards.v1.DashboardsService/List"
REFRESH = "/public.auth.v1.AuthService/RefreshSession"


def bearers(server: Running) -> list[str]:
    return [c.metadata.get("authorization", "") for c in server.state.calls(LIST)]


async def test_sign_in_then_calls_carry_the_token(server: Running) -> None:
    seen: list[tuple[str, str]] = []
    async with admin(server, on_tokens=lambda a, r: seen.append((a, r))) as client:
        reply = await client.sign_in_with_email(EMAIL, PASSWORD)
        await client.dashboards.list()
    assert seen == [(reply.token, reply.refresh_token)]
    assert bearers(server) == [f"Bearer {reply.token}"]
    assert server.state.calls(LIST)[0].metadata["x-project-id"] == "proj-1"


async def test_refreshes_before_expiry(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    async with admin(server, access_token=access, refresh_token=refresh) as client:
        server.clock.advance(3600.0 - 30.0)  # inside the 60 s margin
        await client.dashboards.list()
        new = client.session.access_token
    assert [r.request.refresh_token for r in server.state.calls(REFRESH)] == [refresh]
    assert new not in (None, access)
    assert bearers(server) == [f"Bearer {new}"]


async def test_refreshes_once_on_unauthenticated_and_resends(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    async with admin(server, access_token=access, refresh_token=refresh) as client:
        server.state.revoke_access(access)
        await client.dashboards.list()
        new = client.session.access_token
    assert len(server.state.calls(REFRESH)) == 1
    assert bearers(server) == [f"Bearer {access}", f"Bearer {new}"]


async def test_concurrent_rejections_share_one_refresh(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    server.state.delays[REFRESH] = 0.2  # the refresh is still running when the others fail
    async with admin(server, access_token=access, refresh_token=refresh) as client:
        server.state.revoke_access(access)
        await asyncio.gather(*(client.dashboards.list() for _ in range(10)))
        new = client.session.access_token
    assert len(server.state.calls(REFRESH)) == 1
    assert bearers(server).count(f"Bearer {new}") == 10


async def test_concurrent_calls_with_an_expiring_token_share_one_refresh(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    server.state.delays[REFRESH] = 0.2
    async with admin(server, access_token=access, refresh_token=refresh) as client:
        server.clock.advance(3600.0 - 10.0)
        await asyncio.gather(*(client.dashboards.list() for _ in range(10)))
        new = client.session.access_token
    assert len(server.state.calls(REFRESH)) == 1
    assert bearers(server) == [f"Bearer {new}"] * 10


async def test_a_cancelled_caller_does_not_lose_the_rotated_tokens(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    server.state.delays[REFRESH] = 0.3
    async with admin(server, access_token=access, refresh_token=refresh) as client:
        server.clock.advance(3600.0 - 10.0)
        task = asyncio.ensure_future(client.dashboards.list())
        while not server.state.calls(REFRESH):
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(500):  # the shielded refresh completes on its own
            if client.session.access_token != access:
                break
            await asyncio.sleep(0.01)
        await client.dashboards.list()
    assert len(server.state.calls(REFRESH)) == 1
    assert bearers(server) == [f"Bearer {client.session.access_token}"]


async def test_a_revoked_refresh_token_surfaces_the_original_error(server: Running) -> None:
    access, _ = server.state.issue_tokens()
    async with admin(server, access_token=access, refresh_token="refresh-unknown") as client:
        server.state.revoke_access(access)
        with pytest.raises(PugAuthenticationError):
            await client.dashboards.list()
    assert len(server.state.calls(REFRESH)) == 1
    assert len(server.state.calls(LIST)) == 1


async def test_only_one_refresh_when_the_new_token_is_refused_too(server: Running) -> None:
    access, refresh = server.state.issue_tokens()
    denied = rich_status(grpc.StatusCode.UNAUTHENTICATED, "nope", reason="UNAUTHENTICATED")
    server.state.fail(LIST, denied, times=2)
    async with admin(server, access_token=access, refresh_token=refresh) as client:
        with pytest.raises(PugAuthenticationError) as caught:
            await client.dashboards.list()
    assert caught.value.reason == "UNAUTHENTICATED"
    assert (len(server.state.calls(REFRESH)), len(server.state.calls(LIST))) == (1, 2)


async def test_sign_out_forgets_the_tokens_and_demo_adopts_its_project(server: Running) -> None:
    async with admin(server, project_id=None) as client:
        demo = await client.demo_sign_in()
        assert client.project_id == demo.project_id == "demo-project"
        await client.refresh()
        assert len(server.state.calls(REFRESH)) == 1
        await client.sign_out()
        assert (client.session.access_token, client.session.refresh_token) == (None, None)


async def test_typed_stubs_on_the_admin_channel_carry_the_token(server: Running) -> None:
    async with admin(server) as client:
        reply = await client.sign_in_with_email(EMAIL, PASSWORD)
        stub = dashboards_pb2_grpc.DashboardsServiceStub(client.channel)
        await stub.List(
            dashboards_pb2.DashboardsServiceListRequest(),
            metadata=(("x-project-id", "proj-1"),),
            timeout=5.0,
        )
    assert bearers(server) == [f"Bearer {reply.token}"]
