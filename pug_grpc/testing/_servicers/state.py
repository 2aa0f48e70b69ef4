"""What every servicer of the local server shares: the store, clocks, faults and settings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pug_grpc.testing._faults import Faults
from pug_grpc.testing._recording import Recorder
from pug_grpc.testing._sessions import SessionIssuer
from pug_grpc.testing._store import Store

__all__ = ["ServerState"]


@dataclass(frozen=True)
class ServerState:
    """State and settings the servicers read; the call path owns credentials and validation."""

    store: Store
    sessions: SessionIssuer
    faults: Faults
    recorder: Recorder
    clock: Callable[[], float]
    reporting_timezone: dt.tzinfo
    publish_limit_bytes: int | None

    def now_us(self) -> int:
        """The server clock in integer microseconds."""
        return int(self.clock() * 1_000_000)

    def resolve(self, project_id: str, distinct_id: str) -> str:
        """The profile key events of ``distinct_id`` are filed under (after aliasing)."""
        return self.store.resolve(project_id, distinct_id)
