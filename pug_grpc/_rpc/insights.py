"""``pug.insights``: aggregate queries and segments (``shared.insights.v1.InsightsService``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Unpack

import grpc

from pug_grpc._rpc.call import CallContext, CallOptions, every_item, unary
from pug_grpc._rpc.convert import TimeRangeLike, build, request
from pug_grpc.gen.common.v1 import filter_schema_pb2
from pug_grpc.gen.shared.insights.v1 import insights_pb2 as pb
from pug_grpc.gen.shared.insights.v1 import insights_pb2_grpc as pb_grpc

__all__ = ["Insights"]

EventQueryLike = pb.EventQuery | Mapping[str, Any]
FilterGroupLike = pb.FilterGroup | Mapping[str, Any]


def _groups(
    filters: Sequence[Mapping[str, Any]] | None,
    filter_groups: Sequence[FilterGroupLike] | None,
) -> Sequence[FilterGroupLike] | None:
    if filters is None:
        return filter_groups
    return [*(filter_groups or ()), {"filters": list(filters), "operator": "and"}]


class Insights:
    """Trends, funnels, retention, flows and top-k over the project's events."""

    __slots__ = ("_ctx", "_stub")

    def __init__(self, channel: grpc.Channel, ctx: CallContext) -> None:
        self._ctx = ctx
        self._stub = pb_grpc.InsightsServiceStub(channel)

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
        name for bucketing. The result is in the response's ``result`` oneof.
        """
        if isinstance(spec, pb.QueryRequest):
            req = request(
                pb.QueryRequest,
                spec,
                time_range=time_range,
                granularity=granularity,
                timezone=timezone,
            )
        else:
            req = request(
                pb.QueryRequest,
                spec=build(pb.InsightQuerySpec, spec),
                time_range=time_range,
                granularity=granularity,
                timezone=timezone,
                required=("time_range", "granularity"),
            )
        return unary(self._ctx, self._stub.Query, req, options, idempotent=True)

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
        req = request(
            pb.SegmentUsersRequest,
            request_,
            time_range=time_range,
            events=events,
            filter_groups=_groups(filters, filter_groups),
            filter_groups_operator=filter_groups_operator,
            page_size=page_size,
            page_token=page_token,
        )
        return unary(self._ctx, self._stub.SegmentUsers, req, options, idempotent=True)

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
        base = request(
            pb.SegmentUsersRequest,
            request_,
            time_range=time_range,
            events=events,
            filter_groups=_groups(filters, filter_groups),
            filter_groups_operator=filter_groups_operator,
            page_size=page_size,
            page_token=page_token,
        )
        return every_item(
            self._ctx, self._stub.SegmentUsers, base, options, lambda page: page.distinct_ids
        )

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
