"""Plain Python arguments to request messages: enums, time ranges, dicts, structs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.struct_pb2 import Struct
from hypothesis import given
from hypothesis import strategies as st
from pug_grpc.gen.common.v1 import filter_schema_pb2, filters_pb2, time_pb2
from pug_grpc.gen.dashboard.dashboards.v1 import dashboards_pb2
from pug_grpc.gen.dashboard.orgs.v1 import orgs_pb2
from pug_grpc.gen.public.auth.v1 import auth_pb2
from pug_grpc.gen.shared.insights.v1 import insights_pb2

from pug_grpc import PugInvalidArgumentError, struct_to_dict
from pug_grpc._rpc.convert import build, enum_value, request, time_range, to_timestamp

ENUMS: list[EnumDescriptor] = [
    insights_pb2.Granularity.DESCRIPTOR,
    insights_pb2.InsightType.DESCRIPTOR,
    insights_pb2.AggregationType.DESCRIPTOR,
    insights_pb2.TopKQuery.Dimension.DESCRIPTOR,
    insights_pb2.UserFlowQuery.NodeKind.DESCRIPTOR,
    filters_pb2.FilterOperator.DESCRIPTOR,
    filter_schema_pb2.PropertySource.DESCRIPTOR,
    time_pb2.TimeRangePreset.DESCRIPTOR,
    orgs_pb2.OrgRole.DESCRIPTOR,
    auth_pb2.OAuthProvider.DESCRIPTOR,
    dashboards_pb2.ThresholdRule.Tone.DESCRIPTOR,
]


def _prefix(enum: EnumDescriptor) -> str:
    unspecified = next(v.name for v in enum.values if v.name.endswith("_UNSPECIFIED"))
    return unspecified.removesuffix("UNSPECIFIED")


@given(data=st.data())
def test_enum_short_and_full_names_in_any_case(data: st.DataObject) -> None:
    enum = data.draw(st.sampled_from(ENUMS))
    value = data.draw(st.sampled_from([v for v in enum.values if v.number != 0]))
    short = value.name.removeprefix(_prefix(enum))
    spelling = data.draw(
        st.sampled_from([short, short.lower(), short.lower().replace("_", "-"), value.name])
    )
    assert enum_value(enum, spelling) == value.number
    assert enum_value(enum, value.number) == value.number


def test_enum_errors_list_the_known_names() -> None:
    with pytest.raises(PugInvalidArgumentError, match="expected one of: minute, hour, day"):
        enum_value(insights_pb2.Granularity.DESCRIPTOR, "fortnight")
    with pytest.raises(PugInvalidArgumentError, match="not a bool"):
        enum_value(insights_pb2.Granularity.DESCRIPTOR, True)
    with pytest.raises(PugInvalidArgumentError, match="not float"):
        enum_value(insights_pb2.Granularity.DESCRIPTOR, 1.0)


aware = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
)


@given(a=aware, b=aware)
def test_time_range_pairs(a: datetime, b: datetime) -> None:
    if a >= b:  # aware datetimes compare as instants
        with pytest.raises(PugInvalidArgumentError, match="strictly before"):
            time_range((a, b))
        return
    tr = time_range((a, b))
    assert getattr(tr, "from").ToDatetime(UTC) == a
    assert tr.to.ToDatetime(UTC) == b


def test_time_range_other_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    monkeypatch.setattr("pug_grpc._rpc.convert._now", lambda: now)
    tr = time_range(timedelta(days=7))
    assert getattr(tr, "from").ToDatetime(UTC) == now - timedelta(days=7)
    assert tr.to.ToDatetime(UTC) == now
    tr2 = time_range({"from": "2026-01-01T00:00:00Z", "to": now})
    assert getattr(tr2, "from").ToDatetime(UTC) == datetime(2026, 1, 1, tzinfo=UTC)
    assert time_range(tr2) is tr2
    with pytest.raises(PugInvalidArgumentError, match="positive"):
        time_range(timedelta(0))
    naive = time_range((datetime(2026, 1, 1), now))  # naive means UTC, as everywhere
    assert getattr(naive, "from").ToDatetime(UTC) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(PugInvalidArgumentError, match="unexpected keys"):
        time_range({"since": now})
    with pytest.raises(PugInvalidArgumentError, match="expected"):
        time_range("last week")
    with pytest.raises(PugInvalidArgumentError, match="not RFC 3339 text or epoch seconds"):
        to_timestamp("yesterday")
    with pytest.raises(PugInvalidArgumentError, match="looks like milliseconds"):
        to_timestamp(1_714_557_600_000)
    assert to_timestamp(1_714_557_600).ToDatetime(UTC) == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_build_nested_dicts_maps_and_well_known_types() -> None:
    tile = build(
        dashboards_pb2.DashboardTileInput,
        {
            "id": "t",
            "insight": {
                "spec": {
                    "insight_type": "funnel",
                    "events": [{"event": {"kind": "a"}}, {"event": {"kind": "b"}}],
                    "conversion_window": 90,
                    "top_k": None,  # None leaves a field unset
                }
            },
            "header": {"accentColor": "blue"},  # JSON names work too
        },
    )
    spec = tile.insight.spec
    assert spec.insight_type == insights_pb2.INSIGHT_TYPE_FUNNEL
    assert [e.event.kind for e in spec.events] == ["a", "b"]
    assert spec.conversion_window.seconds == 90
    assert not spec.HasField("top_k")
    assert tile.header.accent_color == "blue"
    series = build(insights_pb2.TrendSeries, {"breakdown": {"country": "NL"}})
    assert dict(series.breakdown) == {"country": "NL"}
    point = build(insights_pb2.StepTiming, {"avg": "1.5s", "median": timedelta(seconds=2)})
    assert (point.avg.seconds, point.avg.nanos, point.median.seconds) == (1, 500_000_000, 2)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"nope": 1}, "has no field 'nope'"),
        ({"breakdowns": "country"}, "expected a list"),
        ({"breakdown_limit": "ten"}, "breakdown_limit"),
        ({"events": [{"event": 3}]}, "expected a common.v1.EventFilter or a dict"),
        ({"conversion_window": object()}, "expected a timedelta or seconds"),
        ({"events": [insights_pb2.Breakdown()]}, "expected shared.insights.v1.EventQuery"),
    ],
)
def test_build_refuses_bad_shapes(value: dict[str, object], message: str) -> None:
    with pytest.raises(PugInvalidArgumentError, match=message) as caught:
        build(insights_pb2.InsightQuerySpec, value)
    assert caught.value.is_client_side


def test_request_helper_rules() -> None:
    msg = orgs_pb2.GetRequest(org_id="o")
    assert request(orgs_pb2.GetRequest, msg) is msg
    with pytest.raises(PugInvalidArgumentError, match="not both"):
        request(orgs_pb2.RemoveMemberRequest, orgs_pb2.RemoveMemberRequest(), customer_id="c")
    with pytest.raises(PugInvalidArgumentError, match="missing required customer_id"):
        request(
            orgs_pb2.RemoveMemberRequest, "o", first="org_id", required=("org_id", "customer_id")
        )
    with pytest.raises(PugInvalidArgumentError, match=r"expected dashboard\.orgs\.v1\.GetRequest"):
        request(orgs_pb2.GetRequest, 42)


@given(
    st.dictionaries(
        st.text(max_size=10),
        st.one_of(st.none(), st.booleans(), st.text(max_size=10), st.integers(-1000, 1000)),
        max_size=8,
    )
)
def test_struct_round_trip(values: dict[str, object]) -> None:
    struct = Struct()
    struct.update(values)
    expected = {
        k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in values.items()
    }
    assert struct_to_dict(struct) == expected
    assert struct_to_dict(None) == {}
