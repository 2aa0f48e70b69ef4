"""``pug.insights``: aggregate queries and segments (``shared.insights.v1.InsightsService``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Unpack

from pug_grpc._rpc.call import CallContext, CallOptions, every_item, unary
from pug_grpc._rpc.convert import TimeRangeLike, build, request
from pug_grpc._rpc.convert import filter_groups as and_filters
from pug_grpc._rpc.transport import method
from pug_grpc.gen.common.v1 import filter_schema_pb2
from pug_grpc.gen.shared.insights.v1 import insights_pb2 as pb

__all__ = ["Insights", "query_request", "segment_request"]

EventQueryLike = pb.EventQuery | Mapping[str, Any]
FilterGroupLike = pb.FilterGroup | Mapping[str, Any]

_SERVICE = pb.DESCRIPTOR.services_by_name["InsightsService"]
_QUERY = method(_SERVICE, "Query", pb.QueryRequest, pb.QueryResponse)
_SEGMENT = method(_SERVICE, "SegmentUsers", pb.SegmentUsersRequest, pb.SegmentUsersResponse)
_SCHEMA = method(
    _SERVICE,
    "GetFilterSchema",
    filter_schema_pb2.GetFilterSchemaRequest,
    filter_schema_pb2.GetFilterSchemaResponse,
)
_VALUES = method(
    _SERVICE, "GetPropertyValues", pb.GetPropertyValuesRequest, pb.GetPropertyValuesResponse
)


def query_request(
    spec: pb.InsightQuerySpec | pb.QueryRequest | Mapping[str, Any],
    /,
    *,
    time_range: TimeRangeLike | None = None,
    granularity: str | int | None = None,
    timezone: str | None = None,
) -> pb.QueryRequest:
    """The request of :meth:`Insights.query` (no I/O)."""
    if isinstance(spec, pb.QueryRequest):
        return request(
            pb.QueryRequest,
            spec,
            time_range=time_range,
            granularity=granularity,
            timezone=timezone,
        )
    return request(
        pb.QueryRequest,
        spec=build(pb.InsightQuerySpec, spec),
        time_range=time_range,
        granularity=granularity,
        timezone=timezone,
        required=("time_range", "granularity"),
    )


def segment_request(
    request_: pb.SegmentUsersRequest | None = None,
    /,
    *,
    time_range: TimeRangeLike | None = None,
    events: Sequence[EventQueryLike] | None = None,
    filters: Sequence[Mapping[str, Any]] | None = None,
    filter_groups: Sequence[FilterGroupLike] | None = None,
    filter_groups_operator: str | int | None = None,
    page_size: int | None = None,
    page_token: str | None = None,
) -> pb.SegmentUsersRequest:
    """The request of :meth:`Insights.segment_users` and its ``_page`` form (no I/O)."""
    return request(
        pb.SegmentUsersRequest,
        request_,
        time_range=time_range,
        events=events,
        filter_groups=and_filters(filters, filter_groups),
        filter_groups_operator=filter_groups_operator,
        page_size=page_size,
        page_token=page_token,
    )


class Insights:
    """Trends, funnels, retention, flows and top-k over the project's events."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx

    def query(
        self,
        spec: pb.InsightQuerySpec | pb.QueryRequest | Mapping[str, Any],
        /,
        *,
        time_range: TimeRangeLike | None = None,
        granularity: str | int | None = None,
        timezone: str | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.QueryResponse:
        """Run one insight: ``spec`` says what (``{"insight_type": "trends", "events": [...]}``),
        ``time_range`` and ``granularity`` (``"day"``…) over which window; ``timezone`` is an IANA
        name for bucketing, which the server replaces with the project's reporting time zone.
        The result is in the response's ``result`` oneof.
        """
        req = query_request(spec, time_range=time_range, granularity=granularity, timezone=timezone)
        return unary(self._ctx, _QUERY, req, options, idempotent=True)

    def segment_users_page(
        self,
        request_: pb.SegmentUsersRequest | None = None,
        /,
        *,
        time_range: TimeRangeLike | None = None,
        events: Sequence[EventQueryLike] | None = None,
        filters: Sequence[Mapping[str, Any]] | None = None,
        filter_groups: Sequence[FilterGroupLike] | None = None,
        filter_groups_operator: str | int | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.SegmentUsersResponse:
        """One page of the distinct ids that did ``events`` in ``time_range``."""
        req = segment_request(
            request_,
            time_range=time_range,
            events=events,
            filters=filters,
            filter_groups=filter_groups,
            filter_groups_operator=filter_groups_operator,
            page_size=page_size,
            page_token=page_token,
        )
        return unary(self._ctx, _SEGMENT, req, options, idempotent=True)

    def segment_users(
        self,
        request_: pb.SegmentUsersRequest | None = None,
        /,
        *,
        time_range: TimeRangeLike | None = None,
        events: Sequence[EventQueryLike] | None = None,
        filters: Sequence[Mapping[str, Any]] | None = None,
        filter_groups: Sequence[FilterGroupLike] | None = None,
        filter_groups_operator: str | int | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> Iterator[str]:
        """Every distinct id in the segment, across pages."""
        base = segment_request(
            request_,
            time_range=time_range,
            events=events,
            filters=filters,
            filter_groups=filter_groups,
            filter_groups_operator=filter_groups_operator,
            page_size=page_size,
            page_token=page_token,
        )
        return every_item(self._ctx, _SEGMENT, base, options, lambda page: page.distinct_ids)

    def filter_schema(
        self,
        request_: filter_schema_pb2.GetFilterSchemaRequest | None = None,
        /,
        *,
        event_kind: str | None = None,
        allowed_types: Sequence[str | int] | None = None,
        **options: Unpack[CallOptions],
    ) -> filter_schema_pb2.GetFilterSchemaResponse:
        """Which event kinds and property keys exist, to build queries from."""
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
