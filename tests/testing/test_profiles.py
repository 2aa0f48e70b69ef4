"""``ProfilesService`` on the local server: the streaming List, get, deletions."""

from __future__ import annotations

import grpc
import pytest
from pug_grpc.gen.common.v1 import filters_pb2
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc

from pug_grpc.testing import LocalServer, local_server
from tests.support.server import details, event, key_md

pytestmark = pytest.mark.timeout(60)


def _stub(channel: grpc.Channel) -> profiles_pb2_grpc.ProfilesServiceStub:
    return profiles_pb2_grpc.ProfilesServiceStub(channel)


def _identified(server: LocalServer, count: int) -> list[str]:
    ids = [f"person-{i:04d}" for i in range(count)]
    for n, external_id in enumerate(ids):  # setup through the store: the wire is tested below
        server.store.identify(server.project_id, external_id, {"n": n}, now_us=1_000_000 + n)
    return ids


def test_list_streams_every_page_of_100_each_with_a_token(pug_server: LocalServer) -> None:
    ids = _identified(pug_server, 250)
    with pug_server.channel() as channel:
        pages = list(_stub(channel).List(profiles_pb2.ListRequest(), metadata=key_md(pug_server)))
        assert [len(p.profiles) for p in pages] == [100, 100, 50]
        assert all(p.next_page_token for p in pages)  # each page can be resumed after
        assert [p.external_id for page in pages for p in page.profiles] == ids
        resumed = list(
            _stub(channel).List(
                profiles_pb2.ListRequest(page_token=pages[0].next_page_token),
                metadata=key_md(pug_server),
            )
        )
        assert [p.external_id for page in resumed for p in page.profiles] == ids[100:]
        after_last = profiles_pb2.ListRequest(page_token=pages[-1].next_page_token)
        assert list(_stub(channel).List(after_last, metadata=key_md(pug_server))) == []


def test_an_empty_project_ends_the_stream_without_a_message(pug_server: LocalServer) -> None:
    with pug_server.channel() as channel:
        stream = _stub(channel).List(profiles_pb2.ListRequest(), metadata=key_md(pug_server))
        assert list(stream) == []
        assert stream.code() == grpc.StatusCode.OK


def test_a_bad_page_token_is_invalid(pug_server: LocalServer) -> None:
    with pug_server.channel() as channel, pytest.raises(grpc.RpcError) as caught:
        list(
            _stub(channel).List(
                profiles_pb2.ListRequest(page_token="garbage!"), metadata=key_md(pug_server)
            )
        )
    assert details(caught.value).reason == "INVALID_PAGE_TOKEN"


def test_list_filters_and_activity(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
) -> None:
    gold_and_old = profiles_pb2.ListRequest(
        filter_groups=[
            profiles_pb2.FilterGroup(
                filters=[
                    filters_pb2.PropertyFilter(
                        property="tier", operator=filters_pb2.FILTER_OPERATOR_EQUALS, value="gold"
                    ),
                    filters_pb2.PropertyFilter(
                        property="age", operator=filters_pb2.FILTER_OPERATOR_GTE, value="5"
                    ),
                ]
            )
        ]
    )
    pages = list(_stub(seeded_channel).List(gold_and_old, metadata=key_md(seeded_server)))
    found = [p for page in pages for p in page.profiles]
    assert sorted(p.external_id for p in found) == sorted(f"user-{u}" for u in range(5, 10))
    assert all(p.activity.total_events == 6 for p in found)


def test_get_and_not_found(seeded_server: LocalServer, seeded_channel: grpc.Channel) -> None:
    stub = _stub(seeded_channel)
    md = key_md(seeded_server)
    by_external = stub.GetByExternalId(
        profiles_pb2.GetByExternalIdRequest(external_id="user-3"), metadata=md
    ).profile
    by_id = stub.Get(profiles_pb2.GetRequest(id=by_external.id), metadata=md).profile
    assert by_id == by_external
    assert by_id.project_id == seeded_server.project_id
    assert by_id.activity.sessions == 1
    assert by_id.activity.pageviews == 2
    assert (by_id.activity.browser, by_id.activity.country) == ("Firefox", "NO")
    assert by_id.activity.os == "Linux"  # parsed from the request's own (gRPC) user agent
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetByExternalId(profiles_pb2.GetByExternalIdRequest(external_id="nobody"), metadata=md)
    found = details(caught.value)
    assert (found.code, found.reason, found.domain) == (
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
        "pug.sh",
    )
    assert found.request_id


def test_delete_data_subject_and_deletion_request() -> None:
    with local_server() as own, own.channel() as channel:
        events_pb2_grpc.EventsServiceStub(channel).BatchCreate(
            events_pb2.BatchCreateRequest(events=[event("gone"), event("gone"), event("kept")]),
            metadata=key_md(own),
        )
        stub = _stub(channel)
        reply = stub.DeleteDataSubject(
            profiles_pb2.DeleteDataSubjectRequest(external_id="gone"), metadata=key_md(own)
        )
        assert reply.status == profiles_pb2.COMPLIANCE_REQUEST_STATUS_COMPLETED
        status = stub.GetDeletionRequest(
            profiles_pb2.GetDeletionRequestRequest(request_id=reply.request_id),
            metadata=key_md(own),
        )
        assert (status.external_id, status.events_identified) == ("gone", 2)
        assert own.stored_event_count() == 1
        kept = stub.GetByExternalId(
            profiles_pb2.GetByExternalIdRequest(external_id="kept"), metadata=key_md(own)
        ).profile
        stub.Delete(profiles_pb2.DeleteRequest(id=kept.id), metadata=key_md(own))
        assert own.stored_event_count() == 0
