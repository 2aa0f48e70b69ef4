"""What the local server received, in arrival order, for tests to inspect and wait on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass

import grpc
from google.protobuf import message

from pug_grpc.gen.sdk.events.v1 import events_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.testing._status import new_request_id

__all__ = ["RecordedCall", "Recorder"]


@dataclass
class RecordedCall:
    """One call the server received: method, metadata, request and how it ended."""

    method: str
    metadata: dict[str, str]
    request: message.Message | None
    request_id: str
    received_at: float
    code: grpc.StatusCode | None = None
    """``None`` while the call runs; ``OK`` or the error code once it has answered."""

    @property
    def short_method(self) -> str:
        """The method's name without its service (``BatchCreate``)."""
        return self.method.rsplit("/", 1)[-1]


class Recorder:
    """Accepted events and identifies, and every call; nothing is kept when ``enabled`` is off
    (a long-running ``pug-grpc serve`` must not grow without bound)."""

    def __init__(self, *, enabled: bool, clock: Callable[[], float]) -> None:
        self.enabled = enabled
        self._clock = clock
        self._events: list[events_pb2.Event] = []
        self._identifies: list[sdk_profiles_pb2.IdentifyRequest] = []
        self._calls: list[RecordedCall] = []
        self._changed = threading.Condition()

    def call(
        self, method: str, metadata: Mapping[str, str], request: message.Message | None
    ) -> RecordedCall:
        """Start the record of one call (kept only when recording is on)."""
        call = RecordedCall(
            method=method,
            metadata=dict(metadata),
            request=request if self.enabled else None,
            request_id=new_request_id(),
            received_at=self._clock(),
        )
        if self.enabled:
            with self._changed:
                self._calls.append(call)
        return call

    def accepted_events(self, events: list[events_pb2.Event]) -> None:
        """Note events the server accepted (a redelivery is noted again)."""
        if self.enabled:
            with self._changed:
                self._events.extend(events)
                self._changed.notify_all()

    def accepted_identify(self, request: sdk_profiles_pb2.IdentifyRequest) -> None:
        """Note an identify request the server accepted."""
        if self.enabled:
            with self._changed:
                self._identifies.append(request)
                self._changed.notify_all()

    @property
    def events(self) -> list[events_pb2.Event]:
        """Accepted events, in arrival order."""
        with self._changed:
            return list(self._events)

    @property
    def identifies(self) -> list[sdk_profiles_pb2.IdentifyRequest]:
        """Accepted identify requests, in arrival order."""
        with self._changed:
            return list(self._identifies)

    @property
    def calls(self) -> list[RecordedCall]:
        """Every call received, in order."""
        with self._changed:
            return list(self._calls)

    def wait_for_events(self, count: int, timeout: float) -> list[events_pb2.Event]:
        """Block until ``count`` events were accepted; ``TimeoutError`` otherwise."""
        with self._changed:
            self._wait(self._events, "events", count, timeout)
            return list(self._events)

    def wait_for_identifies(
        self, count: int, timeout: float
    ) -> list[sdk_profiles_pb2.IdentifyRequest]:
        """Block until ``count`` identify requests were accepted; ``TimeoutError`` otherwise."""
        with self._changed:
            self._wait(self._identifies, "identifies", count, timeout)
            return list(self._identifies)

    def _wait(self, items: Sized, what: str, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(items) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(items)} of {count} {what} arrived in {timeout} s")
            self._changed.wait(left)

    def clear(self) -> None:
        """Forget everything recorded."""
        with self._changed:
            self._events.clear()
            self._identifies.clear()
            self._calls.clear()
