"""``pug.profiles``: read and delete stored profiles (``shared.profiles.v1.ProfilesService``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Unpack

from pug_grpc._rpc.call import (
    CallContext,
    CallOptions,
    PageStream,
    page_stream,
    stream_items,
    unary,
)
from pug_grpc._rpc.convert import filter_groups as and_filters
from pug_grpc._rpc.convert import request
from pug_grpc._rpc.transport import method
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2 as pb

__all__ = ["Profiles", "list_request"]

FilterGroupLike = pb.FilterGroup | Mapping[str, Any]

_SERVICE = pb.DESCRIPTOR.services_by_name["ProfilesService"]
_GET = method(_SERVICE, "Get", pb.GetRequest, pb.GetResponse)
_GET_BY_EXTERNAL_ID = method(
    _SERVICE, "GetByExternalId", pb.GetByExternalIdRequest, pb.GetByExternalIdResponse
)
_LIST = method(_SERVICE, "List", pb.ListRequest, pb.ListResponse)
_DELETE = method(_SERVICE, "Delete", pb.DeleteRequest, pb.DeleteResponse)
_DELETE_DATA_SUBJECT = method(
    _SERVICE, "DeleteDataSubject", pb.DeleteDataSubjectRequest, pb.DeleteDataSubjectResponse
)
_GET_DELETION_REQUEST = method(
    _SERVICE, "GetDeletionRequest", pb.GetDeletionRequestRequest, pb.GetDeletionRequestResponse
)


def list_request(
    request_: pb.ListRequest | None = None,
    /,
    *,
    filters: Sequence[Mapping[str, Any]] | None = None,
    filter_groups: Sequence[FilterGroupLike] | None = None,
    filter_groups_operator: str | int | None = None,
    page_token: str | None = None,
) -> pb.ListRequest:
    """The ``ListRequest`` of :meth:`Profiles.list` (no I/O)."""
    return request(
        pb.ListRequest,
        request_,
        filter_groups=and_filters(filters, filter_groups),
        filter_groups_operator=filter_groups_operator,
        page_token=page_token,
    )


class Profiles:
    """Profiles of the client's project: by id, by external id, listed, or deleted."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx

    def get(self, id: str | pb.GetRequest, /, **options: Unpack[CallOptions]) -> pb.GetResponse:
        """One profile by Pug's id."""
        req = request(pb.GetRequest, id, first="id", required=("id",))
        return unary(self._ctx, _GET, req, options, idempotent=True)

    def get_by_external_id(
        self, external_id: str | pb.GetByExternalIdRequest, /, **options: Unpack[CallOptions]
    ) -> pb.GetByExternalIdResponse:
        """One profile by the id your system gave it (the ``identify`` external id)."""
        req = request(
            pb.GetByExternalIdRequest, external_id, first="external_id", required=("external_id",)
        )
        return unary(self._ctx, _GET_BY_EXTERNAL_ID, req, options, idempotent=True)

    def list_pages(
        self,
        request_: pb.ListRequest | None = None,
        /,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        filter_groups: Sequence[FilterGroupLike] | None = None,
        filter_groups_operator: str | int | None = None,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> PageStream[pb.ListResponse]:
        """The server-streamed pages of a listing; ``close()`` it to stop early.

        ``timeout`` bounds the wait for each page, not the whole listing.
        """
        base = list_request(
            request_,
            filters=filters,
            filter_groups=filter_groups,
            filter_groups_operator=filter_groups_operator,
            page_token=page_token,
        )
        return page_stream(self._ctx, _LIST, base, options)

    def list(
        self,
        request_: pb.ListRequest | None = None,
        /,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        filter_groups: Sequence[FilterGroupLike] | None = None,
        filter_groups_operator: str | int | None = None,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> Iterator[pb.Profile]:
        """Every matching profile, across all streamed pages.

        ``filters`` is a list of property filters (``{"property": "plan", "operator": "equals",
        "value": "pro", "source": "profile"}``) that must all match; ``filter_groups`` gives full
        control. Under retry settings, a broken stream resumes from the last page received.
        """
        base = list_request(
            request_,
            filters=filters,
            filter_groups=filter_groups,
            filter_groups_operator=filter_groups_operator,
            page_token=page_token,
        )
        return stream_items(self._ctx, _LIST, base, options, _profiles)

    def delete(
        self, id: str | pb.DeleteRequest, /, **options: Unpack[CallOptions]
    ) -> pb.DeleteResponse:
        """Delete one profile and its events; the reply tracks the asynchronous request."""
        req = request(pb.DeleteRequest, id, first="id", required=("id",))
        return unary(self._ctx, _DELETE, req, options)

    def delete_data_subject(
        self, external_id: str | pb.DeleteDataSubjectRequest, /, **options: Unpack[CallOptions]
    ) -> pb.DeleteDataSubjectResponse:
        """Erase everything held about one person (a GDPR/CCPA deletion request)."""
        req = request(
            pb.DeleteDataSubjectRequest,
            external_id,
            first="external_id",
            required=("external_id",),
        )
        return unary(self._ctx, _DELETE_DATA_SUBJECT, req, options)

    def get_deletion_request(
        self, request_id: str | pb.GetDeletionRequestRequest, /, **options: Unpack[CallOptions]
    ) -> pb.GetDeletionRequestResponse:
        """The progress of a deletion started by :meth:`delete` or :meth:`delete_data_subject`."""
        req = request(
            pb.GetDeletionRequestRequest, request_id, first="request_id", required=("request_id",)
        )
        return unary(self._ctx, _GET_DELETION_REQUEST, req, options, idempotent=True)


def _profiles(page: pb.ListResponse) -> Iterable[pb.Profile]:
    return page.profiles
