"""Organisation-level administration: ``orgs``, ``email_providers`` and ``customers``.

These calls name their organisation in the request (``org_id``) and need a JWT session, not an
API key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from pug_grpc._rpc.call import CallContext, CallOptions, unary
from pug_grpc._rpc.convert import request
from pug_grpc._rpc.transport import method
from pug_grpc.gen.dashboard.customers.v1 import customers_pb2
from pug_grpc.gen.dashboard.orgemailproviders.v1 import (
    orgemailproviders_pb2 as mail_pb,
)
from pug_grpc.gen.dashboard.orgs.v1 import orgs_pb2 as pb

__all__ = ["Customers", "EmailProviders", "Orgs"]


_SERVICE = pb.DESCRIPTOR.services_by_name["OrgsService"]
_LIST = method(_SERVICE, "List", pb.ListRequest, pb.ListResponse)
_GET = method(_SERVICE, "Get", pb.GetRequest, pb.GetResponse)
_UPDATE_DISPLAY_NAME = method(
    _SERVICE, "UpdateDisplayName", pb.UpdateDisplayNameRequest, pb.UpdateDisplayNameResponse
)
_LIST_MEMBERS = method(_SERVICE, "ListMembers", pb.ListMembersRequest, pb.ListMembersResponse)
_REMOVE_MEMBER = method(_SERVICE, "RemoveMember", pb.RemoveMemberRequest, pb.RemoveMemberResponse)
_INVITE_MEMBER = method(_SERVICE, "InviteMember", pb.InviteMemberRequest, pb.InviteMemberResponse)
_RESEND_INVITE = method(_SERVICE, "ResendInvite", pb.ResendInviteRequest, pb.ResendInviteResponse)
_REVOKE_INVITE = method(_SERVICE, "RevokeInvite", pb.RevokeInviteRequest, pb.RevokeInviteResponse)
_LIST_INVITATIONS = method(
    _SERVICE, "ListInvitations", pb.ListInvitationsRequest, pb.ListInvitationsResponse
)
_CREATE = method(_SERVICE, "Create", pb.CreateRequest, pb.CreateResponse)
_LEAVE = method(_SERVICE, "Leave", pb.LeaveRequest, pb.LeaveResponse)
_UPDATE_MEMBER_ROLE = method(
    _SERVICE, "UpdateMemberRole", pb.UpdateMemberRoleRequest, pb.UpdateMemberRoleResponse
)

_MAIL_SERVICE = mail_pb.DESCRIPTOR.services_by_name["OrgEmailProvidersService"]
_MAIL_GET = method(_MAIL_SERVICE, "Get", mail_pb.GetRequest, mail_pb.GetResponse)
_MAIL_SET = method(_MAIL_SERVICE, "Set", mail_pb.SetRequest, mail_pb.SetResponse)
_MAIL_REMOVE = method(_MAIL_SERVICE, "Remove", mail_pb.RemoveRequest, mail_pb.RemoveResponse)
_MAIL_SEND_TEST = method(
    _MAIL_SERVICE, "SendTest", mail_pb.SendTestRequest, mail_pb.SendTestResponse
)

_ME_SERVICE = customers_pb2.DESCRIPTOR.services_by_name["CustomersService"]
_ME_GET_ME = method(_ME_SERVICE, "GetMe", customers_pb2.GetMeRequest, customers_pb2.GetMeResponse)
_ME_SET_PASSWORD = method(
    _ME_SERVICE, "SetPassword", customers_pb2.SetPasswordRequest, customers_pb2.SetPasswordResponse
)


class Orgs:
    """Organisations the signed-in customer belongs to, their members and invitations."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx

    def list(
        self, request_: pb.ListRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> pb.ListResponse:
        """The organisations of the signed-in customer, with their role in each."""
        req = request(pb.ListRequest, request_)
        return unary(self._ctx, _LIST, req, options, idempotent=True)

    def get(self, org_id: str | pb.GetRequest, /, **options: Unpack[CallOptions]) -> pb.GetResponse:
        """One organisation by id."""
        req = request(pb.GetRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, _GET, req, options, idempotent=True)

    def create(
        self, display_name: str | pb.CreateRequest, /, **options: Unpack[CallOptions]
    ) -> pb.CreateResponse:
        """A new organisation, with the signed-in customer as its owner."""
        req = request(
            pb.CreateRequest, display_name, first="display_name", required=("display_name",)
        )
        return unary(self._ctx, _CREATE, req, options)

    def update_display_name(
        self,
        org_id: str | pb.UpdateDisplayNameRequest,
        display_name: str | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.UpdateDisplayNameResponse:
        """Rename an organisation."""
        req = request(
            pb.UpdateDisplayNameRequest,
            org_id,
            first="org_id",
            required=("org_id", "display_name"),
            display_name=display_name,
        )
        return unary(self._ctx, _UPDATE_DISPLAY_NAME, req, options)

    def leave(
        self, org_id: str | pb.LeaveRequest, /, **options: Unpack[CallOptions]
    ) -> pb.LeaveResponse:
        """Leave an organisation as the signed-in customer."""
        req = request(pb.LeaveRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, _LEAVE, req, options)

    def list_members(
        self, org_id: str | pb.ListMembersRequest, /, **options: Unpack[CallOptions]
    ) -> pb.ListMembersResponse:
        """The members of an organisation and their roles."""
        req = request(pb.ListMembersRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, _LIST_MEMBERS, req, options, idempotent=True)

    def remove_member(
        self,
        org_id: str | pb.RemoveMemberRequest,
        customer_id: str | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.RemoveMemberResponse:
        """Remove a member from an organisation."""
        req = request(
            pb.RemoveMemberRequest,
            org_id,
            first="org_id",
            required=("org_id", "customer_id"),
            customer_id=customer_id,
        )
        return unary(self._ctx, _REMOVE_MEMBER, req, options)

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
        return unary(self._ctx, _UPDATE_MEMBER_ROLE, req, options)

    def invite_member(
        self,
        org_id: str | pb.InviteMemberRequest,
        email: str | None = None,
        /,
        *,
        role: str | int | None = None,
        **options: Unpack[CallOptions],
    ) -> pb.InviteMemberResponse:
        """Invite someone by email (``role`` as in :meth:`update_member_role`)."""
        req = request(
            pb.InviteMemberRequest,
            org_id,
            first="org_id",
            required=("org_id", "email"),
            email=email,
            role=role,
        )
        return unary(self._ctx, _INVITE_MEMBER, req, options)

    def list_invitations(
        self, org_id: str | pb.ListInvitationsRequest, /, **options: Unpack[CallOptions]
    ) -> pb.ListInvitationsResponse:
        """The organisation's pending invitations."""
        req = request(pb.ListInvitationsRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, _LIST_INVITATIONS, req, options, idempotent=True)

    def resend_invite(
        self,
        org_id: str | pb.ResendInviteRequest,
        invitation_id: str | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.ResendInviteResponse:
        """Mail a pending invitation again (``FAILED_PRECONDITION`` when sent too often)."""
        req = request(
            pb.ResendInviteRequest,
            org_id,
            first="org_id",
            required=("org_id", "invitation_id"),
            invitation_id=invitation_id,
        )
        return unary(self._ctx, _RESEND_INVITE, req, options)

    def revoke_invite(
        self,
        org_id: str | pb.RevokeInviteRequest,
        invitation_id: str | None = None,
        /,
        **options: Unpack[CallOptions],
    ) -> pb.RevokeInviteResponse:
        """Withdraw a pending invitation."""
        req = request(
            pb.RevokeInviteRequest,
            org_id,
            first="org_id",
            required=("org_id", "invitation_id"),
            invitation_id=invitation_id,
        )
        return unary(self._ctx, _REVOKE_INVITE, req, options)


class EmailProviders:
    """The organisation's own outgoing mail (SMTP or Resend) for invitations and reports."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx

    def get(
        self, org_id: str | mail_pb.GetRequest, /, **options: Unpack[CallOptions]
    ) -> mail_pb.GetResponse:
        """The configured provider; its secret comes back redacted."""
        req = request(mail_pb.GetRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, _MAIL_GET, req, options, idempotent=True)

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
        return unary(self._ctx, _MAIL_SET, req, options)

    def remove(
        self, org_id: str | mail_pb.RemoveRequest, /, **options: Unpack[CallOptions]
    ) -> mail_pb.RemoveResponse:
        """Go back to Pug's own outgoing mail."""
        req = request(mail_pb.RemoveRequest, org_id, first="org_id", required=("org_id",))
        return unary(self._ctx, _MAIL_REMOVE, req, options)

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
        return unary(self._ctx, _MAIL_SEND_TEST, req, options)


class Customers:
    """The signed-in customer's own account."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx

    def get_me(
        self, request_: customers_pb2.GetMeRequest | None = None, /, **options: Unpack[CallOptions]
    ) -> customers_pb2.GetMeResponse:
        """The signed-in customer's profile."""
        req = request(customers_pb2.GetMeRequest, request_)
        return unary(self._ctx, _ME_GET_ME, req, options, idempotent=True)

    def set_password(
        self, password: str | customers_pb2.SetPasswordRequest, /, **options: Unpack[CallOptions]
    ) -> customers_pb2.SetPasswordResponse:
        """Set the signed-in customer's password."""
        req = request(
            customers_pb2.SetPasswordRequest, password, first="password", required=("password",)
        )
        return unary(self._ctx, _ME_SET_PASSWORD, req, options)
