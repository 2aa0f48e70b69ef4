"""Ingestion on the local server: BatchCreate and Identify as Pug answers them."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2_grpc as sdk_profiles_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc

from pug_grpc.testing import LocalServer, ServerConfig
from pug_grpc.testing._servicers.ingestion import ENVELOPE_BYTES
from tests.support.server import details, event, key_md
from tests.testing.conftest import Send

pytestmark = pytest.mark.timeout(60)

MIB = 1024 * 1024


def _profile(server: LocalServer, external_id: str) -> profiles_pb2.Profile:
    with server.channel() as channel:
        stub = profiles_pb2_grpc.ProfilesServiceStub(channel)
        request = profiles_pb2.GetByExternalIdRequest(external_id=external_id)
        return stub.GetByExternalId(request, metadata=key_md(server), timeout=10).profile


def _padded(size: int) -> events_pb2.Event:
    """A valid event with ``size`` characters of custom properties (values of at most 1,000)."""
    built = event()
    for part, start in enumerate(range(0, size, 1000)):
        built.custom_properties[f"pad{part}"].string_value = "x" * min(1000, size - start)
    return built


def test_batch_is_accepted_stored_and_inspectable(pug_server: LocalServer, send: Send) -> None:
    sent = [event(f"user-{i}", custom={"n": i}) for i in range(5)]
    reply = send(*sent)
    assert (reply.accepted, reply.dropped, dict(reply.dropped_by_reason)) == (5, 0, {})
    assert [e.event_id for e in pug_server.events] == [e.event_id for e in sent]
    assert pug_server.stored_event_count() == 5
    call = pug_server.calls_to("BatchCreate")[0]
    assert call.code == grpc.StatusCode.OK
    assert call.metadata["x-api-key"] == pug_server.public_key
    assert call.request_id.startswith("req_")


def test_a_redelivered_event_is_stored_again_until_the_merge(
    pug_server: LocalServer, send: Send
) -> None:
    same = event()
    other = event()
    send(same, other)
    reply = send(same)
    assert reply.accepted == 1
    assert len(pug_server.events) == 3  # every delivery recorded
    assert pug_server.stored_row_count() == 3  # two rows of the same event, as in Pug
    assert pug_server.stored_event_count() == 2  # what the merge converges to
    assert pug_server.merge_duplicates() == 1
    assert pug_server.stored_row_count() == 2


def test_the_merge_key_is_minute_kind_and_id(pug_server: LocalServer, send: Send) -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, 10, tzinfo=dt.UTC)
    first = event(when=when)
    same_minute = events_pb2.Event()
    same_minute.CopyFrom(first)
    same_minute.occur_time.FromDatetime(when + dt.timedelta(seconds=20))
    other_kind = events_pb2.Event()
    other_kind.CopyFrom(first)
    other_kind.kind = "signup"
    for one in (first, same_minute, other_kind):
        send(one)
    assert pug_server.stored_row_count() == 3
    assert pug_server.stored_event_count() == 2
    assert pug_server.merge_duplicates() == 1


def test_a_repeated_event_id_refuses_the_batch_without_field_details(
    pug_server: LocalServer, send: Send
) -> None:
    first, second = event(), event()
    again = event("someone-else")
    again.event_id = first.event_id.upper()  # compared as UUIDs
    with pytest.raises(grpc.RpcError) as caught:
        send(first, second, again)
    found = details(caught.value)
    assert (found.code, found.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_EVENT_BATCH")
    assert found.message == f"event[2]: duplicate event_id {again.event_id}"
    assert found.violations == []
    assert pug_server.events == []
    assert pug_server.stored_row_count() == 0


def test_invalid_batch_is_refused_whole_with_field_paths_without_indexes(
    pug_server: LocalServer, send: Send
) -> None:
    good = event()
    bad = event(kind="not a kind")
    bad.custom_properties["$reserved"].string_value = "x"
    with pytest.raises(grpc.RpcError) as caught:
        send(good, bad)
    found = details(caught.value)
    assert found.code == grpc.StatusCode.INVALID_ARGUMENT
    assert found.reason == "INVALID_EVENT_BATCH"
    assert found.domain == "pug.sh"
    assert found.request_id == pug_server.calls[-1].request_id
    fields = {field for field, _ in found.violations}
    assert fields == {"events.kind", "events"}  # the '$' key rule is on the event message
    assert "events[1]" in found.message  # the index is only in the message text
    assert pug_server.events == []
    assert pug_server.stored_row_count() == 0


@pytest.mark.parametrize(
    ("change", "rule_field"),
    [
        ({"event_id": "not-a-uuid"}, "events.event_id"),
        ({"session_id": "nope"}, "events.session_id"),
        ({"distinct_id": "cookieless-abc"}, ""),
        ({"distinct_id": ""}, "events"),
    ],
)
def test_contract_rules_for_events(send: Send, change: dict[str, str], rule_field: str) -> None:
    bad = event()
    for name, value in change.items():
        setattr(bad, name, value)
    with pytest.raises(grpc.RpcError) as caught:
        send(bad)
    found = details(caught.value)
    assert found.code == grpc.StatusCode.INVALID_ARGUMENT
    assert rule_field in {field for field, _ in found.violations}


def test_more_than_1000_events_are_refused(send: Send) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        send(*[event() for _ in range(1001)])
    assert details(caught.value).violations[0][0] == "events"


def test_a_batch_over_one_mebibyte_fails_internal(pug_server: LocalServer, send: Send) -> None:
    big = [_padded(1000) for _ in range(1000)]  # about 1.1 MB serialized
    assert events_pb2.BatchCreateRequest(events=big).ByteSize() > MIB
    with pytest.raises(grpc.RpcError) as caught:
        send(*big)
    found = details(caught.value)
    assert (found.code, found.message, found.reason) == (
        grpc.StatusCode.INTERNAL,
        "failed to accept events",
        "INTERNAL",
    )
    assert pug_server.stored_row_count() == 0
    assert send(*big[:500]).accepted == 500  # the same events in two halves are fine
    assert send(*big[500:]).accepted == 500


def test_the_limit_counts_what_the_server_adds_to_each_event(pug_server: LocalServer) -> None:
    # Serialized, this batch is under 1 MiB; with the server's own bytes per event it is over.
    events = [_padded(900) for _ in range(1000)]
    request = events_pb2.BatchCreateRequest(events=events)
    assert MIB - 1000 * ENVELOPE_BYTES < request.ByteSize() < MIB
    with pug_server.channel() as channel:
        stub = events_pb2_grpc.EventsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.BatchCreate(request, metadata=key_md(pug_server), timeout=20)
    assert caught.value.code() == grpc.StatusCode.INTERNAL


def test_requests_beyond_grpcs_default_limit_reach_the_handler(pug_server: LocalServer) -> None:
    # Pug has no byte limit at the RPC layer: 5 MB is refused by its queue, not by gRPC.
    request = events_pb2.BatchCreateRequest(events=[_padded(5000) for _ in range(1000)])
    assert request.ByteSize() > 4 * MIB
    with pug_server.channel() as channel:
        stub = events_pb2_grpc.EventsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.BatchCreate(request, metadata=key_md(pug_server), timeout=30)
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.INTERNAL,
        "failed to accept events",
    )


def test_the_limit_is_configurable() -> None:
    with LocalServer(ServerConfig(publish_limit_bytes=None)) as server, server.channel() as ch:
        request = events_pb2.BatchCreateRequest(events=[_padded(1200) for _ in range(1000)])
        reply = events_pb2_grpc.EventsServiceStub(ch).BatchCreate(
            request, metadata=key_md(server), timeout=30
        )
        assert reply.accepted == 1000


def test_an_identify_over_the_limit_fails_internal(
    pug_server: LocalServer, identify_stub: sdk_profiles_pb2_grpc.ProfilesSDKServiceStub
) -> None:
    request = sdk_profiles_pb2.IdentifyRequest(external_id="u-big")
    request.traits.update({"bio": "x" * MIB})
    with pytest.raises(grpc.RpcError) as caught:
        identify_stub.Identify(request, metadata=key_md(pug_server), timeout=20)
    found = details(caught.value)
    assert (found.code, found.message) == (grpc.StatusCode.INTERNAL, "failed to accept events")
    assert pug_server.identifies == []


def test_cookieless_events_get_a_server_id_or_are_dropped_out_of_range(
    pug_server: LocalServer, send: Send
) -> None:
    today = events_pb2.Event(event_id=str(uuid.uuid4()), kind="page_view", cookieless=True)
    today.occur_time.GetCurrentTime()
    old = events_pb2.Event(event_id=str(uuid.uuid4()), kind="page_view", cookieless=True)
    old.occur_time.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    reply = send(today, old)
    assert (reply.accepted, reply.dropped) == (1, 1)
    assert dict(reply.dropped_by_reason) == {"day_out_of_range": 1}
    stored = next(iter(pug_server.store.events(pug_server.project_id)))
    assert stored.distinct_id.startswith("cookieless-")


def test_credential_rules_for_ingestion(
    pug_server: LocalServer, events_stub: events_pb2_grpc.EventsServiceStub
) -> None:
    request = events_pb2.BatchCreateRequest(events=[event()])
    for metadata, message in (
        ([], "x-api-key header not present"),
        ([("x-api-key", "prv_unknown_key_1234")], "invalid API key"),
        (
            [("authorization", "Bearer " + pug_server.issue_tokens()[0])],
            "x-api-key header not present",
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            events_stub.BatchCreate(request, metadata=metadata, timeout=10)
        found = details(caught.value)
        assert (found.code, found.reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
        assert found.message == message
    reply = events_stub.BatchCreate(request, metadata=key_md(pug_server), timeout=10)
    assert reply.accepted == 1  # prv_ keys may ingest too


def test_identify_merges_traits_shallowly(
    pug_server: LocalServer, identify_stub: sdk_profiles_pb2_grpc.ProfilesSDKServiceStub
) -> None:
    md = key_md(pug_server, private=False)
    first = sdk_profiles_pb2.IdentifyRequest(external_id="u-9")
    first.traits.update({"plan": "free", "address": {"city": "Oslo", "zip": "0150"}})
    identify_stub.Identify(first, metadata=md, timeout=10)
    second = sdk_profiles_pb2.IdentifyRequest(external_id="u-9")
    second.traits.update({"plan": "pro", "address": {"city": "Bergen"}})
    identify_stub.Identify(second, metadata=md, timeout=10)
    profile = _profile(pug_server, "u-9")
    assert profile.properties["plan"] == "pro"
    assert dict(profile.properties["address"].items()) == {"city": "Bergen"}
    assert [r.external_id for r in pug_server.identifies] == ["u-9", "u-9"]


def test_identify_merges_the_anonymous_profile(
    pug_server: LocalServer,
    send: Send,
    identify_stub: sdk_profiles_pb2_grpc.ProfilesSDKServiceStub,
) -> None:
    md = key_md(pug_server, private=False)
    send(event("anon-42"), event("anon-42"))
    anon = sdk_profiles_pb2.IdentifyRequest(external_id="anon-42")
    anon.traits.update({"source": "ad", "plan": "trial"})
    identify_stub.Identify(anon, metadata=md, timeout=10)
    merge = sdk_profiles_pb2.IdentifyRequest(external_id="alice", anonymous_id="anon-42")
    merge.traits.update({"plan": "pro"})
    identify_stub.Identify(merge, metadata=md, timeout=10)
    send(event("anon-42"))  # later events follow the alias
    profile = _profile(pug_server, "alice")
    assert dict(profile.properties.items()) == {"source": "ad", "plan": "pro"}
    assert profile.activity.total_events == 3
    assert pug_server.store.profile(pug_server.project_id, external_id="anon-42") is None


@pytest.mark.parametrize(
    "request_fields",
    [
        {"external_id": ""},
        {},
        {"external_id": "cookieless-1"},
        {"external_id": "u", "anonymous_id": "visitor-1"},
        {"external_id": "u", "device_id": "d" * 37},
    ],
)
def test_identify_rules(
    pug_server: LocalServer,
    identify_stub: sdk_profiles_pb2_grpc.ProfilesSDKServiceStub,
    request_fields: dict[str, str],
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        identify_stub.Identify(
            sdk_profiles_pb2.IdentifyRequest(**request_fields),
            metadata=key_md(pug_server, private=False),
            timeout=10,
        )
    found = details(caught.value)
    assert (found.code, found.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert found.violations
