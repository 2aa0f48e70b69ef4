"""The servicers of the local Pug server, built on our generated base classes.

Credentials, validation, fault injection and error details are applied by the call wrapper in
``_server``; these classes only implement what each method does.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from pug_grpc.gen.common.v1 import filter_schema_pb2, filters_pb2
from pug_grpc.gen.public.auth.v1 import auth_pb2, auth_pb2_grpc
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2_grpc as sdk_profiles_pb2_grpc
from pug_grpc.gen.shared.activity.v1 import activity_pb2, activity_pb2_grpc
from pug_grpc.gen.shared.insights.v1 import insights_pb2, insights_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc
from pug_grpc.testing._auth import SessionIssuer
from pug_grpc.testing._context import current_call
from pug_grpc.testing._convert import event_row, from_us, struct_from, struct_to_dict, to_us
from pug_grpc.testing._faults import Faults
from pug_grpc.testing._filters import event_lookup, matches_all, matches_groups, profile_lookup
from pug_grpc.testing._insights import trends
from pug_grpc.testing._status import FieldViolation, ServerError, new_request_id
from pug_grpc.testing._store import ActivitySummary, EventRow, ProfileRow, Store, as_text

__all__ = ["Received", "Services"]

_DEFAULT_PAGE_SIZE = 100
_COOKIELESS_WINDOW_US = 86_400 * 1_000_000
_VT = filter_schema_pb2.PropertyValueType
_CASE_TYPES = {
    "s": _VT.PROPERTY_VALUE_TYPE_STRING,
    "i": _VT.PROPERTY_VALUE_TYPE_INTEGER,
    "d": _VT.PROPERTY_VALUE_TYPE_FLOAT,
    "b": _VT.PROPERTY_VALUE_TYPE_BOOLEAN,
    "t": _VT.PROPERTY_VALUE_TYPE_DATETIME,
}


@dataclass
class Received:
    """What the server accepted, in arrival order; retried events appear once per delivery."""

    events: list[events_pb2.Event] = field(default_factory=list)
    identifies: list[sdk_profiles_pb2.IdentifyRequest] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)


def _not_found(what: str) -> ServerError:
    return ServerError(grpc.StatusCode.NOT_FOUND, f"{what} not found", "NOT_FOUND")


def _unimplemented(what: str) -> ServerError:
    return ServerError(
        grpc.StatusCode.UNIMPLEMENTED,
        f"{what} is not implemented by the local Pug server",
        "UNIMPLEMENTED",
    )


def _offset(token: str) -> int:
    if not token:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        offset = int(number)
        if kind != "offset" or offset < 0:
            raise ValueError(token)
    except ValueError:
        raise ServerError(
            grpc.StatusCode.INVALID_ARGUMENT, "page_token is not valid", "INVALID_PAGE_TOKEN"
        ) from None
    return offset


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _cursor(token: str) -> tuple[int, int] | None:
    """The (time, sequence) an event page token continues after; None for the first page."""
    if not token:
        return None
    try:
        kind, occur, seq = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if kind != "after":
            raise ValueError(token)
        return int(occur), int(seq)
    except ValueError:
        raise ServerError(
            grpc.StatusCode.INVALID_ARGUMENT, "page_token is not valid", "INVALID_PAGE_TOKEN"
        ) from None


def _cursor_token(occur_us: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"after:{occur_us}:{seq}".encode()).decode()


def _range_us(request: Any, name: str = "time_range") -> tuple[int | None, int | None]:
    if not request.HasField(name):
        return None, None
    time_range = getattr(request, name)
    return to_us(getattr(time_range, "from")), to_us(time_range.to)


def _text(props: dict[str, Any], *names: str) -> str:
    for name in names:
        value = props.get(name)
        if value is not None:
            return as_text(value)
    return ""


class Services:
    """State shared by every servicer: the store, the clock, faults and what was received."""

    def __init__(
        self,
        *,
        store: Store,
        sessions: SessionIssuer,
        faults: Faults,
        clock: Callable[[], float],
        received: Received | None,
        list_page_size: int,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.faults = faults
        self.clock = clock
        self.received = received
        self.list_page_size = list_page_size

    def now_us(self) -> int:
        return int(self.clock() * 1_000_000)

    def resolve(self, project_id: str, distinct_id: str) -> str:
        """The profile key events of ``distinct_id`` are filed under (after aliasing)."""
        return self.store.resolve(project_id, distinct_id)

    def profile_message(
        self, row: ProfileRow, activity: ActivitySummary | None
    ) -> profiles_pb2.Profile:
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
                    browser=_text(auto, "$browser"),
                    browser_version=_text(auto, "$browser_version"),
                    os=_text(auto, "$os"),
                    os_version=_text(auto, "$os_version"),
                    device=_text(auto, "$device_type", "$device"),
                    country=_text(auto, "$country", "$geo_country"),
                    region=_text(auto, "$region", "$geo_region"),
                    city=_text(auto, "$city", "$geo_city"),
                )
            )
        return profile

    def activity_event(self, row: EventRow) -> activity_pb2.ActivityEvent:
        return activity_pb2.ActivityEvent(
            event_id=row.event_id,
            kind=row.kind,
            distinct_id=row.distinct_id,
            occur_time=from_us(row.occur_us),
            session_id=row.session_id,
            auto_properties=struct_from(row.auto_props, typed=True),
            custom_properties=struct_from(row.custom_props, typed=True),
        )

    def filter_schema(
        self, request: filter_schema_pb2.GetFilterSchemaRequest
    ) -> filter_schema_pb2.GetFilterSchemaResponse:
        project = current_call().caller.project_id
        allowed = set(request.allowed_types)
        reply = filter_schema_pb2.GetFilterSchemaResponse()
        for kind, count, last in self.store.event_kinds(project, request.event_kind):
            reply.events.add(name=kind, count=count, last_seen_at=from_us(last))
        for column, target in (
            ("auto_props", reply.auto_property_keys),
            ("custom_props", reply.custom_property_keys),
        ):
            for key, case, count, last in self.store.property_keys(
                project, column, request.event_kind
            ):
                value_type = _CASE_TYPES.get(case, _VT.PROPERTY_VALUE_TYPE_OTHER)
                if not allowed or value_type in allowed:
                    target.add(
                        name=key, count=count, last_seen_at=from_us(last), value_type=value_type
                    )
        profile_keys: dict[str, list[Any]] = {}
        for row in self.store.profiles(project):
            for key, value in row.properties.items():
                plain_type = _plain_type(value)
                entry = profile_keys.setdefault(key, [0, 0, plain_type])
                entry[0] += 1
                entry[1] = max(entry[1], row.update_us)
        for key, (count, last, plain_type) in sorted(profile_keys.items()):
            if not allowed or plain_type in allowed:
                reply.profile_property_keys.add(
                    name=key, count=count, last_seen_at=from_us(last), value_type=plain_type
                )
        return reply

    def property_values(self, request: Any) -> list[str]:
        project = current_call().caller.project_id
        source = request.source
        if source == filter_schema_pb2.PROPERTY_SOURCE_UNSPECIFIED:
            source = (
                filter_schema_pb2.PROPERTY_SOURCE_AUTO
                if request.property_key.startswith("$")
                else filter_schema_pb2.PROPERTY_SOURCE_CUSTOM
            )
        if source == filter_schema_pb2.PROPERTY_SOURCE_PROFILE:
            counts: dict[str, int] = {}
            for row in self.store.profiles(project):
                value = profile_lookup(row.properties)(
                    filters_pb2.PropertyFilter(property=request.property_key)
                )
                if value is not None:
                    text = as_text(value)
                    counts[text] = counts.get(text, 0) + 1
            return sorted(counts, key=lambda v: (-counts[v], v))[:1000]
        column = (
            "auto_props" if source == filter_schema_pb2.PROPERTY_SOURCE_AUTO else "custom_props"
        )
        return self.store.property_values(project, column, request.property_key, request.event_kind)


def _plain_type(value: Any) -> int:
    if isinstance(value, bool):
        return _VT.PROPERTY_VALUE_TYPE_BOOLEAN
    if isinstance(value, int):
        return _VT.PROPERTY_VALUE_TYPE_INTEGER
    if isinstance(value, float):
        return (
            _VT.PROPERTY_VALUE_TYPE_INTEGER if value.is_integer() else _VT.PROPERTY_VALUE_TYPE_FLOAT
        )
    if isinstance(value, str):
        return _VT.PROPERTY_VALUE_TYPE_STRING
    return _VT.PROPERTY_VALUE_TYPE_OTHER


class EventsServicer(events_pb2_grpc.EventsServiceServicer):
    def __init__(self, services: Services) -> None:
        self._s = services

    def BatchCreate(
        self, request: events_pb2.BatchCreateRequest, context: grpc.ServicerContext
    ) -> events_pb2.BatchCreateResponse:
        call = current_call()
        now_us = self._s.now_us()
        drops = self._s.faults.take_drops(len(request.events))
        reply = events_pb2.BatchCreateResponse()
        kept: list[events_pb2.Event] = []
        for index, event in enumerate(request.events):
            reason = drops[index] if index < len(drops) else ""
            out_of_range = abs(to_us(event.occur_time) - now_us) > _COOKIELESS_WINDOW_US
            if not reason and event.cookieless and out_of_range:
                reason = "day_out_of_range"
            if reason:
                reply.dropped += 1
                reply.dropped_by_reason[reason] += 1
            else:
                kept.append(event)
        rows = [event_row(e, received_us=now_us, metadata=call.metadata) for e in kept]
        self._s.store.insert_events(call.caller.project_id, rows)
        reply.accepted = len(kept)
        received = self._s.received
        if received is not None:
            with received.lock:
                received.events.extend(kept)
                received.lock.notify_all()
        return reply


class ProfilesSDKServicer(sdk_profiles_pb2_grpc.ProfilesSDKServiceServicer):
    def __init__(self, services: Services) -> None:
        self._s = services

    def Identify(
        self, request: sdk_profiles_pb2.IdentifyRequest, context: grpc.ServicerContext
    ) -> sdk_profiles_pb2.IdentifyResponse:
        if not request.external_id:
            # Set-but-empty passes protovalidate's `required`; a profile cannot be keyed by "".
            raise ServerError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "invalid request: external_id: value is required",
                "INVALID_ARGUMENT",
                violations=[FieldViolation("external_id", "value is required", "required")],
            )
        self._s.store.identify(
            current_call().caller.project_id,
            request.external_id,
            struct_to_dict(request.traits),
            anonymous_id=request.anonymous_id,
            device_id=request.device_id,
            now_us=self._s.now_us(),
        )
        received = self._s.received
        if received is not None:
            with received.lock:
                received.identifies.append(request)
                received.lock.notify_all()
        return sdk_profiles_pb2.IdentifyResponse()


class ProfilesServicer(profiles_pb2_grpc.ProfilesServiceServicer):
    def __init__(self, services: Services) -> None:
        self._s = services

    def _one(self, row: ProfileRow | None, what: str) -> profiles_pb2.Profile:
        if row is None:
            raise _not_found(what)
        activity = self._s.store.activity(row.project_id, [row.external_id])
        return self._s.profile_message(row, activity.get(row.external_id))

    def Get(
        self, request: profiles_pb2.GetRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.GetResponse:
        project = current_call().caller.project_id
        row = self._s.store.profile(project, id=request.id)
        return profiles_pb2.GetResponse(profile=self._one(row, f"profile {request.id!r}"))

    def GetByExternalId(
        self, request: profiles_pb2.GetByExternalIdRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.GetByExternalIdResponse:
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
        project = current_call().caller.project_id
        start = _offset(request.page_token)
        size = self._s.list_page_size
        matching = (
            row
            for row in self._s.store.profiles(project)
            if matches_groups(
                request.filter_groups,
                request.filter_groups_operator,
                profile_lookup(row.properties),
            )
        )
        page: list[ProfileRow] = []
        position = 0
        for index, row in enumerate(matching):
            if index < start:
                continue
            if len(page) == size:
                position = index
                yield self._list_page(project, page, _token(position))
                page = []
            page.append(row)
        yield self._list_page(project, page, "")

    def _list_page(
        self, project: str, rows: list[ProfileRow], token: str
    ) -> profiles_pb2.ListResponse:
        activity = self._s.store.activity(project, [r.external_id for r in rows])
        return profiles_pb2.ListResponse(
            profiles=[self._s.profile_message(r, activity.get(r.external_id)) for r in rows],
            next_page_token=token,
        )

    def _delete(self, row: ProfileRow | None, what: str) -> tuple[str, int]:
        if row is None:
            raise _not_found(what)
        request_id = "del_" + new_request_id().removeprefix("req_")
        self._s.store.delete_profile(
            row.project_id, row, now_us=self._s.now_us(), request_id=request_id
        )
        return request_id, profiles_pb2.COMPLIANCE_REQUEST_STATUS_COMPLETED

    def Delete(
        self, request: profiles_pb2.DeleteRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.DeleteResponse:
        project = current_call().caller.project_id
        row = self._s.store.profile(project, id=request.id)
        request_id, status = self._delete(row, f"profile {request.id!r}")
        return profiles_pb2.DeleteResponse(request_id=request_id, status=status)  # type: ignore[arg-type]

    def DeleteDataSubject(
        self, request: profiles_pb2.DeleteDataSubjectRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.DeleteDataSubjectResponse:
        project = current_call().caller.project_id
        row = self._s.store.profile(project, external_id=request.external_id)
        request_id, status = self._delete(row, f"data subject {request.external_id!r}")
        return profiles_pb2.DeleteDataSubjectResponse(request_id=request_id, status=status)  # type: ignore[arg-type]

    def GetDeletionRequest(
        self, request: profiles_pb2.GetDeletionRequestRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.GetDeletionRequestResponse:
        project = current_call().caller.project_id
        row = self._s.store.deletion(project, request.request_id)
        if row is None:
            raise _not_found(f"deletion request {request.request_id!r}")
        return profiles_pb2.GetDeletionRequestResponse(
            request_id=row.request_id,
            external_id=row.external_id,
            profile_id=row.profile_id,
            status=profiles_pb2.COMPLIANCE_REQUEST_STATUS_COMPLETED,
            events_identified=row.events_deleted,
            requested_at=from_us(row.requested_us),
            completed_at=from_us(row.completed_us),
        )


def _event_filters_hold(row: EventRow, request: Any) -> bool:
    if not matches_all(request.property_filters, event_lookup(row)):
        return False
    if not request.events:
        return True
    return any(
        (not f.kind or f.kind == row.kind) and matches_all(f.filters, event_lookup(row))
        for f in request.events
    )


class ActivityServicer(activity_pb2_grpc.ActivityServiceServicer):
    def __init__(self, services: Services) -> None:
        self._s = services

    def _events(self, request: Any, profile_key: str | None) -> tuple[list[EventRow], str]:
        project = current_call().caller.project_id
        start, end = _range_us(request)
        kind = (
            request.events[0].kind if len(request.events) == 1 and request.events[0].kind else None
        )
        after = _cursor(request.page_token)
        size = request.page_size or _DEFAULT_PAGE_SIZE
        filtered = bool(request.property_filters or request.events)
        page: list[EventRow] = []
        for row in self._s.store.events(
            project,
            profile_key=profile_key,
            session_id=request.session_id or None,
            kind=kind,
            start_us=start,
            end_us=end,
            after=after,
        ):
            if filtered and not _event_filters_hold(row, request):
                continue
            if len(page) == size:
                last = page[-1]
                return page, _cursor_token(last.occur_us, last.seq)
            page.append(row)
        return page, ""

    def GetActivityFeed(
        self, request: activity_pb2.GetActivityFeedRequest, context: grpc.ServicerContext
    ) -> activity_pb2.GetActivityFeedResponse:
        key = self._s.resolve(current_call().caller.project_id, request.distinct_id)
        rows, token = self._events(request, key)
        return activity_pb2.GetActivityFeedResponse(
            events=[self._s.activity_event(r) for r in rows], next_page_token=token
        )

    def GetEventExplorer(
        self, request: activity_pb2.GetEventExplorerRequest, context: grpc.ServicerContext
    ) -> activity_pb2.GetEventExplorerResponse:
        project = current_call().caller.project_id
        key = self._s.resolve(project, request.distinct_id) if request.distinct_id else None
        rows, token = self._events(request, key)
        return activity_pb2.GetEventExplorerResponse(
            events=[self._s.activity_event(r) for r in rows], next_page_token=token
        )

    def GetFilterSchema(
        self, request: filter_schema_pb2.GetFilterSchemaRequest, context: grpc.ServicerContext
    ) -> filter_schema_pb2.GetFilterSchemaResponse:
        return self._s.filter_schema(request)

    def GetPropertyValues(
        self, request: activity_pb2.GetPropertyValuesRequest, context: grpc.ServicerContext
    ) -> activity_pb2.GetPropertyValuesResponse:
        return activity_pb2.GetPropertyValuesResponse(values=self._s.property_values(request))

    def GetActivityHeatmap(
        self, request: activity_pb2.GetActivityHeatmapRequest, context: grpc.ServicerContext
    ) -> activity_pb2.GetActivityHeatmapResponse:
        project = current_call().caller.project_id
        start, end = _range_us(request)
        key = self._s.resolve(project, request.distinct_id)
        days = self._s.store.heatmap(project, key, start, end)
        return activity_pb2.GetActivityHeatmapResponse(
            days=[activity_pb2.HeatmapDay(date=d, count=c) for d, c in days]
        )

    def GetProfileStats(
        self, request: activity_pb2.GetProfileStatsRequest, context: grpc.ServicerContext
    ) -> activity_pb2.GetProfileStatsResponse:
        project = current_call().caller.project_id
        key = self._s.resolve(project, request.distinct_id)
        summary = self._s.store.activity(project, [key]).get(key)
        profile = self._s.store.profile(project, external_id=key)
        if summary is None and profile is None:
            raise _not_found(f"profile {request.distinct_id!r}")
        reply = activity_pb2.GetProfileStatsResponse(
            properties=struct_from(profile.properties if profile else {})
        )
        if summary is not None:
            auto = summary.latest_auto
            reply.stats.CopyFrom(
                activity_pb2.ProfileStats(
                    first_seen=from_us(summary.first_us),
                    last_seen=from_us(summary.last_us),
                    total_events=summary.total,
                    browser=_text(auto, "$browser"),
                    browser_version=_text(auto, "$browser_version"),
                    os=_text(auto, "$os"),
                    os_version=_text(auto, "$os_version"),
                    device=_text(auto, "$device_type", "$device"),
                    country=_text(auto, "$country", "$geo_country"),
                    city=_text(auto, "$city", "$geo_city"),
                )
            )
        for day, count in self._s.store.heatmap(project, key, None, None):
            reply.heatmap.add(date=day, count=count)
        return reply


class InsightsServicer(insights_pb2_grpc.InsightsServiceServicer):
    def __init__(self, services: Services) -> None:
        self._s = services

    def Query(
        self, request: insights_pb2.QueryRequest, context: grpc.ServicerContext
    ) -> insights_pb2.QueryResponse:
        return trends(self._s.store, current_call().caller.project_id, request)

    def SegmentUsers(
        self, request: insights_pb2.SegmentUsersRequest, context: grpc.ServicerContext
    ) -> insights_pb2.SegmentUsersResponse:
        raise _unimplemented("InsightsService.SegmentUsers")

    def GetFilterSchema(
        self, request: filter_schema_pb2.GetFilterSchemaRequest, context: grpc.ServicerContext
    ) -> filter_schema_pb2.GetFilterSchemaResponse:
        return self._s.filter_schema(request)

    def GetPropertyValues(
        self, request: insights_pb2.GetPropertyValuesRequest, context: grpc.ServicerContext
    ) -> insights_pb2.GetPropertyValuesResponse:
        return insights_pb2.GetPropertyValuesResponse(values=self._s.property_values(request))


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, services: Services) -> None:
        self._s = services

    def SignInWithEmail(
        self, request: auth_pb2.SignInWithEmailRequest, context: grpc.ServicerContext
    ) -> auth_pb2.SignInWithEmailResponse:
        token, refresh = self._s.sessions.sign_in(request.email, request.password)
        return auth_pb2.SignInWithEmailResponse(token=token, refresh_token=refresh)

    def RefreshSession(
        self, request: auth_pb2.RefreshSessionRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RefreshSessionResponse:
        token, refresh = self._s.sessions.refresh(request.refresh_token)
        return auth_pb2.RefreshSessionResponse(token=token, refresh_token=refresh)

    def SignOut(
        self, request: auth_pb2.SignOutRequest, context: grpc.ServicerContext
    ) -> auth_pb2.SignOutResponse:
        if request.refresh_token:
            self._s.sessions.sign_out(request.refresh_token)
        return auth_pb2.SignOutResponse()

    def DemoSignIn(
        self, request: auth_pb2.DemoSignInRequest, context: grpc.ServicerContext
    ) -> auth_pb2.DemoSignInResponse:
        token, refresh = self._s.sessions.new_session()
        return auth_pb2.DemoSignInResponse(
            token=token, refresh_token=refresh, project_id=self._s.sessions.project_id
        )

    def RequestMagicLink(
        self, request: auth_pb2.RequestMagicLinkRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RequestMagicLinkResponse:
        raise _unimplemented("AuthService.RequestMagicLink (sign in with email and password)")

    def CompleteMagicLink(
        self, request: auth_pb2.CompleteMagicLinkRequest, context: grpc.ServicerContext
    ) -> auth_pb2.CompleteMagicLinkResponse:
        raise _unimplemented("AuthService.CompleteMagicLink (sign in with email and password)")

    def CompleteOAuthSignIn(
        self, request: auth_pb2.CompleteOAuthSignInRequest, context: grpc.ServicerContext
    ) -> auth_pb2.CompleteOAuthSignInResponse:
        raise _unimplemented("AuthService.CompleteOAuthSignIn (sign in with email and password)")


def add_all(services: Services, server: grpc.Server) -> None:
    """Register every servicer of the local server on ``server``."""
    events_pb2_grpc.add_EventsServiceServicer_to_server(EventsServicer(services), server)
    sdk_profiles_pb2_grpc.add_ProfilesSDKServiceServicer_to_server(
        ProfilesSDKServicer(services), server
    )
    profiles_pb2_grpc.add_ProfilesServiceServicer_to_server(ProfilesServicer(services), server)
    activity_pb2_grpc.add_ActivityServiceServicer_to_server(ActivityServicer(services), server)
    insights_pb2_grpc.add_InsightsServiceServicer_to_server(InsightsServicer(services), server)
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(services), server)


SERVED_SERVICES = (
    events_pb2.DESCRIPTOR.services_by_name["EventsService"],
    sdk_profiles_pb2.DESCRIPTOR.services_by_name["ProfilesSDKService"],
    profiles_pb2.DESCRIPTOR.services_by_name["ProfilesService"],
    activity_pb2.DESCRIPTOR.services_by_name["ActivityService"],
    insights_pb2.DESCRIPTOR.services_by_name["InsightsService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
)


def served_methods() -> list[str]:
    """Full paths of every method the local server answers."""
    return [f"/{s.full_name}/{m.name}" for s in SERVED_SERVICES for m in s.methods]
