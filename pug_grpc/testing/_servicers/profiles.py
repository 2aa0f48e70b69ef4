"""``ProfilesService``: get, the streaming ``List``, deletions and data-subject requests.

``List`` streams every page in one call, 100 profiles a page as Pug does (not configurable),
each page with a ``next_page_token`` to resume after it; a project without (matching) profiles
ends the stream without a message.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc
from pug_grpc.testing._call_context import current_call
from pug_grpc.testing._filters import matches_groups, profile_lookup
from pug_grpc.testing._paging import profile_cursor, profile_token
from pug_grpc.testing._rows import ActivitySummary, ProfileRow
from pug_grpc.testing._servicers.state import ServerState
from pug_grpc.testing._status import new_request_id, not_found
from pug_grpc.testing._wire_values import device_and_place, first_text, from_us, struct_from

__all__ = ["LIST_PAGE_SIZE", "ProfilesServicer", "profile_message"]

LIST_PAGE_SIZE = 100


def profile_message(row: ProfileRow, activity: ActivitySummary | None) -> profiles_pb2.Profile:
    """A stored profile with its activity summary, as the wire message."""
    profile = profiles_pb2.Profile(
        id=row.id,
        external_id=row.external_id,
        project_id=row.project_id,
        create_time=from_us(row.create_us),
        update_time=from_us(row.update_us),
        properties=struct_from(row.properties),
    )
    if activity is not None:
        auto = activity.latest_auto
        profile.activity.CopyFrom(
            profiles_pb2.ProfileActivitySummary(
                first_seen=from_us(activity.first_us),
                last_seen=from_us(activity.last_us),
                total_events=activity.total,
                pageviews=activity.pageviews,
                sessions=activity.sessions,
                region=first_text(auto, "$region"),
                **device_and_place(auto),
            )
        )
    return profile


class ProfilesServicer(profiles_pb2_grpc.ProfilesServiceServicer):
    """Reads and deletions of stored profiles."""

    def __init__(self, state: ServerState) -> None:
        self._s = state

    def _one(self, row: ProfileRow | None, what: str) -> profiles_pb2.Profile:
        if row is None:
            raise not_found(what)
        activity = self._s.store.activity(row.project_id, [row.external_id])
        return profile_message(row, activity.get(row.external_id))

    def Get(
        self, request: profiles_pb2.GetRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.GetResponse:
        """One profile by its id."""
        project = current_call().caller.project_id
        row = self._s.store.profile(project, id=request.id)
        return profiles_pb2.GetResponse(profile=self._one(row, f"profile {request.id!r}"))

    def GetByExternalId(
        self, request: profiles_pb2.GetByExternalIdRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.GetByExternalIdResponse:
        """One profile by external id (an anonymous id finds the profile it was merged into)."""
        project = current_call().caller.project_id
        row = self._s.store.profile(project, external_id=request.external_id)
        if row is None:
            resolved = self._s.resolve(project, request.external_id)
            if resolved != request.external_id:
                row = self._s.store.profile(project, external_id=resolved)
        what = f"profile with external id {request.external_id!r}"
        return profiles_pb2.GetByExternalIdResponse(profile=self._one(row, what))

    def List(
        self, request: profiles_pb2.ListRequest, context: grpc.ServicerContext
    ) -> Iterator[profiles_pb2.ListResponse]:
        """Stream every matching profile, oldest first, in pages of :data:`LIST_PAGE_SIZE`."""
        project = current_call().caller.project_id
        page: list[ProfileRow] = []
        for row in self._s.store.profiles(project, after=profile_cursor(request.page_token)):
            lookup = profile_lookup(row.properties)
            if matches_groups(request.filter_groups, request.filter_groups_operator, lookup):
                page.append(row)
            if len(page) == LIST_PAGE_SIZE:
                yield self._list_page(project, page)
                page = []
        if page:
            yield self._list_page(project, page)

    def _list_page(self, project: str, rows: list[ProfileRow]) -> profiles_pb2.ListResponse:
        activity = self._s.store.activity(project, [r.external_id for r in rows])
        return profiles_pb2.ListResponse(
            profiles=[profile_message(r, activity.get(r.external_id)) for r in rows],
            next_page_token=profile_token(rows[-1].create_us, rows[-1].id),
        )

    def _delete(self, row: ProfileRow | None, what: str) -> tuple[str, int]:
        if row is None:
            raise not_found(what)
        request_id = "del_" + new_request_id().removeprefix("req_")
        self._s.store.delete_profile(
            row.project_id, row, now_us=self._s.now_us(), request_id=request_id
        )
        return request_id, profiles_pb2.COMPLIANCE_REQUEST_STATUS_COMPLETED

    def Delete(
        self, request: profiles_pb2.DeleteRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.DeleteResponse:
        """Delete a profile by id, with its events (completed at once)."""
        project = current_call().caller.project_id
        row = self._s.store.profile(project, id=request.id)
        request_id, status = self._delete(row, f"profile {request.id!r}")
        return profiles_pb2.DeleteResponse(request_id=request_id, status=status)  # type: ignore[arg-type]

    def DeleteDataSubject(
        self, request: profiles_pb2.DeleteDataSubjectRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.DeleteDataSubjectResponse:
        """Delete a data subject by external id, with its events (completed at once)."""
        project = current_call().caller.project_id
        row = self._s.store.profile(project, external_id=request.external_id)
        request_id, status = self._delete(row, f"data subject {request.external_id!r}")
        return profiles_pb2.DeleteDataSubjectResponse(request_id=request_id, status=status)  # type: ignore[arg-type]

    def GetDeletionRequest(
        self, request: profiles_pb2.GetDeletionRequestRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.GetDeletionRequestResponse:
        """The state of a deletion request (always completed here)."""
        project = current_call().caller.project_id
        row = self._s.store.deletion(project, request.request_id)
        if row is None:
            raise not_found(f"deletion request {request.request_id!r}")
        return profiles_pb2.GetDeletionRequestResponse(
            request_id=row.request_id,
            external_id=row.external_id,
            profile_id=row.profile_id,
            status=profiles_pb2.COMPLIANCE_REQUEST_STATUS_COMPLETED,
            events_identified=row.events_deleted,
            requested_at=from_us(row.requested_us),
            completed_at=from_us(row.completed_us),
        )
