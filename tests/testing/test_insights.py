"""``InsightsService`` on the local server: trends in the project's time zone."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from pug_grpc.gen.common.v1 import filters_pb2
from pug_grpc.gen.shared.insights.v1 import insights_pb2, insights_pb2_grpc

from pug_grpc.testing import LocalServer, ServerConfig
from tests.support.server import details, key_md
from tests.testing.conftest import T0, seed, time_range

pytestmark = pytest.mark.timeout(60)

MIDNIGHT = T0.replace(hour=0)


def _query(
    server: LocalServer, channel: grpc.Channel, request: insights_pb2.QueryRequest
) -> insights_pb2.QueryResponse:
    return insights_pb2_grpc.InsightsServiceStub(channel).Query(request, metadata=key_md(server))


def _daily(spec: insights_pb2.InsightQuerySpec) -> insights_pb2.QueryRequest:
    return insights_pb2.QueryRequest(
        spec=spec,
        time_range=time_range(MIDNIGHT, MIDNIGHT + dt.timedelta(days=3)),
        granularity=insights_pb2.GRANULARITY_DAY,
    )


TRENDS = insights_pb2.InsightQuerySpec(insight_type=insights_pb2.INSIGHT_TYPE_TRENDS)


def test_trends_count_per_kind_per_bucket(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
) -> None:
    reply = _query(seeded_server, seeded_channel, _daily(TRENDS))
    series = {s.event_kind: [p.value for p in s.points] for s in reply.trends.series}
    assert series == {
        "page_view": [60.0, 0.0, 0.0],
        "purchase": [0.0, 0.0, 60.0],
        "signup": [0.0, 60.0, 0.0],
    }
    assert reply.trends.series[0].points[0].time.ToDatetime(tzinfo=dt.UTC) == MIDNIGHT


def test_trends_aggregations_and_breakdowns(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
) -> None:
    unique_by_plan = insights_pb2.InsightQuerySpec(
        insight_type=insights_pb2.INSIGHT_TYPE_TRENDS,
        events=[
            insights_pb2.EventQuery(
                event=filters_pb2.EventFilter(kind="purchase"),
                aggregation=insights_pb2.AGGREGATION_TYPE_UNIQUE_USERS,
            )
        ],
        breakdowns=[insights_pb2.Breakdown(property="plan")],
    )
    reply = _query(seeded_server, seeded_channel, _daily(unique_by_plan))
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
    points = _query(seeded_server, seeded_channel, _daily(total)).trends.series[0].points
    assert points[2].value == 2 * sum(range(30))


def _hourly(timezone: str) -> insights_pb2.QueryRequest:
    return insights_pb2.QueryRequest(
        spec=TRENDS,
        time_range=time_range(T0, T0 + dt.timedelta(hours=3)),
        granularity=insights_pb2.GRANULARITY_HOUR,
        timezone=timezone,
    )


def test_buckets_follow_the_projects_time_zone_not_the_querys() -> None:
    config = ServerConfig(reporting_timezone="Asia/Kolkata")  # +05:30: buckets at half past
    with LocalServer(config) as server, server.channel() as channel:
        seed(server)
        for asked in ("", "UTC", "America/New_York"):
            points = _query(server, channel, _hourly(asked)).trends.series[0].points
            assert points[0].time.ToDatetime(tzinfo=dt.UTC) == T0 - dt.timedelta(minutes=30)
            assert [p.value for p in points] == [30.0, 0.0, 0.0, 0.0]


def test_a_utc_project_ignores_the_querys_time_zone(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
) -> None:
    points = _query(seeded_server, seeded_channel, _hourly("Asia/Kolkata")).trends.series[0].points
    assert points[0].time.ToDatetime(tzinfo=dt.UTC) == T0
    assert [p.value for p in points] == [30.0, 0.0, 0.0]


def test_an_unknown_reporting_time_zone_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        LocalServer(ServerConfig(reporting_timezone="Mars/Olympus"))


def test_other_insight_types_are_unimplemented_with_a_clear_message(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
) -> None:
    funnel = insights_pb2.InsightQuerySpec(
        insight_type=insights_pb2.INSIGHT_TYPE_FUNNEL,
        events=[insights_pb2.EventQuery(event=filters_pb2.EventFilter(kind="signup"))],
    )
    with pytest.raises(grpc.RpcError) as caught:
        _query(seeded_server, seeded_channel, _daily(funnel))
    found = details(caught.value)
    assert (found.code, found.reason) == (grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED")
    assert "INSIGHT_TYPE_FUNNEL" in found.message


def test_insights_rules_naming_enums_are_enforced(
    seeded_server: LocalServer, seeded_channel: grpc.Channel
) -> None:
    # protovalidate alone raises EvaluationError on these rules; the server still applies them.
    funnel = insights_pb2.InsightQuerySpec(insight_type=insights_pb2.INSIGHT_TYPE_FUNNEL)
    with pytest.raises(grpc.RpcError) as caught:
        _query(seeded_server, seeded_channel, _daily(funnel))
    found = details(caught.value)
    assert found.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any("require at least one event" in text for _, text in found.violations)
    minute = insights_pb2.QueryRequest(
        spec=TRENDS,
        time_range=time_range(T0, T0 + dt.timedelta(days=1)),
        granularity=insights_pb2.GRANULARITY_MINUTE,
    )
    with pytest.raises(grpc.RpcError) as caught:
        _query(seeded_server, seeded_channel, minute)
    assert "at most 6 hours" in details(caught.value).message
