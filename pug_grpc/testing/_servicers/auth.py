"""``AuthService``: email and password sign-in, refresh, sign-out and demo sign-in.

The magic-link and OAuth flows need mail and an identity provider; they answer
``UNIMPLEMENTED`` with a message pointing at email and password.
"""

from __future__ import annotations

import grpc

from pug_grpc.gen.public.auth.v1 import auth_pb2, auth_pb2_grpc
from pug_grpc.testing._servicers.state import ServerState
from pug_grpc.testing._status import unimplemented

__all__ = ["AuthServicer"]

_USE_PASSWORD = "(sign in with email and password)"


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """Sessions of the one configured user."""

    def __init__(self, state: ServerState) -> None:
        self._s = state

    def SignInWithEmail(
        self, request: auth_pb2.SignInWithEmailRequest, context: grpc.ServicerContext
    ) -> auth_pb2.SignInWithEmailResponse:
        """A new session for the configured email and password."""
        token, refresh = self._s.sessions.sign_in(request.email, request.password)
        return auth_pb2.SignInWithEmailResponse(token=token, refresh_token=refresh)

    def RefreshSession(
        self, request: auth_pb2.RefreshSessionRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RefreshSessionResponse:
        """A new token pair for a refresh token (which is spent)."""
        token, refresh = self._s.sessions.refresh(request.refresh_token)
        return auth_pb2.RefreshSessionResponse(token=token, refresh_token=refresh)

    def SignOut(
        self, request: auth_pb2.SignOutRequest, context: grpc.ServicerContext
    ) -> auth_pb2.SignOutResponse:
        """Revoke the session of a refresh token."""
        if request.refresh_token:
            self._s.sessions.sign_out(request.refresh_token)
        return auth_pb2.SignOutResponse()

    def DemoSignIn(
        self, request: auth_pb2.DemoSignInRequest, context: grpc.ServicerContext
    ) -> auth_pb2.DemoSignInResponse:
        """A session for the configured user, without a password."""
        token, refresh = self._s.sessions.new_session()
        return auth_pb2.DemoSignInResponse(
            token=token, refresh_token=refresh, project_id=self._s.sessions.project_id
        )

    def RequestMagicLink(
        self, request: auth_pb2.RequestMagicLinkRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RequestMagicLinkResponse:
        """Not implemented by the local server."""
        raise unimplemented(f"AuthService.RequestMagicLink {_USE_PASSWORD}")

    def CompleteMagicLink(
        self, request: auth_pb2.CompleteMagicLinkRequest, context: grpc.ServicerContext
    ) -> auth_pb2.CompleteMagicLinkResponse:
        """Not implemented by the local server."""
        raise unimplemented(f"AuthService.CompleteMagicLink {_USE_PASSWORD}")

    def CompleteOAuthSignIn(
        self, request: auth_pb2.CompleteOAuthSignInRequest, context: grpc.ServicerContext
    ) -> auth_pb2.CompleteOAuthSignInResponse:
        """Not implemented by the local server."""
        raise unimplemented(f"AuthService.CompleteOAuthSignIn {_USE_PASSWORD}")
