"""``pug.profiles``: read and delete stored profiles (``shared.profiles.v1.ProfilesService``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Unpack

import grpc

from pug_grpc._rpc.call import CallContext, CallOptions, Metadata, PageStream, unary
from pug_grpc._rpc.convert import request
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2 as pb
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from grpc import _CallIterator

__all__ = ["Profiles"]

FilterGroupLike = pb.FilterGroup | Mapping[str, Any]


def _groups(
    filters: Sequence[Mapping[str, Any]] | None,
    filter_groups: Sequence[FilterGroupLike] | None,
) -> Sequence[FilterGroupLike] | None:
    """``filters=[...]`` is shorthand for one AND group."""
    if filters is None:
        return filter_groups
    return [*(filter_groups or ()), {"filters": list(filters), "operator": "and"}]


class Profiles:
    """Profiles of the client's project: by id, by external id, listed, or deleted."""

    __slots__ = ("_ctx", "_stub")

    def __init__(self, channel: grpc.Channel, ctx: CallContext) -> None:
        self._ctx = ctx
        self._stub = pb_grpc.ProfilesServiceStub(channel)

    def get(self, id: str | pb.GetRequest, /, **options: Unpack[CallOptions]) -> pb.GetResponse:
        """One profile by Pug's id."""
        req = request(pb.GetRequest, id, first="id", required=("id",))
        return unary(self._ctx, self._stub.Get, req, options, idempotent=True)

    def get_by_external_id(
        self, external_id: str | pb.GetByExternalIdRequest, /, **options: Unpack[CallOptions]
    ) -> pb.GetByExternalIdResponse:
        """One profile by the id your system gave it (the ``identify`` external id)."""
        req = request(
            pb.GetByExternalIdRequest, external_id, first="external_id", required=("external_id",)
        )
        return unary(self._ctx, self._stub.GetByExternalId, req, options, idempotent=True)

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
        """The server-streamed pages of a listing; ``close()`` it to stop early."""
        base = request(
            pb.ListRequest,
            request_,
            filter_groups=_groups(filters, filter_groups),
            filter_groups_operator=filter_groups_operator,
            page_token=page_token,
        )
        stub = self._stub

        def open_stream(
            token: str, metadata: Metadata, timeout: float | None
        ) -> _CallIterator[pb.ListResponse]:
            req = pb.ListRequest()
            req.CopyFrom(base)
            if token:
                req.page_token = token
            return stub.List(req, timeout=timeout, metadata=metadata)

        return PageStream(self._ctx, open_stream, options, first_token=base.page_token)

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
        control. With a retry policy, a broken stream resumes from the last page received.
        """
        pages = self.list_pages(
            request_,
            filters=filters,
            filter_groups=filter_groups,
            filter_groups_operator=filter_groups_operator,
            page_token=page_token,
            **options,
        )
        return _profiles_of(pages)

    def delete(
        self, id: str | pb.DeleteRequest, /, **options: Unpack[CallOptions]
    ) -> pb.DeleteResponse:
        """Delete one profile and its events; the reply tracks the asynchronous request."""
        req = request(pb.DeleteRequest, id, first="id", required=("id",))
        return unary(self._ctx, self._stub.Delete, req, options)

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
        return unary(self._ctx, self._stub.DeleteDataSubject, req, options)

    def get_deletion_request(
        self, request_id: str | pb.GetDeletionRequestRequest, /, **options: Unpack[CallOptions]
    ) -> pb.GetDeletionRequestResponse:
        """The progress of a deletion started by :meth:`delete` or :meth:`delete_data_subject`."""
        req = request(
            pb.GetDeletionRequestRequest, request_id, first="request_id", required=("request_id",)
        )
        return unary(self._ctx, self._stub.GetDeletionRequest, req, options, idempotent=True)


def _profiles_of(pages: PageStream[pb.ListResponse]) -> Iterator[pb.Profile]:
    try:
        for page in pages:
            yield from page.profiles
    finally:
        pages.close()
