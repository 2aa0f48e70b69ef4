"""``ActivityService`` on the local server: feed and explorer pages, heatmaps, schema, values."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf import json_format
from pug_grpc.gen.common.v1 import filter_schema_pb2, filters_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2_grpc as sdk_profiles_pb2_grpc
from pug_grpc.gen.shared.activity.v1 import activity_pb2, activity_pb2_grpc
from pug_grpc.gen.shared.insights.v1 import insights_pb2, insights_pb2_grpc

from pug_grpc.testing import LocalServer
from tests.support.server import details, event, key_md
from tests.testing.conftest import T0, Send, time_range

pytestmark = pytest.mark.timeout(60)


def _stub(channel: grpc.Channel) -> activity_pb2_grpc.ActivityServiceStub:
    return activity_pb2_grpc.ActivityServiceStub(channel)


def test_feed_pages_newest_first_with_a_token_on_every_full_page(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
) -> None:
    pages: list[activity_pb2.GetActivityFeedResponse] = []
    token = ""
    while True:
        reply = _stub(seeded_channel).GetActivityFeed(
            activity_pb2.GetActivityFeedRequest(
                distinct_id="user-4", page_size=3, page_token=token
            ),
            metadata=key_md(seeded_server),
        )
        pages.append(reply)
        token = reply.next_page_token
        if not token:
            break
    assert [len(p.events) for p in pages] == [3, 3, 0]  # 6 events: the last page is empty
    seen = [e for page in pages for e in page.events]
    times = [e.occur_time.ToDatetime() for e in seen]
    assert times == sorted(times, reverse=True)
    assert seen[0].custom_properties["amount"] == 4.0
    assert seen[0].auto_properties["$country"] == "NO"


def test_feed_filters(seeded_server: LocalServer, seeded_channel: grpc.Channel) -> None:
    stub = _stub(seeded_channel)
    md = key_md(seeded_server)
    only_signups = activity_pb2.GetActivityFeedRequest(
        distinct_id="user-4", events=[filters_pb2.EventFilter(kind="signup")]
    )
    assert {e.kind for e in stub.GetActivityFeed(only_signups, metadata=md).events} == {"signup"}
    ranged = activity_pb2.GetActivityFeedRequest(
        distinct_id="user-4", time_range=time_range(T0, T0 + dt.timedelta(days=1))
    )
    assert len(stub.GetActivityFeed(ranged, metadata=md).events) == 2
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetActivityFeed(
            activity_pb2.GetActivityFeedRequest(distinct_id="user-4", page_token="garbage!"),
            metadata=md,
        )
    assert details(caught.value).reason == "INVALID_PAGE_TOKEN"


def test_explorer_filters_by_property(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
) -> None:
    request = activity_pb2.GetEventExplorerRequest(
        page_size=1000,
        property_filters=[
            filters_pb2.PropertyFilter(
                property="plan", operator=filters_pb2.FILTER_OPERATOR_IN, values=["free"]
            )
        ],
    )
    reply = _stub(seeded_channel).GetEventExplorer(request, metadata=key_md(seeded_server))
    assert len(reply.events) == 10 * 6
    assert not reply.next_page_token  # not a full page


def test_the_feed_follows_aliases_and_the_explorer_does_not(
    pug_server: LocalServer,
    send: Send,
    identify_stub: sdk_profiles_pb2_grpc.ProfilesSDKServiceStub,
    channel: grpc.Channel,
) -> None:
    md = key_md(pug_server)
    send(event("anon-7"), event("anon-7"))
    merge = sdk_profiles_pb2.IdentifyRequest(external_id="dora", anonymous_id="anon-7")
    identify_stub.Identify(merge, metadata=md, timeout=10)
    send(event("dora"))
    feed = _stub(channel).GetActivityFeed(
        activity_pb2.GetActivityFeedRequest(distinct_id="anon-7"), metadata=md
    )
    explorer = _stub(channel).GetEventExplorer(
        activity_pb2.GetEventExplorerRequest(distinct_id="anon-7"), metadata=md
    )
    assert len(feed.events) == 3
    assert [e.distinct_id for e in explorer.events] == ["anon-7", "anon-7"]


def test_filter_schema_and_property_values(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
) -> None:
    stub = _stub(seeded_channel)
    md = key_md(seeded_server)
    schema = stub.GetFilterSchema(filter_schema_pb2.GetFilterSchemaRequest(), metadata=md)
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
    assert {"$browser", "$country", "$os"} <= {k.name for k in schema.auto_property_keys}
    assert {k.name for k in schema.profile_property_keys} == {"tier", "age"}
    only_strings = stub.GetFilterSchema(
        filter_schema_pb2.GetFilterSchemaRequest(
            allowed_types=[filter_schema_pb2.PROPERTY_VALUE_TYPE_STRING]
        ),
        metadata=md,
    )
    assert [k.name for k in only_strings.custom_property_keys] == ["plan"]
    values = stub.GetPropertyValues(
        activity_pb2.GetPropertyValuesRequest(
            property_key="plan", source=filter_schema_pb2.PROPERTY_SOURCE_CUSTOM
        ),
        metadata=md,
    )
    assert list(values.values) == ["pro", "free"]
    tiers = insights_pb2_grpc.InsightsServiceStub(seeded_channel).GetPropertyValues(
        insights_pb2.GetPropertyValuesRequest(
            property_key="tier", source=filter_schema_pb2.PROPERTY_SOURCE_PROFILE
        ),
        metadata=md,
    )
    assert list(tiers.values) == ["silver", "gold"]


def test_heatmap_covers_60_days_without_a_range(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
) -> None:
    stub = _stub(seeded_channel)
    md = key_md(seeded_server)
    heatmap = stub.GetActivityHeatmap(
        activity_pb2.GetActivityHeatmapRequest(distinct_id="user-1"), metadata=md
    )
    assert [(d.date, d.count) for d in heatmap.days] == [
        ("2024-03-04", 2),
        ("2024-03-05", 2),
        ("2024-03-06", 2),
    ]
    from_second_day = activity_pb2.GetActivityHeatmapRequest(
        distinct_id="user-1",
        time_range=time_range(T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=70)),
    )
    assert [d.date for d in stub.GetActivityHeatmap(from_second_day, metadata=md).days] == [
        "2024-03-05",
        "2024-03-06",
    ]


def test_heatmap_default_window_ends_now(pug_server: LocalServer, send: Send) -> None:
    now = dt.datetime.now(dt.UTC)
    send(event("eve", when=now - dt.timedelta(days=61)), event("eve", when=now))
    with pug_server.channel() as channel:
        heatmap = _stub(channel).GetActivityHeatmap(
            activity_pb2.GetActivityHeatmapRequest(distinct_id="eve"), metadata=key_md(pug_server)
        )
    assert [d.count for d in heatmap.days] == [1]


def test_profile_stats(seeded_server: LocalServer, seeded_channel: grpc.Channel) -> None:
    stats = _stub(seeded_channel).GetProfileStats(
        activity_pb2.GetProfileStatsRequest(distinct_id="user-1"), metadata=key_md(seeded_server)
    )
    assert stats.stats.total_events == 6
    assert (stats.stats.browser, stats.stats.country) == ("Firefox", "NO")
    assert json_format.MessageToDict(stats.properties) == {"tier": "gold", "age": 1.0}
    assert len(stats.heatmap) == 3


def test_non_numeric_filter_value_is_invalid_not_a_crash(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
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
        _stub(seeded_channel).GetEventExplorer(request, metadata=key_md(seeded_server))
    assert details(caught.value).code == grpc.StatusCode.INVALID_ARGUMENT
