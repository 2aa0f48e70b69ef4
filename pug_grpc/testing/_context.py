"""What the call wrapper knows about the call a handler is serving."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass

from pug_grpc.testing._auth import Caller

__all__ = ["CallInfo", "current_call"]


@dataclass(frozen=True)
class CallInfo:
    request_id: str
    method: str
    caller: Caller
    metadata: Mapping[str, str]


_CURRENT: contextvars.ContextVar[CallInfo] = contextvars.ContextVar("pug_local_call")


def current_call() -> CallInfo:
    return _CURRENT.get()


def set_current_call(info: CallInfo) -> contextvars.Token[CallInfo]:
    return _CURRENT.set(info)


def reset_current_call(token: contextvars.Token[CallInfo]) -> None:
    _CURRENT.reset(token)
