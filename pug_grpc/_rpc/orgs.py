"""Organisation-level administration: ``orgs``, ``email_providers`` and ``customers``.

These calls name their organisation in the request (``org_id``) and need a JWT session, not an
API key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

import grpc

from pug_grpc._rpc.call import CallContext, CallOptions, unary
from pug_grpc._rpc.convert import request
from pug_grpc.gen.dashboard.customers.v1 import customers_pb2, customers_pb2_grpc
from pug_grpc.gen.dashboard.orgemailproviders.v1 import (
    orgemailproviders_pb2 as mail_pb,
)
from pug_grpc.gen.dashboard.orgemailproviders.v1 import (
    orgemailproviders_pb2_grpc as mail_grpc,
)
from pug_grpc.gen.dashboard.orgs.v1 import orgs_pb2 as pb
from pug_grpc.gen.dashboard.orgs.v1 import orgs_pb2_grpc as pb_grpc

__all__ = ["Customers", "EmailProviders", "Orgs"]


class Orgs:
    """Organisations the signed-in customer belongs to, their members and invitations."""

    __slots__ = ("_ctx", "_stub")

    def __init__(self, channel: grpc.Channel, ctx: CallContext) -> None:
        self._ctx = ctx
        self._stub = pb_grpc.OrgsServiceStub(channel)

    def list(
        self, request_: pb.ListRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> pb.ListResponse:
        """The organisations of the signed-in customer, with their role in each."""
        req = request(pb.ListRequest, request_)
        return unary(self._ctx, self._stub.List, req, options, idempotent=True)

    def get(self, org_id: str | pb.GetRequest, /, **options: Unpack[CallOptions]) -> pb.GetResponse:
        req = request(pb.GetRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, self._stub.Get, req, options, idempotent=True)

    def create(
        self, display_name: str | pb.CreateRequest, /, **options: Unpack[CallOptions]
    ) -> pb.CreateResponse:
        req = request(
            pb.CreateRequest, display_name, first="display_name", required=("display_name",)
        )
        return unary(self._ctx, self._stub.Create, req, options)

    def update_display_name(
        self,
        org_id: str | pb.UpdateDisplayNameRequest,
        display_name: str | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.UpdateDisplayNameResponse:
        req = request(
            pb.UpdateDisplayNameRequest,
            org_id,
            first="org_id",
            required=("org_id", "display_name"),
            display_name=display_name,
        )
        return unary(self._ctx, self._stub.UpdateDisplayName, req, options)

    def leave(
        self, org_id: str | pb.LeaveRequest, /, **options: Unpack[CallOptions]
    ) -> pb.LeaveResponse:
        req = request(pb.LeaveRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, self._stub.Leave, req, options)

    def list_members(
        self, org_id: str | pb.ListMembersRequest, /, **options: Unpack[CallOptions]
    ) -> pb.ListMembersResponse:
        req = request(pb.ListMembersRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, self._stub.ListMembers, req, options, idempotent=True)

    def remove_member(
        self,
        org_id: str | pb.RemoveMemberRequest,
        customer_id: str | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.RemoveMemberResponse:
        req = request(
            pb.RemoveMemberRequest,
            org_id,
            first="org_id",
            required=("org_id", "customer_id"),
            customer_id=customer_id,
        )
        return unary(self._ctx, self._stub.RemoveMember, req, options)

    def update_member_role(
        self,
        org_id: str | pb.UpdateMemberRoleRequest,
        customer_id: str | None = None,
        role: str | int | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.UpdateMemberRoleResponse:
        """Change a member's role (``"admin"``, ``"member"`` or ``"viewer"``)."""
        req = request(
            pb.UpdateMemberRoleRequest,
            org_id,
            first="org_id",
            required=("org_id", "customer_id", "role"),
            customer_id=customer_id,
            role=role,
        )
        return unary(self._ctx, self._stub.UpdateMemberRole, req, options)

    def invite_member(
        self,
        org_id: str | pb.InviteMemberRequest,
        email: str | None = None,
        /,
        *,
        role: str | int | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.InviteMemberResponse:
        req = request(
            pb.InviteMemberRequest,
            org_id,
            first="org_id",
            required=("org_id", "email"),
            email=email,
            role=role,
        )
        return unary(self._ctx, self._stub.InviteMember, req, options)

    def list_invitations(
        self, org_id: str | pb.ListInvitationsRequest, /, **options: Unpack[CallOptions]
    ) -> pb.ListInvitationsResponse:
        req = request(pb.ListInvitationsRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, self._stub.ListInvitations, req, options, idempotent=True)

    def resend_invite(
        self,
        org_id: str | pb.ResendInviteRequest,
        invitation_id: str | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.ResendInviteResponse:
        req = request(
            pb.ResendInviteRequest,
            org_id,
            first="org_id",
            required=("org_id", "invitation_id"),
            invitation_id=invitation_id,
        )
        return unary(self._ctx, self._stub.ResendInvite, req, options)

    def revoke_invite(
        self,
        org_id: str | pb.RevokeInviteRequest,
        invitation_id: str | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.RevokeInviteResponse:
        req = request(
            pb.RevokeInviteRequest,
            org_id,
            first="org_id",
            required=("org_id", "invitation_id"),
            invitation_id=invitation_id,
        )
        return unary(self._ctx, self._stub.RevokeInvite, req, options)


class EmailProviders:
    """The organisation's own outgoing mail (SMTP or Resend) for invitations and reports."""

    __slots__ = ("_ctx", "_stub")

    def __init__(self, channel: grpc.Channel, ctx: CallContext) -> None:
        self._ctx = ctx
        self._stub = mail_grpc.OrgEmailProvidersServiceStub(channel)

    def get(
        self, org_id: str | mail_pb.GetRequest, /, **options: Unpack[CallOptions]
    ) -> mail_pb.GetResponse:
        """The configured provider; its secret comes back redacted."""
        req = request(mail_pb.GetRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, self._stub.Get, req, options, idempotent=True)

    def set(
        self,
        org_id: str | mail_pb.SetRequest,
        /,
        *,
        from_address: str | None = None,
        reply_to: str | None = None,
        smtp: mail_pb.SMTPConfig | Mapping[str, Any] | None = None,
        resend: mail_pb.ResendConfig | Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> mail_pb.SetResponse:
        """Configure SMTP (``smtp={"host": ..., "port": 587, ...}``) or Resend (``resend=...``)."""
        req = request(
            mail_pb.SetRequest,
            org_id,
            first="org_id",
            required=("org_id", "from_address"),
            from_address=from_address,
            reply_to=reply_to,
            smtp=smtp,
            resend=resend,
        )
        return unary(self._ctx, self._stub.Set, req, options)

    def remove(
        self, org_id: str | mail_pb.RemoveRequest, /, **options: Unpack[CallOptions]
    ) -> mail_pb.RemoveResponse:
        req = request(mail_pb.RemoveRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, self._stub.Remove, req, options)

    def send_test(
        self,
        org_id: str | mail_pb.SendTestRequest,
        recipient: str | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> mail_pb.SendTestResponse:
        """Send a test mail through the configured provider; failures come back in the reply."""
        req = request(
            mail_pb.SendTestRequest,
            org_id,
            first="org_id",
            required=("org_id", "recipient"),
            recipient=recipient,
        )
        return unary(self._ctx, self._stub.SendTest, req, options)


class Customers:
    """The signed-in customer's own account."""

    __slots__ = ("_ctx", "_stub")

    def __init__(self, channel: grpc.Channel, ctx: CallContext) -> None:
        self._ctx = ctx
        self._stub = customers_pb2_grpc.CustomersServiceStub(channel)

    def get_me(
        self, request_: customers_pb2.GetMeRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> customers_pb2.GetMeResponse:
        req = request(customers_pb2.GetMeRequest, request_)
        return unary(self._ctx, self._stub.GetMe, req, options, idempotent=True)

    def set_password(
        self, password: str | customers_pb2.SetPasswordRequest, /, **options: Unpack[CallOptions]
    ) -> customers_pb2.SetPasswordResponse:
        req = request(
            customers_pb2.SetPasswordRequest, password, first="password", required=("password",)
        )
        return unary(self._ctx, self._stub.SetPassword, req, options)
