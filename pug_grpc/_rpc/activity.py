"""``pug.activity``: one user's events and stats (``shared.activity.v1.ActivityService``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Unpack

from pug_grpc._rpc.call import CallContext, CallOptions, every_item, unary
from pug_grpc._rpc.convert import TimeRangeLike, request
from pug_grpc._rpc.transport import method
from pug_grpc.gen.common.v1 import filter_schema_pb2, filters_pb2
from pug_grpc.gen.shared.activity.v1 import activity_pb2 as pb

__all__ = ["Activity", "explorer_request", "feed_request"]

PropertyFilterLike = filters_pb2.PropertyFilter | Mapping[str, Any]
EventFilterLike = filters_pb2.EventFilter | Mapping[str, Any]

_SERVICE = pb.DESCRIPTOR.services_by_name["ActivityService"]
_FEED = method(_SERVICE, "GetActivityFeed", pb.GetActivityFeedRequest, pb.GetActivityFeedResponse)
_EXPLORER = method(
    _SERVICE, "GetEventExplorer", pb.GetEventExplorerRequest, pb.GetEventExplorerResponse
)
_HEATMAP = method(
    _SERVICE, "GetActivityHeatmap", pb.GetActivityHeatmapRequest, pb.GetActivityHeatmapResponse
)
_STATS = method(_SERVICE, "GetProfileStats", pb.GetProfileStatsRequest, pb.GetProfileStatsResponse)
_SCHEMA = method(
    _SERVICE,
    "GetFilterSchema",
    filter_schema_pb2.GetFilterSchemaRequest,
    filter_schema_pb2.GetFilterSchemaResponse,
)
_VALUES = method(
    _SERVICE, "GetPropertyValues", pb.GetPropertyValuesRequest, pb.GetPropertyValuesResponse
)


def feed_request(
    distinct_id: str | pb.GetActivityFeedRequest,
    /,
    *,
    session_id: str | None = None,
    time_range: TimeRangeLike | None = None,
    property_filters: Sequence[PropertyFilterLike] | None = None,
    events: Sequence[EventFilterLike] | None = None,
    page_size: int | None = None,
    page_token: str | None = None,
) -> pb.GetActivityFeedRequest:
    """The request of :meth:`Activity.feed` and :meth:`Activity.feed_page` (no I/O)."""
    return request(
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


def explorer_request(
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
) -> pb.GetEventExplorerRequest:
    """The request of :meth:`Activity.event_explorer` and its ``_page`` form (no I/O)."""
    return request(
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


def _events(
    page: pb.GetActivityFeedResponse | pb.GetEventExplorerResponse,
) -> Iterable[pb.ActivityEvent]:
    return page.events


class Activity:
    """Raw events (a user's feed, or the project-wide explorer) and per-user summaries."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx

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
        req = feed_request(
            distinct_id,
            session_id=session_id,
            time_range=time_range,
            property_filters=property_filters,
            events=events,
            page_size=page_size,
            page_token=page_token,
        )
        return unary(self._ctx, _FEED, req, options, idempotent=True)

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
        base = feed_request(
            distinct_id,
            session_id=session_id,
            time_range=time_range,
            property_filters=property_filters,
            events=events,
            page_size=page_size,
            page_token=page_token,
        )
        return every_item(self._ctx, _FEED, base, options, _events)

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
        req = explorer_request(
            request_,
            distinct_id=distinct_id,
            session_id=session_id,
            time_range=time_range,
            property_filters=property_filters,
            events=events,
            page_size=page_size,
            page_token=page_token,
        )
        return unary(self._ctx, _EXPLORER, req, options, idempotent=True)

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
        base = explorer_request(
            request_,
            distinct_id=distinct_id,
            session_id=session_id,
            time_range=time_range,
            property_filters=property_filters,
            events=events,
            page_size=page_size,
            page_token=page_token,
        )
        return every_item(self._ctx, _EXPLORER, base, options, _events)

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
        return unary(self._ctx, _HEATMAP, req, options, idempotent=True)

    def profile_stats(
        self, distinct_id: str | pb.GetProfileStatsRequest, /, **options: Unpack[CallOptions]
    ) -> pb.GetProfileStatsResponse:
        """First/last seen, totals, device and place of one user."""
        req = request(
            pb.GetProfileStatsRequest, distinct_id, first="distinct_id", required=("distinct_id",)
        )
        return unary(self._ctx, _STATS, req, options, idempotent=True)

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
        return unary(self._ctx, _SCHEMA, req, options, idempotent=True)

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
        return unary(self._ctx, _VALUES, req, options, idempotent=True)
