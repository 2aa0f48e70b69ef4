"""``admin.projects``: projects and their API keys (``dashboard.projects.v1.ProjectsService``).

``batch_get`` and ``create`` name an organisation; everything else acts on the project in
``x-project-id`` (the client's project id, or ``project_id=`` on the call).
"""

from __future__ import annotations

from typing import Unpack

from pug_grpc._rpc.call import CallContext, CallOptions, unary
from pug_grpc._rpc.convert import request
from pug_grpc._rpc.transport import method
from pug_grpc.gen.dashboard.projects.v1 import projects_pb2 as pb

__all__ = ["Projects"]


_SERVICE = pb.DESCRIPTOR.services_by_name["ProjectsService"]
_BATCH_GET = method(_SERVICE, "BatchGet", pb.BatchGetRequest, pb.BatchGetResponse)
_CREATE = method(_SERVICE, "Create", pb.CreateRequest, pb.CreateResponse)
_DELETE = method(_SERVICE, "Delete", pb.DeleteRequest, pb.DeleteResponse)
_GET = method(_SERVICE, "Get", pb.GetRequest, pb.GetResponse)
_UPDATE_META = method(_SERVICE, "UpdateMeta", pb.UpdateMetaRequest, pb.UpdateMetaResponse)
_UPDATE_FCM_SERVICE_JSON = method(
    _SERVICE,
    "UpdateFCMServiceJSON",
    pb.UpdateFCMServiceJSONRequest,
    pb.UpdateFCMServiceJSONResponse,
)
_LIST_API_KEYS = method(_SERVICE, "ListApiKeys", pb.ListApiKeysRequest, pb.ListApiKeysResponse)
_CREATE_API_KEY = method(_SERVICE, "CreateApiKey", pb.CreateApiKeyRequest, pb.CreateApiKeyResponse)
_DELETE_API_KEY = method(_SERVICE, "DeleteApiKey", pb.DeleteApiKeyRequest, pb.DeleteApiKeyResponse)


class Projects:
    """Create, inspect and configure projects; issue and revoke their API keys."""

    __slots__ = ("_ctx", "_org_ctx")

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._org_ctx = ctx.replace(require_project=False)

    def batch_get(
        self, org_id: str | pb.BatchGetRequest, /, **options: Unpack[CallOptions]
    ) -> pb.BatchGetResponse:
        """Every project of one organisation."""
        req = request(pb.BatchGetRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._org_ctx, _BATCH_GET, req, options, idempotent=True)

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
        return unary(self._org_ctx, _CREATE, req, options)

    def get(
        self, request_: pb.GetRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> pb.GetResponse:
        """The current project (``x-project-id``)."""
        req = request(pb.GetRequest, request_)
        return unary(self._ctx, _GET, req, options, idempotent=True)

    def delete(
        self, request_: pb.DeleteRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> pb.DeleteResponse:
        """Delete the current project (``x-project-id``) with all its data."""
        req = request(pb.DeleteRequest, request_)
        return unary(self._ctx, _DELETE, req, options)

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
        return unary(self._ctx, _UPDATE_META, req, options)

    def update_fcm_service_json(
        self,
        fcm_service_json: str | pb.UpdateFCMServiceJSONRequest,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.UpdateFCMServiceJSONResponse:
        """Store the Firebase service-account JSON used for push notifications."""
        req = request(pb.UpdateFCMServiceJSONRequest, fcm_service_json, first="fcm_service_json")
        return unary(self._ctx, _UPDATE_FCM_SERVICE_JSON, req, options)

    def list_api_keys(
        self, request_: pb.ListApiKeysRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> pb.ListApiKeysResponse:
        """The current project's API keys (masked)."""
        req = request(pb.ListApiKeysRequest, request_)
        return unary(self._ctx, _LIST_API_KEYS, req, options, idempotent=True)

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
        return unary(self._ctx, _CREATE_API_KEY, req, options)

    def delete_api_key(
        self, id: str | pb.DeleteApiKeyRequest, /, **options: Unpack[CallOptions]
    ) -> pb.DeleteApiKeyResponse:
        """Revoke one API key by its id."""
        req = request(pb.DeleteApiKeyRequest, id, first="id", required=("id",))
        return unary(self._ctx, _DELETE_API_KEY, req, options)
