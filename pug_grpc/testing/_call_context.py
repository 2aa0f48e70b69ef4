"""What the call path knows about the call a handler is serving (a context variable)."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass

from pug_grpc.testing._credential_checks import Caller

__all__ = ["CallInfo", "current_call", "reset_current_call", "set_current_call"]


@dataclass(frozen=True)
class CallInfo:
    """The call being served: its request id, method, caller and (text) metadata."""

    request_id: str
    method: str
    caller: Caller
    metadata: Mapping[str, str]


_CURRENT: contextvars.ContextVar[CallInfo] = contextvars.ContextVar("pug_local_call")


def current_call() -> CallInfo:
    """The call this handler thread is serving."""
    return _CURRENT.get()


def set_current_call(info: CallInfo) -> contextvars.Token[CallInfo]:
    """Make ``info`` the current call; pass the token to :func:`reset_current_call` after."""
    return _CURRENT.set(info)


def reset_current_call(token: contextvars.Token[CallInfo]) -> None:
    """Restore the call that was current before :func:`set_current_call`."""
    _CURRENT.reset(token)
