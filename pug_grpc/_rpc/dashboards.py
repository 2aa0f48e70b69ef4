"""Dashboards: ``admin.dashboards`` (project-scoped, JWT) and ``admin.shared_dashboards`` (public).

A dashboard is a list of tiles, each an insight spec or Markdown; ``query`` renders every tile
server-side. A dashboard made public gets a ``share_id`` that anyone can render without a
credential through ``shared_dashboards.query``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from pug_grpc._rpc.call import CallContext, CallOptions, unary
from pug_grpc._rpc.convert import TimeRangeLike, request
from pug_grpc._rpc.transport import method
from pug_grpc.gen.dashboard.dashboards.v1 import dashboards_pb2 as pb
from pug_grpc.gen.public.dashboards.v1 import dashboards_pb2 as public_pb

__all__ = ["Dashboards", "SharedDashboards"]

TileLike = pb.DashboardTileInput | Mapping[str, Any]


_SERVICE = pb.DESCRIPTOR.services_by_name["DashboardsService"]
_CREATE = method(
    _SERVICE, "Create", pb.DashboardsServiceCreateRequest, pb.DashboardsServiceCreateResponse
)
_DELETE = method(
    _SERVICE, "Delete", pb.DashboardsServiceDeleteRequest, pb.DashboardsServiceDeleteResponse
)
_GET = method(_SERVICE, "Get", pb.DashboardsServiceGetRequest, pb.DashboardsServiceGetResponse)
_LIST = method(_SERVICE, "List", pb.DashboardsServiceListRequest, pb.DashboardsServiceListResponse)
_UPDATE = method(
    _SERVICE, "Update", pb.DashboardsServiceUpdateRequest, pb.DashboardsServiceUpdateResponse
)
_UPSERT = method(
    _SERVICE, "Upsert", pb.DashboardsServiceUpsertRequest, pb.DashboardsServiceUpsertResponse
)
_QUERY_DASHBOARD = method(
    _SERVICE,
    "QueryDashboard",
    pb.DashboardsServiceQueryDashboardRequest,
    pb.DashboardsServiceQueryDashboardResponse,
)

_SHARED_SERVICE = public_pb.DESCRIPTOR.services_by_name["SharedDashboardsService"]
_SHARED_QUERY = method(
    _SHARED_SERVICE,
    "Query",
    public_pb.SharedDashboardsServiceQueryRequest,
    public_pb.SharedDashboardsServiceQueryResponse,
)


class Dashboards:
    """The current project's dashboards (``x-project-id``)."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx

    def list(
        self,
        request_: pb.DashboardsServiceListRequest | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.DashboardsServiceListResponse:
        """Every dashboard of the current project."""
        req = request(pb.DashboardsServiceListRequest, request_)
        return unary(self._ctx, _LIST, req, options, idempotent=True)

    def get(
        self, id: str | pb.DashboardsServiceGetRequest, /, **options: Unpack[CallOptions]
    ) -> pb.DashboardsServiceGetResponse:
        """One dashboard with its tiles."""
        req = request(pb.DashboardsServiceGetRequest, id, first="id", required=("id",))
        return unary(self._ctx, _GET, req, options, idempotent=True)

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
        return unary(self._ctx, _CREATE, req, options)

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
        return unary(self._ctx, _UPDATE, req, options)

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
        return unary(self._ctx, _UPSERT, req, options)

    def delete(
        self, id: str | pb.DashboardsServiceDeleteRequest, /, **options: Unpack[CallOptions]
    ) -> pb.DashboardsServiceDeleteResponse:
        """Delete one dashboard."""
        req = request(pb.DashboardsServiceDeleteRequest, id, first="id", required=("id",))
        return unary(self._ctx, _DELETE, req, options)

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
        return unary(self._ctx, _QUERY_DASHBOARD, req, options, idempotent=True)


class SharedDashboards:
    """Dashboards made public, rendered by ``share_id`` with no credential at all."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx

    def query(
        self,
        share_id: str | public_pb.SharedDashboardsServiceQueryRequest,
        /,
        *,
        time_range: TimeRangeLike | None = None,
        granularity: str | int | None = None,
        **options: Unpack[CallOptions],
    ) -> public_pb.SharedDashboardsServiceQueryResponse:
        """Render a public dashboard by ``share_id`` (unset window/granularity: its defaults)."""
        req = request(
            public_pb.SharedDashboardsServiceQueryRequest,
            share_id,
            first="share_id",
            required=("share_id",),
            time_range=time_range,
            granularity=granularity,
        )
        return unary(self._ctx, _SHARED_QUERY, req, options, idempotent=True)
