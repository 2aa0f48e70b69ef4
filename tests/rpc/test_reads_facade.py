"""The read namespaces (profiles, activity, insights) against a loopback server, API-key path.

Every test runs over gRPC and over Connect (an independent HTTP/1.1 Connect server).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pug_grpc.gen.common.v1 import filter_schema_pb2, filters_pb2
from pug_grpc.gen.shared.activity.v1 import activity_pb2
from pug_grpc.gen.shared.insights.v1 import insights_pb2
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2

from pug_grpc import (
    PugInvalidArgumentError,
    PugPublicKeyError,
    PugUnavailableError,
    struct_to_dict,
)
from pug_grpc._retry import RetrySettings
from tests.rpc.clients import KEY, reads
from tests.support.read_servers import Running, sample_events, sample_profiles

TRANSPORTS = ("grpc", "connect")

PUB = "pub_test_0123456789abcdef"
NO_WAIT = RetrySettings(initial_backoff=0.0, max_backoff=0.0, max_attempts=3)
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 8, tzinfo=UTC)
P = "/shared.profiles.v1.ProfilesService/"
A = "/shared.activity.v1.ActivityService/"
INS = "/shared.insights.v1.InsightsService/"


def last(server: Running, path: str) -> object:
    calls = server.state.calls(path)
    assert calls, f"no call to {path}: {server.state.paths()}"
    return calls[-1].request


# -- profiles --------------------------------------------------------------------------------


def test_profile_get_and_get_by_external_id(server: Running) -> None:
    wanted = sample_profiles(1)[0]
    server.state.canned[P + "Get"] = profiles_pb2.GetResponse(profile=wanted)
    reply = reads(server).profiles.get("p0")
    assert isinstance(reply, profiles_pb2.GetResponse)
    assert reply.profile.id == "p0"
    assert struct_to_dict(reply.profile.properties) == {"plan": "free", "seats": 0.0}
    assert last(server, P + "Get") == profiles_pb2.GetRequest(id="p0")
    call = server.state.calls(P + "Get")[0]
    assert call.metadata["x-api-key"] == KEY

    reads(server).profiles.get_by_external_id("user-9")
    assert last(server, P + "GetByExternalId") == profiles_pb2.GetByExternalIdRequest(
        external_id="user-9"
    )


def test_profile_deletes_and_deletion_request(server: Running) -> None:
    client = reads(server).profiles
    server.state.canned[P + "Delete"] = profiles_pb2.DeleteResponse(
        request_id="del-1", status=profiles_pb2.COMPLIANCE_REQUEST_STATUS_PENDING
    )
    assert client.delete("p1").request_id == "del-1"
    assert last(server, P + "Delete") == profiles_pb2.DeleteRequest(id="p1")
    client.delete_data_subject("user-1")
    assert last(server, P + "DeleteDataSubject") == profiles_pb2.DeleteDataSubjectRequest(
        external_id="user-1"
    )
    client.get_deletion_request("del-1")
    assert last(server, P + "GetDeletionRequest") == profiles_pb2.GetDeletionRequestRequest(
        request_id="del-1"
    )


def test_profile_list_streams_every_page(server: Running) -> None:
    server.state.profiles = sample_profiles(7)
    filters = [{"property": "plan", "operator": "equals", "value": "pro", "source": "profile"}]
    ids = [p.id for p in reads(server).profiles.list(filters=filters)]
    assert ids == [f"p{i}" for i in range(7)]
    calls = server.state.calls(P + "List")
    assert len(calls) == 1  # one stream carried all four pages
    group = calls[0].request.filter_groups[0]
    assert group.operator == filters_pb2.LOGICAL_OPERATOR_AND
    assert group.filters[0] == filters_pb2.PropertyFilter(
        property="plan",
        operator=filters_pb2.FILTER_OPERATOR_EQUALS,
        value="pro",
        source=filter_schema_pb2.PROPERTY_SOURCE_PROFILE,
    )


def test_profile_list_pages_and_request_message(server: Running) -> None:
    server.state.profiles = sample_profiles(5)
    pages = list(reads(server).profiles.list_pages(profiles_pb2.ListRequest(page_token="2")))
    assert [[p.id for p in page.profiles] for page in pages] == [["p2", "p3"], ["p4"]]
    assert [page.next_page_token for page in pages] == ["4", ""]


def test_broken_stream_resumes_from_last_page_under_retry_settings(server: Running) -> None:
    server.state.profiles = sample_profiles(6)
    server.state.break_stream_after = 1
    ids = [p.id for p in reads(server).profiles.list(retry=NO_WAIT)]
    assert ids == [f"p{i}" for i in range(6)]
    tokens = [c.request.page_token for c in server.state.calls(P + "List")]
    assert tokens == ["", "2"]  # reopened after the first page, not from the start


def test_broken_stream_without_retry_raises_after_the_pages_it_got(server: Running) -> None:
    server.state.profiles = sample_profiles(6)
    server.state.break_stream_after = 1
    profiles = reads(server).profiles.list()
    seen = [next(profiles).id, next(profiles).id]
    with pytest.raises(PugUnavailableError):
        next(profiles)
    assert seen == ["p0", "p1"]


def test_stopping_a_listing_early_cancels_the_stream(server: Running) -> None:
    server.state.profiles = sample_profiles(10)
    pages = reads(server).profiles.list_pages()
    first = next(pages)
    pages.close()
    assert [p.id for p in first.profiles] == ["p0", "p1"]
    assert list(pages) == []


# -- activity --------------------------------------------------------------------------------


def test_feed_follows_page_tokens(server: Running) -> None:
    server.state.events = sample_events(["u1", "u2"], 7)
    events = list(
        reads(server).activity.feed(
            "u1",
            time_range=(START, END),
            page_size=3,
            events=[{"kind": "page_view"}],
            property_filters=[{"property": "$browser", "operator": "is_set"}],
        )
    )
    assert [e.event_id for e in events] == [f"u1-e{i}" for i in range(7)]
    assert struct_to_dict(events[1].custom_properties) == {"n": 1.0, "path": "/p/1"}
    calls = server.state.calls(A + "GetActivityFeed")
    assert [c.request.page_token for c in calls] == ["", "3", "6"]
    first = calls[0].request
    assert first.distinct_id == "u1"
    assert first.page_size == 3
    assert first.time_range.to.ToDatetime(UTC) == END
    assert getattr(first.time_range, "from").ToDatetime(UTC) == START
    assert first.events[0].kind == "page_view"
    assert first.property_filters[0].operator == filters_pb2.FILTER_OPERATOR_IS_SET
    assert not first.HasField("session_id")  # unset stays unset


def test_feed_single_page_and_request_message(server: Running) -> None:
    server.state.events = sample_events(["u1"], 5)
    page = reads(server).activity.feed_page(
        activity_pb2.GetActivityFeedRequest(distinct_id="u1", page_size=2, page_token="2")
    )
    assert [e.event_id for e in page.events] == ["u1-e2", "u1-e3"]
    assert page.next_page_token == "4"


def test_event_explorer_pages_and_single_page(server: Running) -> None:
    server.state.events = sample_events(["a", "b", "c"], 2)
    client = reads(server).activity
    assert len(list(client.event_explorer(time_range=timedelta(days=1), page_size=4))) == 6
    assert [c.request.page_token for c in server.state.calls(A + "GetEventExplorer")] == ["", "4"]
    page = client.event_explorer_page(session_id="s-1")
    assert len(page.events) == 3
    assert page.next_page_token == "3"
    assert last(server, A + "GetEventExplorer").session_id == "s-1"  # type: ignore[attr-defined]


def test_heatmap_stats_schema_and_values(server: Running) -> None:
    client = reads(server).activity
    client.heatmap("u1", time_range={"from": START, "to": END})
    assert last(server, A + "GetActivityHeatmap").distinct_id == "u1"  # type: ignore[attr-defined]
    stats = activity_pb2.GetProfileStatsResponse(stats=activity_pb2.ProfileStats(total_events=9))
    stats.properties.update({"country": "NL"})
    server.state.canned[A + "GetProfileStats"] = stats
    reply = client.profile_stats("u1")
    assert reply.stats.total_events == 9
    assert struct_to_dict(reply.properties) == {"country": "NL"}
    client.filter_schema(event_kind="page_view", allowed_types=["string", "boolean"])
    assert last(server, A + "GetFilterSchema") == filter_schema_pb2.GetFilterSchemaRequest(
        event_kind="page_view",
        allowed_types=[
            filter_schema_pb2.PROPERTY_VALUE_TYPE_STRING,
            filter_schema_pb2.PROPERTY_VALUE_TYPE_BOOLEAN,
        ],
    )
    client.property_values("$browser", source="auto", event_kind="page_view")
    assert last(server, A + "GetPropertyValues") == activity_pb2.GetPropertyValuesRequest(
        property_key="$browser",
        source=filter_schema_pb2.PROPERTY_SOURCE_AUTO,
        event_kind="page_view",
    )


# -- insights --------------------------------------------------------------------------------


def test_insight_query_from_plain_python(server: Running) -> None:
    reply = insights_pb2.QueryResponse(segmentation=insights_pb2.SegmentationResult(total=12))
    server.state.canned[INS + "Query"] = reply
    result = reads(server).insights.query(
        {
            "insight_type": "funnel",
            "events": [
                {"event": {"kind": "signup"}, "aggregation": "unique_users"},
                {"event": {"kind": "purchase"}},
            ],
            "conversion_window": timedelta(days=1),
            "breakdowns": [{"property": "$country"}],
        },
        time_range=(START, END),
        granularity="day",
        timezone="Europe/Amsterdam",
    )
    assert result.WhichOneof("result") == "segmentation"
    sent = last(server, INS + "Query")
    assert isinstance(sent, insights_pb2.QueryRequest)
    assert sent.spec.insight_type == insights_pb2.INSIGHT_TYPE_FUNNEL
    assert sent.spec.events[0].aggregation == insights_pb2.AGGREGATION_TYPE_UNIQUE_USERS
    assert sent.spec.conversion_window.seconds == 86400
    assert sent.granularity == insights_pb2.GRANULARITY_DAY
    assert sent.timezone == "Europe/Amsterdam"


def test_insight_query_accepts_messages(server: Running) -> None:
    spec = insights_pb2.InsightQuerySpec(insight_type=insights_pb2.INSIGHT_TYPE_TRENDS)
    client = reads(server).insights
    client.query(spec, time_range=(START, END), granularity=insights_pb2.GRANULARITY_HOUR)
    full = insights_pb2.QueryRequest(spec=spec, granularity=insights_pb2.GRANULARITY_WEEK)
    client.query(full)
    assert last(server, INS + "Query") == full
    with pytest.raises(PugInvalidArgumentError, match="not both"):
        client.query(full, granularity="day")
    with pytest.raises(PugInvalidArgumentError, match="missing required time_range"):
        client.query(spec, granularity="day")


def test_segment_users_paginates(server: Running) -> None:
    server.state.segment = [f"d{i}" for i in range(5)]
    client = reads(server).insights
    ids = list(
        client.segment_users(
            time_range=(START, END),
            events=[{"event": {"kind": "signup"}}],
            filters=[{"property": "plan", "operator": "in", "values": ["pro", "team"]}],
        )
    )
    assert ids == [f"d{i}" for i in range(5)]
    calls = server.state.calls(INS + "SegmentUsers")
    assert [c.request.page_token for c in calls] == ["", "2", "4"]
    assert list(calls[0].request.filter_groups[0].filters[0].values) == ["pro", "team"]
    page = client.segment_users_page(time_range=(START, END), page_size=4)
    assert list(page.distinct_ids) == ["d0", "d1", "d2", "d3"]


def test_insight_schema_and_values(server: Running) -> None:
    client = reads(server).insights
    client.filter_schema()
    assert last(server, INS + "GetFilterSchema") == filter_schema_pb2.GetFilterSchemaRequest()
    client.property_values("plan", source="profile")
    assert last(server, INS + "GetPropertyValues") == insights_pb2.GetPropertyValuesRequest(
        property_key="plan", source=filter_schema_pb2.PROPERTY_SOURCE_PROFILE
    )


# -- call options ----------------------------------------------------------------------------


def test_timeout_default_and_per_call(server: Running) -> None:
    client = reads(server, timeout=20.0).profiles
    client.get("p1")
    client.get("p1", timeout=2.0)
    client.get("p1", timeout=None)
    remaining = [c.time_remaining for c in server.state.calls(P + "Get")]
    assert remaining[0] is not None
    assert 15.0 < remaining[0] <= 21.0
    assert remaining[1] is not None
    assert remaining[1] <= 3.0
    assert remaining[2] is None or remaining[2] > 1e6  # no deadline


def test_project_id_per_call_is_refused_with_an_api_key(server: Running) -> None:
    client = reads(server, project_id="proj-default").profiles
    client.get("p1")
    assert server.state.calls(P + "Get")[0].metadata.get("x-project-id") == "proj-default"
    for call in (
        lambda: client.get("p1", project_id="proj-other"),
        lambda: client.list(project_id="proj-other"),
        lambda: reads(server).activity.feed("u1", project_id="proj-other"),
    ):
        with pytest.raises(PugInvalidArgumentError, match="ignores x-project-id") as caught:
            call()
        assert caught.value.reason == "PROJECT_ID_WITH_API_KEY"
        assert caught.value.is_client_side
    assert len(server.state.calls()) == 1


# -- the pub_ guard --------------------------------------------------------------------------


def test_public_key_is_refused_before_any_network_call(server: Running) -> None:
    client = reads(server, key=PUB)
    calls = [
        lambda: client.profiles.get("p1"),
        lambda: client.profiles.get_by_external_id("u"),
        client.profiles.list,
        client.profiles.list_pages,
        lambda: client.profiles.delete("p1"),
        lambda: client.profiles.delete_data_subject("u"),
        lambda: client.profiles.get_deletion_request("r"),
        lambda: client.activity.feed("u"),
        lambda: client.activity.feed_page("u"),
        client.activity.event_explorer,
        client.activity.event_explorer_page,
        lambda: client.activity.heatmap("u"),
        lambda: client.activity.profile_stats("u"),
        client.activity.filter_schema,
        lambda: client.activity.property_values("k", source="auto"),
        lambda: client.insights.query(
            {"insight_type": "trends"}, time_range=(START, END), granularity="day"
        ),
        lambda: client.insights.segment_users(time_range=(START, END)),
        lambda: client.insights.segment_users_page(time_range=(START, END)),
        client.insights.filter_schema,
        lambda: client.insights.property_values("k", source="auto"),
    ]
    for call in calls:
        with pytest.raises(PugPublicKeyError) as caught:
            call()
        err = caught.value
        assert err.is_client_side
        assert err.reason == "PUBLIC_KEY_NOT_ALLOWED"
        assert "pub_" in str(err)
        assert "prv_" in str(err)
        assert PUB not in str(err)  # masked
    assert server.state.paths() == []


def test_bad_plain_arguments_fail_locally(server: Running) -> None:
    client = reads(server)
    with pytest.raises(PugInvalidArgumentError, match="missing required id"):
        client.profiles.get("")
    with pytest.raises(PugInvalidArgumentError, match="not RFC 3339 text"):
        client.activity.feed_page("u", time_range=("the first of January", END))
    with pytest.raises(PugInvalidArgumentError, match="unknown value 'weekly'"):
        client.insights.query(
            {"insight_type": "trends"}, time_range=(START, END), granularity="weekly"
        )
    with pytest.raises(PugInvalidArgumentError, match="expected"):
        client.profiles.get(activity_pb2.GetProfileStatsRequest())  # type: ignore[arg-type]
    assert server.state.paths() == []
