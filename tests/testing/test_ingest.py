"""The local server's ingestion path: BatchCreate and Identify over real loopback gRPC."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2_grpc as sdk_profiles_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc

from pug_grpc.testing import LocalServer, local_server
from tests.support.server import details, event, key_md

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def events_stub(pug_server: LocalServer) -> Iterator[events_pb2_grpc.EventsServiceStub]:
    with pug_server.channel() as channel:
        yield events_pb2_grpc.EventsServiceStub(channel)


@pytest.fixture
def identify_stub(
    pug_server: LocalServer,
) -> Iterator[sdk_profiles_pb2_grpc.ProfilesSDKServiceStub]:
    with pug_server.channel() as channel:
        yield sdk_profiles_pb2_grpc.ProfilesSDKServiceStub(channel)


def _send(
    stub: events_pb2_grpc.EventsServiceStub, server: LocalServer, *events: events_pb2.Event
) -> events_pb2.BatchCreateResponse:
    request = events_pb2.BatchCreateRequest(events=list(events))
    return stub.BatchCreate(request, metadata=key_md(server, private=False), timeout=10)


def _profile(server: LocalServer, external_id: str) -> profiles_pb2.Profile:
    with server.channel() as channel:
        stub = profiles_pb2_grpc.ProfilesServiceStub(channel)
        request = profiles_pb2.GetByExternalIdRequest(external_id=external_id)
        return stub.GetByExternalId(request, metadata=key_md(server), timeout=10).profile


def test_batch_is_accepted_stored_and_inspectable(
    pug_server: LocalServer,
    events_stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    sent = [event(f"user-{i}", custom={"n": i}) for i in range(5)]
    reply = _send(events_stub, pug_server, *sent)
    assert (reply.accepted, reply.dropped, dict(reply.dropped_by_reason)) == (5, 0, {})
    assert [e.event_id for e in pug_server.events] == [e.event_id for e in sent]
    assert pug_server.stored_event_count() == 5
    call = pug_server.calls_to("BatchCreate")[0]
    assert call.code == grpc.StatusCode.OK
    assert call.metadata["x-api-key"] == pug_server.public_key
    assert call.request_id.startswith("req_")


def test_redelivered_event_ids_are_stored_once(
    pug_server: LocalServer,
    events_stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    same = event()
    _send(events_stub, pug_server, same)
    reply = _send(events_stub, pug_server, same)
    assert reply.accepted == 1
    assert len(pug_server.events) == 2  # both deliveries recorded
    assert pug_server.stored_event_count() == 1  # one stored event


def test_invalid_batch_is_refused_whole_with_bad_request_details(
    pug_server: LocalServer,
    events_stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    good = event()
    bad = event(kind="not a kind")
    bad.custom_properties["$reserved"].string_value = "x"
    with pytest.raises(grpc.RpcError) as caught:
        _send(events_stub, pug_server, good, bad)
    found = details(caught.value)
    assert found.code == grpc.StatusCode.INVALID_ARGUMENT
    assert found.reason == "INVALID_EVENT_BATCH"
    assert found.domain == "pug.sh"
    assert found.request_id == pug_server.calls[-1].request_id
    fields = {field for field, _ in found.violations}
    assert "events[1].kind" in fields
    assert "events[1]" in fields  # the message-level '$' key rule
    assert pug_server.events == []
    assert pug_server.stored_event_count() == 0


@pytest.mark.parametrize(
    ("change", "rule_field"),
    [
        ({"event_id": "not-a-uuid"}, "events[0].event_id"),
        ({"session_id": "nope"}, "events[0].session_id"),
        ({"distinct_id": "cookieless-abc"}, ""),
        ({"distinct_id": ""}, "events[0]"),
    ],
)
def test_contract_rules_for_events(
    pug_server: LocalServer,
    events_stub: events_pb2_grpc.EventsServiceStub,
    change: dict[str, str],
    rule_field: str,
) -> None:
    bad = event()
    for name, value in change.items():
        setattr(bad, name, value)
    with pytest.raises(grpc.RpcError) as caught:
        _send(events_stub, pug_server, bad)
    found = details(caught.value)
    assert found.code == grpc.StatusCode.INVALID_ARGUMENT
    assert rule_field in {field for field, _ in found.violations}


def test_more_than_1000_events_are_refused(
    pug_server: LocalServer,
    events_stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _send(events_stub, pug_server, *[event() for _ in range(1001)])
    assert details(caught.value).violations[0][0] == "events"


def test_cookieless_events_get_a_server_id_or_are_dropped_out_of_range(
    pug_server: LocalServer,
    events_stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    today = events_pb2.Event(event_id=str(uuid.uuid4()), kind="page_view", cookieless=True)
    today.occur_time.GetCurrentTime()
    old = events_pb2.Event(event_id=str(uuid.uuid4()), kind="page_view", cookieless=True)
    old.occur_time.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    reply = _send(events_stub, pug_server, today, old)
    assert (reply.accepted, reply.dropped) == (1, 1)
    assert dict(reply.dropped_by_reason) == {"day_out_of_range": 1}
    stored = next(iter(pug_server.store.events(pug_server.project_id)))
    assert stored.distinct_id.startswith("cookieless-")


def test_ip_is_stripped_and_attribution_derived(
    pug_server: LocalServer,
    events_stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    sent = event(
        auto={
            "$ip": "203.0.113.9",
            "$url": "https://shop.example/cart?utm_source=news&utm_medium=email",
            "$referrer": "https://mail.example/inbox",
        }
    )
    _send(events_stub, pug_server, sent)
    stored = next(iter(pug_server.store.events(pug_server.project_id)))
    assert "$ip" not in stored.auto_props
    assert stored.auto_props["$pathname"] == ("s", "/cart")
    assert stored.auto_props["$hostname"] == ("s", "shop.example")
    assert stored.auto_props["$utm_source"] == ("s", "news")
    assert stored.auto_props["$channel"] == ("s", "email")
    assert stored.auto_props["$user_agent"][1].startswith("grpc-python")


def test_credential_rules_for_ingestion(
    pug_server: LocalServer,
    events_stub: events_pb2_grpc.EventsServiceStub,
) -> None:
    request = events_pb2.BatchCreateRequest(events=[event()])
    for metadata in (
        [],
        [("x-api-key", "prv_unknown_key_1234")],
        [("authorization", "Bearer " + pug_server.issue_tokens()[0])],
    ):
        with pytest.raises(grpc.RpcError) as caught:
            events_stub.BatchCreate(request, metadata=metadata, timeout=10)
        found = details(caught.value)
        assert (found.code, found.reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    reply = events_stub.BatchCreate(request, metadata=key_md(pug_server), timeout=10)
    assert reply.accepted == 1  # prv_ keys may ingest too


def test_identify_merges_traits_shallowly(
    pug_server: LocalServer,
    identify_stub: sdk_profiles_pb2_grpc.ProfilesSDKServiceStub,
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
    events_stub: events_pb2_grpc.EventsServiceStub,
    identify_stub: sdk_profiles_pb2_grpc.ProfilesSDKServiceStub,
) -> None:
    md = key_md(pug_server, private=False)
    _send(events_stub, pug_server, event("anon-42"), event("anon-42"))
    anon = sdk_profiles_pb2.IdentifyRequest(external_id="anon-42")
    anon.traits.update({"source": "ad", "plan": "trial"})
    identify_stub.Identify(anon, metadata=md, timeout=10)
    merge = sdk_profiles_pb2.IdentifyRequest(external_id="alice", anonymous_id="anon-42")
    merge.traits.update({"plan": "pro"})
    identify_stub.Identify(merge, metadata=md, timeout=10)
    _send(events_stub, pug_server, event("anon-42"))  # later events follow the alias
    profile = _profile(pug_server, "alice")
    assert dict(profile.properties.items()) == {"source": "ad", "plan": "pro"}
    assert profile.activity.total_events == 3
    with pytest.raises(grpc.RpcError) as caught, pug_server.channel() as channel:
        profiles_pb2_grpc.ProfilesServiceStub(channel).Get(
            profiles_pb2.GetRequest(id="missing"), metadata=key_md(pug_server), timeout=10
        )
    assert details(caught.value).reason == "NOT_FOUND"
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


def test_sqlite_storage_survives_restart_and_concurrent_batches(tmp_path: object) -> None:
    database = f"{tmp_path}/pug.db"
    with local_server(database=database) as server:
        port = server.port

        def push(worker: int) -> None:
            with server.channel() as channel:
                stub = events_pb2_grpc.EventsServiceStub(channel)
                for _ in range(5):
                    _send(stub, server, *[event(f"w{worker}") for _ in range(50)])

        threads = [threading.Thread(target=push, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert server.stored_event_count() == 6 * 5 * 50
        keys = (server.public_key, server.private_key)
    with local_server(database=database, public_key=keys[0], private_key=keys[1]) as again:
        assert again.stored_event_count() == 1500
        assert again.port != 0
        assert _profile(again, "w3").activity.total_events == 250
    assert port != 0


def test_restart_keeps_port_and_data(pug_server: LocalServer) -> None:
    with pug_server.channel() as channel:
        _send(events_pb2_grpc.EventsServiceStub(channel), pug_server, event())
    port = pug_server.port
    pug_server.restart()
    assert pug_server.port == port
    with pug_server.channel() as channel:
        reply = _send(events_pb2_grpc.EventsServiceStub(channel), pug_server, event())
    assert reply.accepted == 1
    assert pug_server.stored_event_count() == 2
