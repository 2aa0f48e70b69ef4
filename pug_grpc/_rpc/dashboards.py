"""Dashboards: ``admin.dashboards`` (project-scoped, JWT) and ``admin.shared_dashboards`` (public).

A dashboard is a list of tiles, each an insight spec or Markdown; ``query`` renders every tile
server-side. A dashboard made public gets a ``share_id`` that anyone can render without a
credential through ``shared_dashboards.query``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

import grpc

from pug_grpc._rpc.call import CallContext, CallOptions, unary
from pug_grpc._rpc.convert import TimeRangeLike, request
from pug_grpc.gen.dashboard.dashboards.v1 import dashboards_pb2 as pb
from pug_grpc.gen.dashboard.dashboards.v1 import dashboards_pb2_grpc as pb_grpc
from pug_grpc.gen.public.dashboards.v1 import dashboards_pb2 as public_pb
from pug_grpc.gen.public.dashboards.v1 import dashboards_pb2_grpc as public_grpc

__all__ = ["Dashboards", "SharedDashboards"]

TileLike = pb.DashboardTileInput | Mapping[str, Any]


class Dashboards:
    """The current project's dashboards (``x-project-id``)."""

    __slots__ = ("_ctx", "_stub")

    def __init__(self, channel: grpc.Channel, ctx: CallContext) -> None:
        self._ctx = ctx
        self._stub = pb_grpc.DashboardsServiceStub(channel)

    def list(
        self,
        request_: pb.DashboardsServiceListRequest | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.DashboardsServiceListResponse:
        req = request(pb.DashboardsServiceListRequest, request_)
        return unary(self._ctx, self._stub.List, req, options, idempotent=True)

    def get(
        self, id: str | pb.DashboardsServiceGetRequest, /, **options: Unpack[CallOptions]
    ) -> pb.DashboardsServiceGetResponse:
        req = request(pb.DashboardsServiceGetRequest, id, first="id", required=("id",))
        return unary(self._ctx, self._stub.Get, req, options, idempotent=True)

    def create(
        self,
        display_name: str | pb.DashboardsServiceCreateRequest,
        /,
        *,
        description: str | None = None,
        default_time_range: str | int | None = None,
        default_granularity: str | int | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.DashboardsServiceCreateResponse:
        """An empty dashboard; e.g. ``default_time_range="last_7_days"``, granularity ``"day"``."""
        req = request(
            pb.DashboardsServiceCreateRequest,
            display_name,
            first="display_name",
            required=("display_name",),
            description=description,
            default_time_range=default_time_range,
            default_granularity=default_granularity,
        )
        return unary(self._ctx, self._stub.Create, req, options)

    def update(
        self,
        id: str | pb.DashboardsServiceUpdateRequest,
        /,
        *,
        display_name: str | None = None,
        description: str | None = None,
        default_time_range: str | int | None = None,
        default_granularity: str | int | None = None,
        is_public: bool | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.DashboardsServiceUpdateResponse:
        """Change a dashboard's settings; ``is_public=True`` gives it a ``share_id``."""
        req = request(
            pb.DashboardsServiceUpdateRequest,
            id,
            first="id",
            required=("id", "display_name"),
            display_name=display_name,
            description=description,
            default_time_range=default_time_range,
            default_granularity=default_granularity,
            is_public=is_public,
        )
        return unary(self._ctx, self._stub.Update, req, options)

    def upsert(
        self,
        id: str | pb.DashboardsServiceUpsertRequest,
        /,
        *,
        display_name: str | None = None,
        description: str | None = None,
        default_time_range: str | int | None = None,
        default_granularity: str | int | None = None,
        tiles: Sequence[TileLike] | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.DashboardsServiceUpsertResponse:
        """Create or replace a dashboard with your own id and its full list of tiles.

        Made for dashboards kept as code: the same call run twice leaves the same dashboard.
        """
        req = request(
            pb.DashboardsServiceUpsertRequest,
            id,
            first="id",
            required=("id", "display_name"),
            display_name=display_name,
            description=description,
            default_time_range=default_time_range,
            default_granularity=default_granularity,
            tiles=tiles,
        )
        return unary(self._ctx, self._stub.Upsert, req, options)

    def delete(
        self, id: str | pb.DashboardsServiceDeleteRequest, /, **options: Unpack[CallOptions]
    ) -> pb.DashboardsServiceDeleteResponse:
        req = request(pb.DashboardsServiceDeleteRequest, id, first="id", required=("id",))
        return unary(self._ctx, self._stub.Delete, req, options)

    def query(
        self,
        dashboard_id: str | pb.DashboardsServiceQueryDashboardRequest,
        /,
        *,
        time_range: TimeRangeLike | None = None,
        granularity: str | int | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.DashboardsServiceQueryDashboardResponse:
        """Render every tile (``QueryDashboard``); unset window/granularity use the defaults."""
        req = request(
            pb.DashboardsServiceQueryDashboardRequest,
            dashboard_id,
            first="dashboard_id",
            required=("dashboard_id",),
            time_range=time_range,
            granularity=granularity,
        )
        return unary(self._ctx, self._stub.QueryDashboard, req, options, idempotent=True)


class SharedDashboards:
    """Dashboards made public, rendered by ``share_id`` with no credential at all."""

    __slots__ = ("_ctx", "_stub")

    def __init__(self, channel: grpc.Channel, ctx: CallContext) -> None:
        self._ctx = ctx
        self._stub = public_grpc.SharedDashboardsServiceStub(channel)

    def query(
        self,
        share_id: str | public_pb.SharedDashboardsServiceQueryRequest,
        /,
        *,
        time_range: TimeRangeLike | None = None,
        granularity: str | int | None = None,
        **options: Unpack[CallOptions],
    ) -> public_pb.SharedDashboardsServiceQueryResponse:
        req = request(
            public_pb.SharedDashboardsServiceQueryRequest,
            share_id,
            first="share_id",
            required=("share_id",),
            time_range=time_range,
            granularity=granularity,
        )
        return unary(self._ctx, self._stub.Query, req, options, idempotent=True)
