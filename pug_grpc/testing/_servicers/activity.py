"""``ActivityService``: the activity feed, the event explorer, heatmaps and profile stats.

Feed and explorer pages hold ``page_size`` events (0 = 100, at most 1,000), newest first; as in
Pug a token comes with every full page, so the last page may be empty. The feed follows aliases
(an anonymous id shows the events of the profile it was merged into); the explorer matches the
``distinct_id`` the events were sent with. A heatmap without a time range covers 60 days.
"""

from __future__ import annotations

from typing import Any

import grpc

from pug_grpc.gen.common.v1 import filter_schema_pb2
from pug_grpc.gen.shared.activity.v1 import activity_pb2, activity_pb2_grpc
from pug_grpc.testing._call_context import current_call
from pug_grpc.testing._filters import event_lookup, matches_all
from pug_grpc.testing._paging import event_cursor, event_token
from pug_grpc.testing._rows import EventRow
from pug_grpc.testing._servicers.filter_schema import filter_schema, property_values
from pug_grpc.testing._servicers.state import ServerState
from pug_grpc.testing._status import not_found
from pug_grpc.testing._wire_values import device_and_place, from_us, struct_from, to_us

__all__ = ["ActivityServicer", "time_range_us"]

_DEFAULT_PAGE_SIZE = 100
_HEATMAP_DAYS = 60
_DAY_US = 86_400 * 1_000_000


def time_range_us(request: Any, name: str = "time_range") -> tuple[int | None, int | None]:
    """The request's time range as microseconds; (None, None) when it has none."""
    if not request.HasField(name):
        return None, None
    time_range = getattr(request, name)
    return to_us(getattr(time_range, "from")), to_us(time_range.to)


def _activity_event(row: EventRow) -> activity_pb2.ActivityEvent:
    return activity_pb2.ActivityEvent(
        event_id=row.event_id,
        kind=row.kind,
        distinct_id=row.distinct_id,
        occur_time=from_us(row.occur_us),
        session_id=row.session_id,
        auto_properties=struct_from(row.auto_props, typed=True),
        custom_properties=struct_from(row.custom_props, typed=True),
    )


def _filters_hold(row: EventRow, request: Any) -> bool:
    if not matches_all(request.property_filters, event_lookup(row)):
        return False
    if not request.events:
        return True
    return any(
        (not f.kind or f.kind == row.kind) and matches_all(f.filters, event_lookup(row))
        for f in request.events
    )


class ActivityServicer(activity_pb2_grpc.ActivityServiceServicer):
    """Event reads of one project."""

    def __init__(self, state: ServerState) -> None:
        self._s = state

    def _page(
        self, request: Any, *, profile_key: str | None = None, distinct_id: str | None = None
    ) -> tuple[list[EventRow], str]:
        project = current_call().caller.project_id
        start, end = time_range_us(request)
        only_kind = request.events[0].kind if len(request.events) == 1 else ""
        size = request.page_size or _DEFAULT_PAGE_SIZE
        filtered = bool(request.property_filters or request.events)
        page: list[EventRow] = []
        for row in self._s.store.events(
            project,
            session_id=request.session_id or None,
            kind=only_kind or None,
            start_us=start,
            end_us=end,
            after=event_cursor(request.page_token),
            profile_key=profile_key,
            distinct_id=distinct_id,
        ):
            if filtered and not _filters_hold(row, request):
                continue
            page.append(row)
            if len(page) == size:
                return page, event_token(row.occur_us, row.seq)
        return page, ""

    def GetActivityFeed(
        self, request: activity_pb2.GetActivityFeedRequest, context: grpc.ServicerContext
    ) -> activity_pb2.GetActivityFeedResponse:
        """One page of a person's events, aliases followed."""
        key = self._s.resolve(current_call().caller.project_id, request.distinct_id)
        rows, token = self._page(request, profile_key=key)
        return activity_pb2.GetActivityFeedResponse(
            events=[_activity_event(r) for r in rows], next_page_token=token
        )

    def GetEventExplorer(
        self, request: activity_pb2.GetEventExplorerRequest, context: grpc.ServicerContext
    ) -> activity_pb2.GetEventExplorerResponse:
        """One page of the project's events, optionally of one distinct id (no aliasing)."""
        rows, token = self._page(request, distinct_id=request.distinct_id or None)
        return activity_pb2.GetEventExplorerResponse(
            events=[_activity_event(r) for r in rows], next_page_token=token
        )

    def GetFilterSchema(
        self, request: filter_schema_pb2.GetFilterSchemaRequest, context: grpc.ServicerContext
    ) -> filter_schema_pb2.GetFilterSchemaResponse:
        """What can be filtered on."""
        return filter_schema(self._s.store, request)

    def GetPropertyValues(
        self, request: activity_pb2.GetPropertyValuesRequest, context: grpc.ServicerContext
    ) -> activity_pb2.GetPropertyValuesResponse:
        """The most frequent values of one property."""
        values = property_values(self._s.store, request)
        return activity_pb2.GetPropertyValuesResponse(values=values)

    def GetActivityHeatmap(
        self, request: activity_pb2.GetActivityHeatmapRequest, context: grpc.ServicerContext
    ) -> activity_pb2.GetActivityHeatmapResponse:
        """Events per UTC day of one person (the last 60 days without a time range)."""
        project = current_call().caller.project_id
        start, end = time_range_us(request)
        if start is None or end is None:
            end = self._s.now_us()
            start = end - _HEATMAP_DAYS * _DAY_US
        key = self._s.resolve(project, request.distinct_id)
        days = self._s.store.heatmap(project, key, start, end)
        return activity_pb2.GetActivityHeatmapResponse(
            days=[activity_pb2.HeatmapDay(date=d, count=c) for d, c in days]
        )

    def GetProfileStats(
        self, request: activity_pb2.GetProfileStatsRequest, context: grpc.ServicerContext
    ) -> activity_pb2.GetProfileStatsResponse:
        """A person's totals, latest device and place, traits and daily heatmap."""
        project = current_call().caller.project_id
        key = self._s.resolve(project, request.distinct_id)
        summary = self._s.store.activity(project, [key]).get(key)
        profile = self._s.store.profile(project, external_id=key)
        if summary is None and profile is None:
            raise not_found(f"profile {request.distinct_id!r}")
        reply = activity_pb2.GetProfileStatsResponse(
            properties=struct_from(profile.properties if profile else {})
        )
        if summary is not None:
            reply.stats.CopyFrom(
                activity_pb2.ProfileStats(
                    first_seen=from_us(summary.first_us),
                    last_seen=from_us(summary.last_us),
                    total_events=summary.total,
                    **device_and_place(summary.latest_auto),
                )
            )
        for day, count in self._s.store.heatmap(project, key, None, None):
            reply.heatmap.add(date=day, count=count)
        return reply
