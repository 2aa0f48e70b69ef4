"""Trends insights: event counts (or another aggregation) per kind per time bucket.

Buckets follow the project's reporting time zone, as in Pug (a query's own ``timezone`` is
ignored).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

import grpc

from pug_grpc.gen.common.v1 import filters_pb2
from pug_grpc.gen.shared.insights.v1 import insights_pb2
from pug_grpc.testing._filters import event_lookup, matches_all, matches_groups
from pug_grpc.testing._rows import EventRow, as_text
from pug_grpc.testing._status import ServerError
from pug_grpc.testing._store import Store
from pug_grpc.testing._wire_values import from_us, to_us

__all__ = ["bucket_starts", "trends"]

_G = insights_pb2.Granularity
_A = insights_pb2.AggregationType
_NONE = "(none)"
_DEFAULT_BREAKDOWN_LIMIT = 25


def _floor(moment: dt.datetime, granularity: int) -> dt.datetime:
    if granularity == _G.GRANULARITY_MINUTE:
        return moment.replace(second=0, microsecond=0)
    if granularity == _G.GRANULARITY_HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == _G.GRANULARITY_DAY:
        return day
    if granularity == _G.GRANULARITY_WEEK:
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def _next(start: dt.datetime, granularity: int) -> dt.datetime:
    wall = start.replace(tzinfo=None)
    if granularity == _G.GRANULARITY_MINUTE:
        wall += dt.timedelta(minutes=1)
    elif granularity == _G.GRANULARITY_HOUR:
        wall += dt.timedelta(hours=1)
    elif granularity == _G.GRANULARITY_DAY:
        wall += dt.timedelta(days=1)
    elif granularity == _G.GRANULARITY_WEEK:
        wall += dt.timedelta(weeks=1)
    else:
        wall = wall.replace(year=wall.year + wall.month // 12, month=wall.month % 12 + 1)
    return wall.replace(tzinfo=start.tzinfo)


def bucket_starts(start_us: int, end_us: int, granularity: int, zone: dt.tzinfo) -> list[int]:
    """Bucket start times (µs) covering ``[start, end)`` in the given time zone."""
    moment = _floor(dt.datetime.fromtimestamp(start_us / 1e6, zone), granularity)
    starts: list[int] = []
    while True:
        us = int(moment.timestamp() * 1_000_000)
        if us >= end_us:
            return starts
        starts.append(us)
        moment = _next(moment, granularity)


def _numeric(row: EventRow, prop: str) -> float | None:
    value = (row.auto_props if prop.startswith("$") else row.custom_props).get(prop)
    if value is None or value[0] not in ("i", "d"):
        return None
    return float(value[1])


def _aggregate(rows: list[EventRow], aggregation: int, prop: str) -> float:
    if aggregation in (_A.AGGREGATION_TYPE_UNSPECIFIED, _A.AGGREGATION_TYPE_TOTAL):
        return float(len(rows))
    if aggregation == _A.AGGREGATION_TYPE_UNIQUE_USERS:
        return float(len({r.profile_key for r in rows}))
    if aggregation == _A.AGGREGATION_TYPE_PER_USER_AVG:
        users = len({r.profile_key for r in rows})
        return len(rows) / users if users else 0.0
    numbers = [n for n in (_numeric(r, prop) for r in rows) if n is not None]
    if not numbers:
        return 0.0
    if aggregation == _A.AGGREGATION_TYPE_SUM:
        return sum(numbers)
    if aggregation == _A.AGGREGATION_TYPE_AVG:
        return sum(numbers) / len(numbers)
    if aggregation == _A.AGGREGATION_TYPE_MIN:
        return min(numbers)
    return max(numbers)


def _breakdown_key(row: EventRow, properties: list[str]) -> tuple[str, ...]:
    key: list[str] = []
    for prop in properties:
        value = (row.auto_props if prop.startswith("$") else row.custom_props).get(prop)
        key.append(_NONE if value is None else as_text(value))
    return tuple(key)


def trends(
    store: Store, project_id: str, request: insights_pb2.QueryRequest, zone: dt.tzinfo
) -> insights_pb2.QueryResponse:
    """Answer a trends query over the project's stored events, bucketed in ``zone``."""
    spec = request.spec
    if spec.insight_type != insights_pb2.INSIGHT_TYPE_TRENDS:
        name = insights_pb2.InsightType.Name(spec.insight_type)
        raise ServerError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"the local Pug server computes only INSIGHT_TYPE_TRENDS insights; {name} is not"
            " implemented here",
            "UNIMPLEMENTED",
        )
    if spec.HasField("session"):
        raise ServerError(
            grpc.StatusCode.UNIMPLEMENTED,
            "session metrics are not implemented by the local Pug server",
            "UNIMPLEMENTED",
        )
    start_us = to_us(getattr(request.time_range, "from"))
    end_us = to_us(request.time_range.to)
    starts = bucket_starts(start_us, end_us, request.granularity, zone)
    rows = [
        row
        for row in store.events(
            project_id,
            start_us=starts[0] if starts else start_us,
            end_us=end_us,
            newest_first=False,
        )
        if row.occur_us >= start_us
        and (spec.include_cookieless or not row.distinct_id.startswith("cookieless-"))
        and matches_groups(spec.filter_groups, spec.filter_groups_operator, event_lookup(row))
    ]
    queries: list[insights_pb2.EventQuery] = list(spec.events)
    if not queries:
        kinds = sorted({row.kind for row in rows})
        queries = [
            insights_pb2.EventQuery(event=filters_pb2.EventFilter(kind=kind)) for kind in kinds
        ]
    breakdowns = [b.property for b in spec.breakdowns]
    limit = spec.breakdown_limit or _DEFAULT_BREAKDOWN_LIMIT
    result = insights_pb2.TrendsResult()
    for query in queries:
        selected = [
            row
            for row in rows
            if (not query.event.kind or row.kind == query.event.kind)
            and matches_all(query.event.filters, event_lookup(row))
        ]
        groups: dict[tuple[str, ...], list[EventRow]] = defaultdict(list)
        for row in selected:
            groups[_breakdown_key(row, breakdowns)].append(row)
        if not breakdowns:
            groups.setdefault((), [])
        ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))[:limit]
        for key, members in ranked:
            series = result.series.add(event_kind=query.event.kind)
            series.breakdown.update(dict(zip(breakdowns, key, strict=True)))
            for point_start, bucket in _buckets(members, starts, end_us):
                series.points.add(
                    time=from_us(point_start),
                    value=_aggregate(bucket, query.aggregation, query.aggregation_property),
                )
    return insights_pb2.QueryResponse(trends=result)


def _buckets(
    rows: Iterable[EventRow], starts: list[int], end_us: int
) -> list[tuple[int, list[EventRow]]]:
    buckets: list[tuple[int, list[EventRow]]] = [(s, []) for s in starts]
    if not buckets:
        return buckets
    index = 0
    for row in sorted(rows, key=lambda r: r.occur_us):
        if row.occur_us >= end_us:
            break
        while index + 1 < len(starts) and row.occur_us >= starts[index + 1]:
            index += 1
        buckets[index][1].append(row)
    return buckets
