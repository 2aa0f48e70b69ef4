"""The table of tests/rpc/test_reads_contract.py: one facade call per contract method.

Each contract method maps to one facade call made with plain Python arguments; the call goes to
the loopback server, which must see that exact method path with the request the facade built.
The two ingestion methods (sdk.*) belong to the ``Pug`` ingestion facade and are checked there.
Every method is reached over gRPC and over Connect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from pug_grpc.gen.common.v1 import filter_schema_pb2 as fs
from pug_grpc.gen.common.v1 import time_pb2
from pug_grpc.gen.dashboard.customers.v1 import customers_pb2 as cu
from pug_grpc.gen.dashboard.dashboards.v1 import dashboards_pb2 as db
from pug_grpc.gen.dashboard.orgemailproviders.v1 import orgemailproviders_pb2 as em
from pug_grpc.gen.dashboard.orgs.v1 import orgs_pb2 as og
from pug_grpc.gen.dashboard.projects.v1 import projects_pb2 as pj
from pug_grpc.gen.public.auth.v1 import auth_pb2 as au
from pug_grpc.gen.public.dashboards.v1 import dashboards_pb2 as pd
from pug_grpc.gen.shared.activity.v1 import activity_pb2 as ac
from pug_grpc.gen.shared.insights.v1 import insights_pb2 as ins
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2 as pr

from pug_grpc import PugAdmin
from pug_grpc._rpc.reads import Reads
from tests.support.read_servers import EMAIL, PASSWORD

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 2, 1, tzinfo=UTC)


def _range() -> time_pb2.TimeRange:
    tr = time_pb2.TimeRange()
    getattr(tr, "from").FromDatetime(START)
    tr.to.FromDatetime(END)
    return tr


@dataclass(frozen=True)
class Clients:
    reads: Reads
    admin: PugAdmin


@dataclass(frozen=True)
class Case:
    facade: str  # "Namespace.method" (or "PugAdmin.method")
    call: Callable[[Clients], object]
    expected: Message


def drain(value: object) -> object:
    return list(value) if isinstance(value, Iterator) else value


def _tile() -> dict[str, Any]:
    return {
        "id": "t1",
        "display_name": "Signups",
        "insight": {"spec": {"insight_type": "trends", "events": [{"event": {"kind": "signup"}}]}},
        "position": {"x": 0, "y": 0, "w": 6, "h": 4},
        "view_mode": "line",
        "thresholds": [{"operator": "gt", "value": 10.0, "tone": "good"}],
    }


def _tile_message() -> db.DashboardTileInput:
    spec = ins.InsightQuerySpec(
        insight_type=ins.INSIGHT_TYPE_TRENDS,
        events=[ins.EventQuery(event={"kind": "signup"})],  # type: ignore[arg-type]
    )
    return db.DashboardTileInput(
        id="t1",
        display_name="Signups",
        insight=db.InsightTileContent(spec=spec),
        position=db.GridPosition(x=0, y=0, w=6, h=4),
        view_mode=db.DASHBOARD_TILE_VIEW_MODE_LINE,
        thresholds=[
            db.ThresholdRule(
                operator=db.ThresholdRule.OPERATOR_GT, value=10.0, tone=db.ThresholdRule.TONE_GOOD
            )
        ],
    )


CASES: dict[str, Case] = {
    # shared.profiles.v1.ProfilesService
    "/shared.profiles.v1.ProfilesService/Get": Case(
        "Profiles.get", lambda c: c.reads.profiles.get("p1"), pr.GetRequest(id="p1")
    ),
    "/shared.profiles.v1.ProfilesService/GetByExternalId": Case(
        "Profiles.get_by_external_id",
        lambda c: c.reads.profiles.get_by_external_id("u1"),
        pr.GetByExternalIdRequest(external_id="u1"),
    ),
    "/shared.profiles.v1.ProfilesService/List": Case(
        "Profiles.list",
        lambda c: c.reads.profiles.list(filter_groups_operator="or"),
        pr.ListRequest(filter_groups_operator=2),
    ),
    "/shared.profiles.v1.ProfilesService/Delete": Case(
        "Profiles.delete", lambda c: c.reads.profiles.delete("p1"), pr.DeleteRequest(id="p1")
    ),
    "/shared.profiles.v1.ProfilesService/DeleteDataSubject": Case(
        "Profiles.delete_data_subject",
        lambda c: c.reads.profiles.delete_data_subject("u1"),
        pr.DeleteDataSubjectRequest(external_id="u1"),
    ),
    "/shared.profiles.v1.ProfilesService/GetDeletionRequest": Case(
        "Profiles.get_deletion_request",
        lambda c: c.reads.profiles.get_deletion_request("r1"),
        pr.GetDeletionRequestRequest(request_id="r1"),
    ),
    # shared.activity.v1.ActivityService
    "/shared.activity.v1.ActivityService/GetActivityFeed": Case(
        "Activity.feed_page",
        lambda c: c.reads.activity.feed_page("u1", page_size=10),
        ac.GetActivityFeedRequest(distinct_id="u1", page_size=10),
    ),
    "/shared.activity.v1.ActivityService/GetEventExplorer": Case(
        "Activity.event_explorer_page",
        lambda c: c.reads.activity.event_explorer_page(time_range=(START, END)),
        ac.GetEventExplorerRequest(time_range=_range()),
    ),
    "/shared.activity.v1.ActivityService/GetFilterSchema": Case(
        "Activity.filter_schema",
        lambda c: c.reads.activity.filter_schema(event_kind="signup"),
        fs.GetFilterSchemaRequest(event_kind="signup"),
    ),
    "/shared.activity.v1.ActivityService/GetPropertyValues": Case(
        "Activity.property_values",
        lambda c: c.reads.activity.property_values("plan", source="custom"),
        ac.GetPropertyValuesRequest(property_key="plan", source=fs.PROPERTY_SOURCE_CUSTOM),
    ),
    "/shared.activity.v1.ActivityService/GetActivityHeatmap": Case(
        "Activity.heatmap",
        lambda c: c.reads.activity.heatmap("u1", time_range=(START, END)),
        ac.GetActivityHeatmapRequest(distinct_id="u1", time_range=_range()),
    ),
    "/shared.activity.v1.ActivityService/GetProfileStats": Case(
        "Activity.profile_stats",
        lambda c: c.reads.activity.profile_stats("u1"),
        ac.GetProfileStatsRequest(distinct_id="u1"),
    ),
    # shared.insights.v1.InsightsService
    "/shared.insights.v1.InsightsService/Query": Case(
        "Insights.query",
        lambda c: c.reads.insights.query(
            {"insight_type": "segmentation"}, time_range=(START, END), granularity="month"
        ),
        ins.QueryRequest(
            spec=ins.InsightQuerySpec(insight_type=ins.INSIGHT_TYPE_SEGMENTATION),
            time_range=_range(),
            granularity=ins.GRANULARITY_MONTH,
        ),
    ),
    "/shared.insights.v1.InsightsService/SegmentUsers": Case(
        "Insights.segment_users_page",
        lambda c: c.reads.insights.segment_users_page(time_range=(START, END), page_size=5),
        ins.SegmentUsersRequest(time_range=_range(), page_size=5),
    ),
    "/shared.insights.v1.InsightsService/GetFilterSchema": Case(
        "Insights.filter_schema",
        lambda c: c.reads.insights.filter_schema(allowed_types=["integer"]),
        fs.GetFilterSchemaRequest(allowed_types=[fs.PROPERTY_VALUE_TYPE_INTEGER]),
    ),
    "/shared.insights.v1.InsightsService/GetPropertyValues": Case(
        "Insights.property_values",
        lambda c: c.reads.insights.property_values("$os", source="auto"),
        ins.GetPropertyValuesRequest(property_key="$os", source=fs.PROPERTY_SOURCE_AUTO),
    ),
    # dashboard.orgs.v1.OrgsService
    "/dashboard.orgs.v1.OrgsService/List": Case(
        "Orgs.list", lambda c: c.admin.orgs.list(), og.ListRequest()
    ),
    "/dashboard.orgs.v1.OrgsService/Get": Case(
        "Orgs.get", lambda c: c.admin.orgs.get("o1"), og.GetRequest(org_id="o1")
    ),
    "/dashboard.orgs.v1.OrgsService/UpdateDisplayName": Case(
        "Orgs.update_display_name",
        lambda c: c.admin.orgs.update_display_name("o1", "Acme"),
        og.UpdateDisplayNameRequest(org_id="o1", display_name="Acme"),
    ),
    "/dashboard.orgs.v1.OrgsService/ListMembers": Case(
        "Orgs.list_members",
        lambda c: c.admin.orgs.list_members("o1"),
        og.ListMembersRequest(org_id="o1"),
    ),
    "/dashboard.orgs.v1.OrgsService/RemoveMember": Case(
        "Orgs.remove_member",
        lambda c: c.admin.orgs.remove_member("o1", "c9"),
        og.RemoveMemberRequest(org_id="o1", customer_id="c9"),
    ),
    "/dashboard.orgs.v1.OrgsService/InviteMember": Case(
        "Orgs.invite_member",
        lambda c: c.admin.orgs.invite_member("o1", "new@example.com", role="viewer"),
        og.InviteMemberRequest(org_id="o1", email="new@example.com", role=og.ORG_ROLE_VIEWER),
    ),
    "/dashboard.orgs.v1.OrgsService/ResendInvite": Case(
        "Orgs.resend_invite",
        lambda c: c.admin.orgs.resend_invite("o1", "i1"),
        og.ResendInviteRequest(org_id="o1", invitation_id="i1"),
    ),
    "/dashboard.orgs.v1.OrgsService/RevokeInvite": Case(
        "Orgs.revoke_invite",
        lambda c: c.admin.orgs.revoke_invite("o1", "i1"),
        og.RevokeInviteRequest(org_id="o1", invitation_id="i1"),
    ),
    "/dashboard.orgs.v1.OrgsService/ListInvitations": Case(
        "Orgs.list_invitations",
        lambda c: c.admin.orgs.list_invitations("o1"),
        og.ListInvitationsRequest(org_id="o1"),
    ),
    "/dashboard.orgs.v1.OrgsService/Create": Case(
        "Orgs.create", lambda c: c.admin.orgs.create("Acme"), og.CreateRequest(display_name="Acme")
    ),
    "/dashboard.orgs.v1.OrgsService/Leave": Case(
        "Orgs.leave", lambda c: c.admin.orgs.leave("o1"), og.LeaveRequest(org_id="o1")
    ),
    "/dashboard.orgs.v1.OrgsService/UpdateMemberRole": Case(
        "Orgs.update_member_role",
        lambda c: c.admin.orgs.update_member_role("o1", "c9", "admin"),
        og.UpdateMemberRoleRequest(org_id="o1", customer_id="c9", role=og.ORG_ROLE_ADMIN),
    ),
    # dashboard.projects.v1.ProjectsService
    "/dashboard.projects.v1.ProjectsService/BatchGet": Case(
        "Projects.batch_get",
        lambda c: c.admin.projects.batch_get("o1"),
        pj.BatchGetRequest(org_id="o1"),
    ),
    "/dashboard.projects.v1.ProjectsService/Create": Case(
        "Projects.create",
        lambda c: c.admin.projects.create("o1", "Web", reporting_timezone="UTC"),
        pj.CreateRequest(org_id="o1", display_name="Web", reporting_timezone="UTC"),
    ),
    "/dashboard.projects.v1.ProjectsService/Delete": Case(
        "Projects.delete", lambda c: c.admin.projects.delete(), pj.DeleteRequest()
    ),
    "/dashboard.projects.v1.ProjectsService/Get": Case(
        "Projects.get", lambda c: c.admin.projects.get(), pj.GetRequest()
    ),
    "/dashboard.projects.v1.ProjectsService/UpdateMeta": Case(
        "Projects.update_meta",
        lambda c: c.admin.projects.update_meta(display_name="Web app"),
        pj.UpdateMetaRequest(display_name="Web app"),
    ),
    "/dashboard.projects.v1.ProjectsService/UpdateFCMServiceJSON": Case(
        "Projects.update_fcm_service_json",
        lambda c: c.admin.projects.update_fcm_service_json('{"type": "service_account"}'),
        pj.UpdateFCMServiceJSONRequest(fcm_service_json='{"type": "service_account"}'),
    ),
    "/dashboard.projects.v1.ProjectsService/ListApiKeys": Case(
        "Projects.list_api_keys",
        lambda c: c.admin.projects.list_api_keys(),
        pj.ListApiKeysRequest(),
    ),
    "/dashboard.projects.v1.ProjectsService/CreateApiKey": Case(
        "Projects.create_api_key",
        lambda c: c.admin.projects.create_api_key("private", display_name="backend"),
        pj.CreateApiKeyRequest(kind=pj.API_KEY_KIND_PRIVATE, display_name="backend"),
    ),
    "/dashboard.projects.v1.ProjectsService/DeleteApiKey": Case(
        "Projects.delete_api_key",
        lambda c: c.admin.projects.delete_api_key("k1"),
        pj.DeleteApiKeyRequest(id="k1"),
    ),
    # dashboard.dashboards.v1.DashboardsService
    "/dashboard.dashboards.v1.DashboardsService/Create": Case(
        "Dashboards.create",
        lambda c: c.admin.dashboards.create(
            "KPIs", default_time_range="last_30_days", default_granularity="day"
        ),
        db.DashboardsServiceCreateRequest(
            display_name="KPIs",
            default_time_range=time_pb2.TIME_RANGE_PRESET_LAST_30_DAYS,
            default_granularity=ins.GRANULARITY_DAY,
        ),
    ),
    "/dashboard.dashboards.v1.DashboardsService/Delete": Case(
        "Dashboards.delete",
        lambda c: c.admin.dashboards.delete("d1"),
        db.DashboardsServiceDeleteRequest(id="d1"),
    ),
    "/dashboard.dashboards.v1.DashboardsService/Get": Case(
        "Dashboards.get",
        lambda c: c.admin.dashboards.get("d1"),
        db.DashboardsServiceGetRequest(id="d1"),
    ),
    "/dashboard.dashboards.v1.DashboardsService/List": Case(
        "Dashboards.list", lambda c: c.admin.dashboards.list(), db.DashboardsServiceListRequest()
    ),
    "/dashboard.dashboards.v1.DashboardsService/Update": Case(
        "Dashboards.update",
        lambda c: c.admin.dashboards.update("d1", display_name="KPIs", is_public=True),
        db.DashboardsServiceUpdateRequest(id="d1", display_name="KPIs", is_public=True),
    ),
    "/dashboard.dashboards.v1.DashboardsService/Upsert": Case(
        "Dashboards.upsert",
        lambda c: c.admin.dashboards.upsert("d1", display_name="KPIs", tiles=[_tile()]),
        db.DashboardsServiceUpsertRequest(id="d1", display_name="KPIs", tiles=[_tile_message()]),
    ),
    "/dashboard.dashboards.v1.DashboardsService/QueryDashboard": Case(
        "Dashboards.query",
        lambda c: c.admin.dashboards.query("d1", time_range=(START, END), granularity="week"),
        db.DashboardsServiceQueryDashboardRequest(
            dashboard_id="d1", time_range=_range(), granularity=ins.GRANULARITY_WEEK
        ),
    ),
    # dashboard.orgemailproviders.v1.OrgEmailProvidersService
    "/dashboard.orgemailproviders.v1.OrgEmailProvidersService/Get": Case(
        "EmailProviders.get",
        lambda c: c.admin.email_providers.get("o1"),
        em.GetRequest(org_id="o1"),
    ),
    "/dashboard.orgemailproviders.v1.OrgEmailProvidersService/Set": Case(
        "EmailProviders.set",
        lambda c: c.admin.email_providers.set(
            "o1",
            from_address="noreply@example.com",
            smtp={"host": "smtp.example.com", "port": 587, "username": "u", "password": "pw"},
        ),
        em.SetRequest(
            org_id="o1",
            from_address="noreply@example.com",
            smtp=em.SMTPConfig(host="smtp.example.com", port=587, username="u", password="pw"),
        ),
    ),
    "/dashboard.orgemailproviders.v1.OrgEmailProvidersService/Remove": Case(
        "EmailProviders.remove",
        lambda c: c.admin.email_providers.remove("o1"),
        em.RemoveRequest(org_id="o1"),
    ),
    "/dashboard.orgemailproviders.v1.OrgEmailProvidersService/SendTest": Case(
        "EmailProviders.send_test",
        lambda c: c.admin.email_providers.send_test("o1", "me@example.com"),
        em.SendTestRequest(org_id="o1", recipient="me@example.com"),
    ),
    # dashboard.customers.v1.CustomersService
    "/dashboard.customers.v1.CustomersService/GetMe": Case(
        "Customers.get_me", lambda c: c.admin.customers.get_me(), cu.GetMeRequest()
    ),
    "/dashboard.customers.v1.CustomersService/SetPassword": Case(
        "Customers.set_password",
        lambda c: c.admin.customers.set_password("new-secret-pw"),
        cu.SetPasswordRequest(password="new-secret-pw"),
    ),
    # public.auth.v1.AuthService
    "/public.auth.v1.AuthService/SignInWithEmail": Case(
        "PugAdmin.sign_in_with_email",
        lambda c: c.admin.sign_in_with_email(EMAIL, PASSWORD),
        au.SignInWithEmailRequest(email=EMAIL, password=PASSWORD),
    ),
    "/public.auth.v1.AuthService/RequestMagicLink": Case(
        "PugAdmin.request_magic_link",
        lambda c: c.admin.request_magic_link(EMAIL),
        au.RequestMagicLinkRequest(email=EMAIL),
    ),
    "/public.auth.v1.AuthService/CompleteMagicLink": Case(
        "PugAdmin.complete_magic_link",
        lambda c: c.admin.complete_magic_link("ml-1"),
        au.CompleteMagicLinkRequest(token="ml-1"),
    ),
    "/public.auth.v1.AuthService/CompleteOAuthSignIn": Case(
        "PugAdmin.complete_oauth_sign_in",
        lambda c: c.admin.complete_oauth_sign_in("google", "cred"),
        au.CompleteOAuthSignInRequest(provider=au.O_AUTH_PROVIDER_GOOGLE, credential="cred"),
    ),
    "/public.auth.v1.AuthService/RefreshSession": Case(
        "PugAdmin.refresh", lambda c: c.admin.refresh(), au.RefreshSessionRequest()
    ),
    "/public.auth.v1.AuthService/SignOut": Case(
        "PugAdmin.sign_out", lambda c: c.admin.sign_out(), au.SignOutRequest()
    ),
    "/public.auth.v1.AuthService/DemoSignIn": Case(
        "PugAdmin.demo_sign_in", lambda c: c.admin.demo_sign_in(), au.DemoSignInRequest()
    ),
    # public.dashboards.v1.SharedDashboardsService
    "/public.dashboards.v1.SharedDashboardsService/Query": Case(
        "SharedDashboards.query",
        lambda c: c.admin.shared_dashboards.query("share-1", granularity="day"),
        pd.SharedDashboardsServiceQueryRequest(share_id="share-1", granularity=ins.GRANULARITY_DAY),
    ),
}

# Token-bearing fields whose value comes from the session, not from the call's arguments.
SESSION_FIELDS = {
    "/public.auth.v1.AuthService/RefreshSession",
    "/public.auth.v1.AuthService/SignOut",
}

# The ingestion methods: reached through the `Pug` facade (pug_grpc._pug).
INGESTION = {
    "/sdk.events.v1.EventsService/BatchCreate": "Pug.track / Pug.flush (batched by the worker)",
    "/sdk.profiles.v1.ProfilesSDKService/Identify": "Pug.identify",
}

# Contract methods deliberately left to the typed stubs (reason in the README section): none.
LEFT_TO_STUBS: dict[str, str] = {}
