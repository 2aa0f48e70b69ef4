"""``InsightsService``: trends queries in the project's time zone, filter schema and values."""

from __future__ import annotations

import grpc

from pug_grpc.gen.common.v1 import filter_schema_pb2
from pug_grpc.gen.shared.insights.v1 import insights_pb2, insights_pb2_grpc
from pug_grpc.testing._call_context import current_call
from pug_grpc.testing._servicers.filter_schema import filter_schema, property_values
from pug_grpc.testing._servicers.state import ServerState
from pug_grpc.testing._status import unimplemented
from pug_grpc.testing._trends import trends

__all__ = ["InsightsServicer"]


class InsightsServicer(insights_pb2_grpc.InsightsServiceServicer):
    """Insight queries of one project (trends only)."""

    def __init__(self, state: ServerState) -> None:
        self._s = state

    def Query(
        self, request: insights_pb2.QueryRequest, context: grpc.ServicerContext
    ) -> insights_pb2.QueryResponse:
        """A trends query; ``timezone`` is the project's, whatever the request says."""
        project = current_call().caller.project_id
        return trends(self._s.store, project, request, self._s.reporting_timezone)

    def SegmentUsers(
        self, request: insights_pb2.SegmentUsersRequest, context: grpc.ServicerContext
    ) -> insights_pb2.SegmentUsersResponse:
        """Not implemented by the local server."""
        raise unimplemented("InsightsService.SegmentUsers")

    def GetFilterSchema(
        self, request: filter_schema_pb2.GetFilterSchemaRequest, context: grpc.ServicerContext
    ) -> filter_schema_pb2.GetFilterSchemaResponse:
        """What can be filtered on."""
        return filter_schema(self._s.store, request)

    def GetPropertyValues(
        self, request: insights_pb2.GetPropertyValuesRequest, context: grpc.ServicerContext
    ) -> insights_pb2.GetPropertyValuesResponse:
        """The most frequent values of one property."""
        values = property_values(self._s.store, request)
        return insights_pb2.GetPropertyValuesResponse(values=values)
