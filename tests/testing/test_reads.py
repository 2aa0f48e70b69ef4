"""The local server's read services: profiles, activity and trends insights."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import json_format
from pug_grpc.gen.common.v1 import filter_schema_pb2, filters_pb2, time_pb2
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2_grpc as sdk_profiles_pb2_grpc
from pug_grpc.gen.shared.activity.v1 import activity_pb2, activity_pb2_grpc
from pug_grpc.gen.shared.insights.v1 import insights_pb2, insights_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc

from pug_grpc.testing import LocalServer, ServerConfig, local_server
from tests.support.server import details, event, key_md

pytestmark = pytest.mark.timeout(60)

T0 = dt.datetime(2024, 3, 4, 10, 0, tzinfo=dt.UTC)  # a Monday
MIDNIGHT = T0.replace(hour=0)


def _time_range(start: dt.datetime, end: dt.datetime) -> time_pb2.TimeRange:
    result = time_pb2.TimeRange()
    getattr(result, "from").FromDatetime(start)
    result.to.FromDatetime(end)
    return result


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """One server with a known data set: 30 users, 3 kinds, events over three days."""
    with local_server(ServerConfig(list_page_size=7)) as running:
        with running.channel() as channel:
            events = events_pb2_grpc.EventsServiceStub(channel)
            batch: list[events_pb2.Event] = []
            for user in range(30):
                for hour in range(0, 72, 12):  # 6 events per user: 3 days, twice a day
                    kind = ("page_view", "signup", "purchase")[hour // 24]
                    batch.append(
                        event(
                            f"user-{user}",
                            kind,
                            when=T0 + dt.timedelta(hours=hour, minutes=user),
                            session_id=f"00000000-0000-4000-8000-{user:012d}",
                            custom={"amount": float(user), "plan": "pro" if user % 3 else "free"},
                            auto={"$browser": "Firefox", "$country": "NO"},
                        )
                    )
            md = key_md(running, private=False)
            events.BatchCreate(events_pb2.BatchCreateRequest(events=batch), metadata=md)
            identify = sdk_profiles_pb2_grpc.ProfilesSDKServiceStub(channel)
            for user in range(30):
                request = sdk_profiles_pb2.IdentifyRequest(external_id=f"user-{user}")
                request.traits.update({"tier": "gold" if user < 10 else "silver", "age": user})
                identify.Identify(request, metadata=md)
        yield running


@pytest.fixture
def channel(server: LocalServer) -> Iterator[grpc.Channel]:
    with server.channel() as opened:
        yield opened


def test_profiles_list_streams_every_page(server: LocalServer, channel: grpc.Channel) -> None:
    stub = profiles_pb2_grpc.ProfilesServiceStub(channel)
    pages = list(stub.List(profiles_pb2.ListRequest(), metadata=key_md(server), timeout=10))
    assert [len(p.profiles) for p in pages] == [7, 7, 7, 7, 2]
    assert all(p.next_page_token for p in pages[:-1])
    assert not pages[-1].next_page_token
    ids = [p.external_id for page in pages for p in page.profiles]
    assert sorted(ids) == sorted(f"user-{u}" for u in range(30))
    assert all(p.activity.total_events == 6 for page in pages for p in page.profiles)
    resumed = list(
        stub.List(
            profiles_pb2.ListRequest(page_token=pages[2].next_page_token), metadata=key_md(server)
        )
    )
    assert [p.external_id for page in resumed for p in page.profiles] == ids[21:]


def test_profiles_list_filters(server: LocalServer, channel: grpc.Channel) -> None:
    stub = profiles_pb2_grpc.ProfilesServiceStub(channel)
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
    found = [
        p.external_id
        for page in stub.List(gold_and_old, metadata=key_md(server))
        for p in page.profiles
    ]
    assert sorted(found) == sorted(f"user-{u}" for u in range(5, 10))


def test_profile_get_and_not_found(server: LocalServer, channel: grpc.Channel) -> None:
    stub = profiles_pb2_grpc.ProfilesServiceStub(channel)
    by_external = stub.GetByExternalId(
        profiles_pb2.GetByExternalIdRequest(external_id="user-3"), metadata=key_md(server)
    ).profile
    by_id = stub.Get(profiles_pb2.GetRequest(id=by_external.id), metadata=key_md(server)).profile
    assert by_id == by_external
    assert by_id.project_id == server.project_id
    assert by_id.activity.sessions == 1
    assert by_id.activity.pageviews == 2
    assert (by_id.activity.browser, by_id.activity.country) == ("Firefox", "NO")
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetByExternalId(
            profiles_pb2.GetByExternalIdRequest(external_id="nobody"), metadata=key_md(server)
        )
    found = details(caught.value)
    assert (found.code, found.reason, found.domain) == (
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
        "pug.sh",
    )
    assert found.request_id


def test_activity_feed_pages_newest_first(server: LocalServer, channel: grpc.Channel) -> None:
    stub = activity_pb2_grpc.ActivityServiceStub(channel)
    seen: list[activity_pb2.ActivityEvent] = []
    token = ""
    while True:
        reply = stub.GetActivityFeed(
            activity_pb2.GetActivityFeedRequest(
                distinct_id="user-4", page_size=4, page_token=token
            ),
            metadata=key_md(server),
        )
        seen.extend(reply.events)
        token = reply.next_page_token
        if not token:
            break
    assert len(seen) == 6
    times = [e.occur_time.ToDatetime() for e in seen]
    assert times == sorted(times, reverse=True)
    assert seen[0].custom_properties["amount"] == 4.0
    assert seen[0].auto_properties["$country"] == "NO"


def test_activity_feed_filters(server: LocalServer, channel: grpc.Channel) -> None:
    stub = activity_pb2_grpc.ActivityServiceStub(channel)
    only_signups = activity_pb2.GetActivityFeedRequest(
        distinct_id="user-4", events=[filters_pb2.EventFilter(kind="signup")]
    )
    assert {e.kind for e in stub.GetActivityFeed(only_signups, metadata=key_md(server)).events} == {
        "signup"
    }
    ranged = activity_pb2.GetActivityFeedRequest(
        distinct_id="user-4", time_range=_time_range(T0, T0 + dt.timedelta(days=1))
    )
    assert len(stub.GetActivityFeed(ranged, metadata=key_md(server)).events) == 2
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetActivityFeed(
            activity_pb2.GetActivityFeedRequest(distinct_id="user-4", page_token="garbage!"),
            metadata=key_md(server),
        )
    assert details(caught.value).reason == "INVALID_PAGE_TOKEN"


def test_event_explorer_and_filter_by_property(server: LocalServer, channel: grpc.Channel) -> None:
    stub = activity_pb2_grpc.ActivityServiceStub(channel)
    request = activity_pb2.GetEventExplorerRequest(
        page_size=1000,
        property_filters=[
            filters_pb2.PropertyFilter(
                property="plan", operator=filters_pb2.FILTER_OPERATOR_IN, values=["free"]
            )
        ],
    )
    reply = stub.GetEventExplorer(request, metadata=key_md(server))
    assert len(reply.events) == 10 * 6
    assert not reply.next_page_token


def test_filter_schema_and_property_values(server: LocalServer, channel: grpc.Channel) -> None:
    stub = activity_pb2_grpc.ActivityServiceStub(channel)
    schema = stub.GetFilterSchema(
        filter_schema_pb2.GetFilterSchemaRequest(), metadata=key_md(server)
    )
    assert {e.name: e.count for e in schema.events} == {
        "page_view": 60,
        "signup": 60,
        "purchase": 60,
    }
    custom = {k.name: k.value_type for k in schema.custom_property_keys}
    assert custom == {
        "amount": filter_schema_pb2.PROPERTY_VALUE_TYPE_FLOAT,
        "plan": filter_schema_pb2.PROPERTY_VALUE_TYPE_STRING,
    }
    assert "$browser" in {k.name for k in schema.auto_property_keys}
    assert {k.name for k in schema.profile_property_keys} == {"tier", "age"}
    only_strings = stub.GetFilterSchema(
        filter_schema_pb2.GetFilterSchemaRequest(
            allowed_types=[filter_schema_pb2.PROPERTY_VALUE_TYPE_STRING]
        ),
        metadata=key_md(server),
    )
    assert [k.name for k in only_strings.custom_property_keys] == ["plan"]
    values = stub.GetPropertyValues(
        activity_pb2.GetPropertyValuesRequest(
            property_key="plan", source=filter_schema_pb2.PROPERTY_SOURCE_CUSTOM
        ),
        metadata=key_md(server),
    )
    assert list(values.values) == ["pro", "free"]
    insights = insights_pb2_grpc.InsightsServiceStub(channel)
    tiers = insights.GetPropertyValues(
        insights_pb2.GetPropertyValuesRequest(
            property_key="tier", source=filter_schema_pb2.PROPERTY_SOURCE_PROFILE
        ),
        metadata=key_md(server),
    )
    assert list(tiers.values) == ["silver", "gold"]


def test_heatmap_and_profile_stats(server: LocalServer, channel: grpc.Channel) -> None:
    stub = activity_pb2_grpc.ActivityServiceStub(channel)
    heatmap = stub.GetActivityHeatmap(
        activity_pb2.GetActivityHeatmapRequest(distinct_id="user-1"), metadata=key_md(server)
    )
    assert [(d.date, d.count) for d in heatmap.days] == [
        ("2024-03-04", 2),
        ("2024-03-05", 2),
        ("2024-03-06", 2),
    ]
    stats = stub.GetProfileStats(
        activity_pb2.GetProfileStatsRequest(distinct_id="user-1"), metadata=key_md(server)
    )
    assert stats.stats.total_events == 6
    assert stats.stats.browser == "Firefox"
    assert json_format.MessageToDict(stats.properties) == {"tier": "gold", "age": 1.0}
    assert len(stats.heatmap) == 3


def _trends(
    server: LocalServer, channel: grpc.Channel, spec: insights_pb2.InsightQuerySpec, **extra: object
) -> insights_pb2.QueryResponse:
    request = insights_pb2.QueryRequest(
        spec=spec,
        time_range=_time_range(MIDNIGHT, MIDNIGHT + dt.timedelta(days=3)),
        granularity=insights_pb2.GRANULARITY_DAY,
        **extra,  # type: ignore[arg-type]
    )
    return insights_pb2_grpc.InsightsServiceStub(channel).Query(request, metadata=key_md(server))


def test_trends_count_per_kind_per_bucket(server: LocalServer, channel: grpc.Channel) -> None:
    reply = _trends(
        server,
        channel,
        insights_pb2.InsightQuerySpec(insight_type=insights_pb2.INSIGHT_TYPE_TRENDS),
    )
    series = {s.event_kind: [p.value for p in s.points] for s in reply.trends.series}
    assert series == {
        "page_view": [60.0, 0.0, 0.0],
        "purchase": [0.0, 0.0, 60.0],
        "signup": [0.0, 60.0, 0.0],
    }
    first = reply.trends.series[0].points[0].time.ToDatetime(tzinfo=dt.UTC)
    assert first == MIDNIGHT


def test_trends_aggregations_and_breakdowns(server: LocalServer, channel: grpc.Channel) -> None:
    spec = insights_pb2.InsightQuerySpec(
        insight_type=insights_pb2.INSIGHT_TYPE_TRENDS,
        events=[
            insights_pb2.EventQuery(
                event=filters_pb2.EventFilter(kind="purchase"),
                aggregation=insights_pb2.AGGREGATION_TYPE_UNIQUE_USERS,
            )
        ],
        breakdowns=[insights_pb2.Breakdown(property="plan")],
    )
    reply = _trends(server, channel, spec)
    by_plan = {s.breakdown["plan"]: [p.value for p in s.points] for s in reply.trends.series}
    assert by_plan == {"pro": [0.0, 0.0, 20.0], "free": [0.0, 0.0, 10.0]}
    total = insights_pb2.InsightQuerySpec(
        insight_type=insights_pb2.INSIGHT_TYPE_TRENDS,
        events=[
            insights_pb2.EventQuery(
                event=filters_pb2.EventFilter(kind="purchase"),
                aggregation=insights_pb2.AGGREGATION_TYPE_SUM,
                aggregation_property="amount",
            )
        ],
    )
    points = _trends(server, channel, total).trends.series[0].points
    assert points[2].value == 2 * sum(range(30))


def test_trends_in_a_timezone_by_hour(server: LocalServer, channel: grpc.Channel) -> None:
    request = insights_pb2.QueryRequest(
        spec=insights_pb2.InsightQuerySpec(insight_type=insights_pb2.INSIGHT_TYPE_TRENDS),
        time_range=_time_range(T0, T0 + dt.timedelta(hours=3)),
        granularity=insights_pb2.GRANULARITY_HOUR,
        timezone="Asia/Kolkata",  # +05:30: buckets start at half past in UTC
    )
    reply = insights_pb2_grpc.InsightsServiceStub(channel).Query(request, metadata=key_md(server))
    points = reply.trends.series[0].points
    assert points[0].time.ToDatetime(tzinfo=dt.UTC) == T0 - dt.timedelta(minutes=30)
    assert [p.value for p in points] == [30.0, 0.0, 0.0, 0.0]


def test_other_insight_types_are_unimplemented_with_a_clear_message(
    server: LocalServer, channel: grpc.Channel
) -> None:
    spec = insights_pb2.InsightQuerySpec(
        insight_type=insights_pb2.INSIGHT_TYPE_FUNNEL,
        events=[insights_pb2.EventQuery(event=filters_pb2.EventFilter(kind="signup"))],
    )
    with pytest.raises(grpc.RpcError) as caught:
        _trends(server, channel, spec)
    found = details(caught.value)
    assert found.code == grpc.StatusCode.UNIMPLEMENTED
    assert "INSIGHT_TYPE_FUNNEL" in found.message
    assert found.reason == "UNIMPLEMENTED"


def test_insights_rules_naming_enums_are_enforced(
    server: LocalServer, channel: grpc.Channel
) -> None:
    # protovalidate alone raises EvaluationError on these rules; the server still applies them.
    spec = insights_pb2.InsightQuerySpec(insight_type=insights_pb2.INSIGHT_TYPE_FUNNEL)
    with pytest.raises(grpc.RpcError) as caught:
        _trends(server, channel, spec)
    found = details(caught.value)
    assert found.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any("require at least one event" in text for _, text in found.violations)
    minute = insights_pb2.QueryRequest(
        spec=insights_pb2.InsightQuerySpec(insight_type=insights_pb2.INSIGHT_TYPE_TRENDS),
        time_range=_time_range(T0, T0 + dt.timedelta(days=1)),
        granularity=insights_pb2.GRANULARITY_MINUTE,
    )
    with pytest.raises(grpc.RpcError) as caught:
        insights_pb2_grpc.InsightsServiceStub(channel).Query(minute, metadata=key_md(server))
    assert "at most 6 hours" in details(caught.value).message


def test_non_numeric_filter_value_is_invalid_not_a_crash(
    server: LocalServer, channel: grpc.Channel
) -> None:
    # The numeric CEL rule cannot evaluate double('abc'): treated as not validated, then
    # refused by the filter itself rather than crashing.
    request = activity_pb2.GetEventExplorerRequest(
        property_filters=[
            filters_pb2.PropertyFilter(
                property="amount", operator=filters_pb2.FILTER_OPERATOR_GT, value="abc"
            )
        ]
    )
    with pytest.raises(grpc.RpcError) as caught:
        activity_pb2_grpc.ActivityServiceStub(channel).GetEventExplorer(
            request, metadata=key_md(server)
        )
    assert details(caught.value).code == grpc.StatusCode.INVALID_ARGUMENT


def test_delete_data_subject_and_deletion_request(channel: grpc.Channel) -> None:
    with local_server() as own, own.channel() as own_channel:
        events_pb2_grpc.EventsServiceStub(own_channel).BatchCreate(
            events_pb2.BatchCreateRequest(events=[event("gone"), event("gone"), event("kept")]),
            metadata=key_md(own),
        )
        stub = profiles_pb2_grpc.ProfilesServiceStub(own_channel)
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
