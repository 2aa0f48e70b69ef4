"""``pug.activity``: one user's events and stats (``shared.activity.v1.ActivityService``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Unpack

import grpc

from pug_grpc._rpc.call import CallContext, CallOptions, every_item, unary
from pug_grpc._rpc.convert import TimeRangeLike, request
from pug_grpc.gen.common.v1 import filter_schema_pb2, filters_pb2
from pug_grpc.gen.shared.activity.v1 import activity_pb2 as pb
from pug_grpc.gen.shared.activity.v1 import activity_pb2_grpc as pb_grpc

__all__ = ["Activity"]

PropertyFilterLike = filters_pb2.PropertyFilter | Mapping[str, Any]
EventFilterLike = filters_pb2.EventFilter | Mapping[str, Any]


def _events(
    page: pb.GetActivityFeedResponse | pb.GetEventExplorerResponse,
) -> Iterable[pb.ActivityEvent]:
    return page.events


class Activity:
    """Raw events (a user's feed, or the project-wide explorer) and per-user summaries."""

    __slots__ = ("_ctx", "_stub")

    def __init__(self, channel: grpc.Channel, ctx: CallContext) -> None:
        self._ctx = ctx
        self._stub = pb_grpc.ActivityServiceStub(channel)

    def feed_page(
        self,
        distinct_id: str | pb.GetActivityFeedRequest,
        /,
        *,
        session_id: str | None = None,
        time_range: TimeRangeLike | None = None,
        property_filters: Sequence[PropertyFilterLike] | None = None,
        events: Sequence[EventFilterLike] | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.GetActivityFeedResponse:
        """One page of a user's events, newest first; follow ``next_page_token`` yourself."""
        req = request(
            pb.GetActivityFeedRequest,
            distinct_id,
            first="distinct_id",
            required=("distinct_id",),
            session_id=session_id,
            time_range=time_range,
            property_filters=property_filters,
            events=events,
            page_size=page_size,
            page_token=page_token,
        )
        return unary(self._ctx, self._stub.GetActivityFeed, req, options, idempotent=True)

    def feed(
        self,
        distinct_id: str | pb.GetActivityFeedRequest,
        /,
        *,
        session_id: str | None = None,
        time_range: TimeRangeLike | None = None,
        property_filters: Sequence[PropertyFilterLike] | None = None,
        events: Sequence[EventFilterLike] | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> Iterator[pb.ActivityEvent]:
        """Every event of one user (``distinct_id``), fetching pages as the iteration needs them."""
        base = request(
            pb.GetActivityFeedRequest,
            distinct_id,
            first="distinct_id",
            required=("distinct_id",),
            session_id=session_id,
            time_range=time_range,
            property_filters=property_filters,
            events=events,
            page_size=page_size,
            page_token=page_token,
        )
        return every_item(self._ctx, self._stub.GetActivityFeed, base, options, _events)

    def event_explorer_page(
        self,
        request_: pb.GetEventExplorerRequest | None = None,
        /,
        *,
        distinct_id: str | None = None,
        session_id: str | None = None,
        time_range: TimeRangeLike | None = None,
        property_filters: Sequence[PropertyFilterLike] | None = None,
        events: Sequence[EventFilterLike] | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.GetEventExplorerResponse:
        """One page of project-wide events matching the filters."""
        req = request(
            pb.GetEventExplorerRequest,
            request_,
            distinct_id=distinct_id,
            session_id=session_id,
            time_range=time_range,
            property_filters=property_filters,
            events=events,
            page_size=page_size,
            page_token=page_token,
        )
        return unary(self._ctx, self._stub.GetEventExplorer, req, options, idempotent=True)

    def event_explorer(
        self,
        request_: pb.GetEventExplorerRequest | None = None,
        /,
        *,
        distinct_id: str | None = None,
        session_id: str | None = None,
        time_range: TimeRangeLike | None = None,
        property_filters: Sequence[PropertyFilterLike] | None = None,
        events: Sequence[EventFilterLike] | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> Iterator[pb.ActivityEvent]:
        """Every project-wide event matching the filters, across pages."""
        base = request(
            pb.GetEventExplorerRequest,
            request_,
            distinct_id=distinct_id,
            session_id=session_id,
            time_range=time_range,
            property_filters=property_filters,
            events=events,
            page_size=page_size,
            page_token=page_token,
        )
        return every_item(self._ctx, self._stub.GetEventExplorer, base, options, _events)

    def heatmap(
        self,
        distinct_id: str | pb.GetActivityHeatmapRequest,
        /,
        *,
        time_range: TimeRangeLike | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.GetActivityHeatmapResponse:
        """Events per day for one user."""
        req = request(
            pb.GetActivityHeatmapRequest,
            distinct_id,
            first="distinct_id",
            required=("distinct_id",),
            time_range=time_range,
        )
        return unary(self._ctx, self._stub.GetActivityHeatmap, req, options, idempotent=True)

    def profile_stats(
        self, distinct_id: str | pb.GetProfileStatsRequest, /, **options: Unpack[CallOptions]
    ) -> pb.GetProfileStatsResponse:
        """First/last seen, totals, device and place of one user."""
        req = request(
            pb.GetProfileStatsRequest, distinct_id, first="distinct_id", required=("distinct_id",)
        )
        return unary(self._ctx, self._stub.GetProfileStats, req, options, idempotent=True)

    def filter_schema(
        self,
        request_: filter_schema_pb2.GetFilterSchemaRequest | None = None,
        /,
        *,
        event_kind: str | None = None,
        allowed_types: Sequence[str | int] | None = None,
        **options: Unpack[CallOptions],
    ) -> filter_schema_pb2.GetFilterSchemaResponse:
        """Which event kinds and property keys exist, to build filters from."""
        req = request(
            filter_schema_pb2.GetFilterSchemaRequest,
            request_,
            event_kind=event_kind,
            allowed_types=allowed_types,
        )
        return unary(self._ctx, self._stub.GetFilterSchema, req, options, idempotent=True)

    def property_values(
        self,
        property_key: str | pb.GetPropertyValuesRequest,
        /,
        *,
        source: str | int | None = None,
        event_kind: str | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.GetPropertyValuesResponse:
        """Values seen for one property (``source``: ``"auto"``, ``"custom"`` or ``"profile"``)."""
        req = request(
            pb.GetPropertyValuesRequest,
            property_key,
            first="property_key",
            required=("property_key", "source"),
            source=source,
            event_kind=event_kind,
        )
        return unary(self._ctx, self._stub.GetPropertyValues, req, options, idempotent=True)
