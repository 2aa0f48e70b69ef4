"""Which credential each service family accepts, with Pug's messages, codes and details."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pug_grpc.gen.public.auth.v1 import auth_pb2, auth_pb2_grpc
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc

from pug_grpc.testing import LocalServer, ServerConfig, local_server
from tests.support.server import details, event, key_md

pytestmark = pytest.mark.timeout(60)


def _list(server: LocalServer, metadata: list[tuple[str, str]]) -> list[profiles_pb2.ListResponse]:
    with server.channel() as channel:
        stub = profiles_pb2_grpc.ProfilesServiceStub(channel)
        return list(stub.List(profiles_pb2.ListRequest(), metadata=metadata, timeout=10))


def _refusal(server: LocalServer, metadata: list[tuple[str, str]]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _list(server, metadata)
    return caught.value


def _error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    assert isinstance(error, grpc.Call)
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    for detail in status.details:
        if detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
    return info


def test_shared_family_credential_rules(pug_server: LocalServer) -> None:
    token, _ = pug_server.issue_tokens()
    project = pug_server.project_id
    cases = {
        "no credential": ([], grpc.StatusCode.UNAUTHENTICATED, "missing credentials"),
        "public key": ([("x-api-key", pug_server.public_key)], None, "invalid API key"),
        "unknown key": ([("x-api-key", "prv_nope_0000000000")], None, "invalid API key"),
        "jwt without project": ([("authorization", f"Bearer {token}")], None, "x-project-id"),
        "jwt other project": (
            [("authorization", f"Bearer {token}"), ("x-project-id", "proj_other")],
            grpc.StatusCode.PERMISSION_DENIED,
            "no access",
        ),
        "forged jwt": (
            [("authorization", f"Bearer {token[:-4]}AAAA"), ("x-project-id", project)],
            None,
            "not signed",
        ),
        "basic auth": ([("authorization", "Basic abc"), ("x-project-id", project)], None, "Bearer"),
    }
    for name, (metadata, code, text) in cases.items():
        found = details(_refusal(pug_server, metadata))
        assert found.code == (code or grpc.StatusCode.UNAUTHENTICATED), name
        assert text in found.message, name
    assert _list(pug_server, key_md(pug_server)) == []


def test_x_project_id_is_ignored_with_an_api_key() -> None:
    with local_server(extra_api_keys={"prv_other_project_key": "proj_other"}) as server:
        with server.channel() as channel:
            events_pb2_grpc.EventsServiceStub(channel).BatchCreate(
                events_pb2.BatchCreateRequest(events=[event("carol")]),
                metadata=[("x-api-key", server.private_key), ("x-project-id", "proj_other")],
                timeout=10,
            )
        assert server.store.count_rows(server.project_id) == 1  # the key's own project
        assert server.store.count_rows("proj_other") == 0
        pages = _list(server, [("x-api-key", server.private_key), ("x-project-id", "proj_other")])
        assert [p.external_id for page in pages for p in page.profiles] == ["carol"]
        other = [("x-api-key", "prv_other_project_key"), ("x-project-id", server.project_id)]
        assert _list(server, other) == []


def test_authentication_errors_carry_no_trace_id(pug_server: LocalServer) -> None:
    refused = _refusal(pug_server, [("x-api-key", "prv_nope_0000000000")])
    info = _error_info(refused)
    assert (info.reason, info.domain) == ("UNAUTHENTICATED", "pug.sh")
    assert "trace_id" not in info.metadata
    assert details(refused).request_id.startswith("req_")
    pug_server.faults.fail_next("List", code=grpc.StatusCode.INTERNAL)
    assert "trace_id" in _error_info(_refusal(pug_server, key_md(pug_server))).metadata


def test_public_methods_need_no_credential() -> None:
    with LocalServer(ServerConfig()) as server, server.channel() as channel:
        reply = auth_pb2_grpc.AuthServiceStub(channel).DemoSignIn(
            auth_pb2.DemoSignInRequest(), timeout=10
        )
        assert reply.project_id == server.project_id
