"""``admin.projects``: projects and their API keys (``dashboard.projects.v1.ProjectsService``).

``batch_get`` and ``create`` name an organisation; everything else acts on the project in
``x-project-id`` (the client's project id, or ``project_id=`` on the call).
"""

from __future__ import annotations

from typing import Unpack

import grpc

from pug_grpc._rpc.call import CallContext, CallOptions, unary
from pug_grpc._rpc.convert import request
from pug_grpc.gen.dashboard.projects.v1 import projects_pb2 as pb
from pug_grpc.gen.dashboard.projects.v1 import projects_pb2_grpc as pb_grpc

__all__ = ["Projects"]


class Projects:
    """Create, inspect and configure projects; issue and revoke their API keys."""

    __slots__ = ("_ctx", "_org_ctx", "_stub")

    def __init__(self, channel: grpc.Channel, ctx: CallContext) -> None:
        self._ctx = ctx
        self._org_ctx = ctx.replace(require_project=False)
        self._stub = pb_grpc.ProjectsServiceStub(channel)

    def batch_get(
        self, org_id: str | pb.BatchGetRequest, /, **options: Unpack[CallOptions]
    ) -> pb.BatchGetResponse:
        """Every project of one organisation."""
        req = request(pb.BatchGetRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._org_ctx, self._stub.BatchGet, req, options, idempotent=True)

    def create(
        self,
        org_id: str | pb.CreateRequest,
        display_name: str | None = None,
        /,
        *,
        reporting_timezone: str | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.CreateResponse:
        """A new project in ``org_id``; ``reporting_timezone`` is an IANA name."""
        req = request(
            pb.CreateRequest,
            org_id,
            first="org_id",
            required=("org_id", "display_name"),
            display_name=display_name,
            reporting_timezone=reporting_timezone,
        )
        return unary(self._org_ctx, self._stub.Create, req, options)

    def get(
        self, request_: pb.GetRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> pb.GetResponse:
        """The current project (``x-project-id``)."""
        req = request(pb.GetRequest, request_)
        return unary(self._ctx, self._stub.Get, req, options, idempotent=True)

    def delete(
        self, request_: pb.DeleteRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> pb.DeleteResponse:
        """Delete the current project (``x-project-id``) with all its data."""
        req = request(pb.DeleteRequest, request_)
        return unary(self._ctx, self._stub.Delete, req, options)

    def update_meta(
        self,
        request_: pb.UpdateMetaRequest | None = None,
        /,
        *,
        display_name: str | None = None,
        reporting_timezone: str | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.UpdateMetaResponse:
        """Rename the current project or change its reporting timezone."""
        req = request(
            pb.UpdateMetaRequest,
            request_,
            display_name=display_name,
            reporting_timezone=reporting_timezone,
        )
        return unary(self._ctx, self._stub.UpdateMeta, req, options)

    def update_fcm_service_json(
        self,
        fcm_service_json: str | pb.UpdateFCMServiceJSONRequest,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.UpdateFCMServiceJSONResponse:
        """Store the Firebase service-account JSON used for push notifications."""
        req = request(pb.UpdateFCMServiceJSONRequest, fcm_service_json, first="fcm_service_json")
        return unary(self._ctx, self._stub.UpdateFCMServiceJSON, req, options)

    def list_api_keys(
        self, request_: pb.ListApiKeysRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> pb.ListApiKeysResponse:
        """The current project's API keys (masked)."""
        req = request(pb.ListApiKeysRequest, request_)
        return unary(self._ctx, self._stub.ListApiKeys, req, options, idempotent=True)

    def create_api_key(
        self,
        kind: str | int | pb.CreateApiKeyRequest,
        /,
        *,
        display_name: str | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.CreateApiKeyResponse:
        """A new ``"public"`` or ``"private"`` key; the reply's ``key`` is shown only this once."""
        req = request(
            pb.CreateApiKeyRequest,
            kind,
            first="kind",
            required=("kind",),
            display_name=display_name,
        )
        return unary(self._ctx, self._stub.CreateApiKey, req, options)

    def delete_api_key(
        self, id: str | pb.DeleteApiKeyRequest, /, **options: Unpack[CallOptions]
    ) -> pb.DeleteApiKeyResponse:
        """Revoke one API key by its id."""
        req = request(pb.DeleteApiKeyRequest, id, first="id", required=("id",))
        return unary(self._ctx, self._stub.DeleteApiKey, req, options)
