"""Ingestion: ``EventsService.BatchCreate`` and ``ProfilesSDKService.Identify``.

Beyond the request rules (checked by the call path), a batch is refused whole when it repeats
an ``event_id`` (``INVALID_ARGUMENT``, reason ``INVALID_EVENT_BATCH``, no BadRequest detail), and
a batch or identify too large for Pug's queue fails with ``INTERNAL`` "failed to accept events".
The size counted is the serialized request plus what the server writes into each event (the
derived properties of :mod:`pug_grpc.testing._enrichment`, less what it strips) plus
:data:`ENVELOPE_BYTES` per event for the fields Pug's queue message adds (project, receive
time, ids). Accepted events are stored as rows: a redelivery is a second row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence

import grpc

from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2_grpc as sdk_profiles_pb2_grpc
from pug_grpc.testing._call_context import current_call
from pug_grpc.testing._enrichment import enrich
from pug_grpc.testing._rows import EventRow, TypedValue
from pug_grpc.testing._servicers.state import ServerState
from pug_grpc.testing._status import (
    FieldViolation,
    ServerError,
    internal,
    invalid_argument,
)
from pug_grpc.testing._wire_values import struct_to_dict, to_us, typed_value

__all__ = ["ENVELOPE_BYTES", "EventsServicer", "ProfilesSDKServicer", "event_row"]

ENVELOPE_BYTES = 128
"""Bytes counted per event (and per identify) for what Pug's queue message adds."""
_COOKIELESS_WINDOW_US = 86_400 * 1_000_000
_TOO_LARGE = "failed to accept events"
_VALUE_BYTES = {"i": 11, "d": 9, "b": 2, "t": 14}
"""Encoded size of a non-string property value (tag and payload, at most)."""


def _entry_bytes(key: str, value: TypedValue) -> int:
    case, raw = value
    size = len(str(raw).encode()) + 2 if case == "s" else _VALUE_BYTES.get(case, 14)
    return len(key.encode()) + size + 6  # map entry, key and value framing


def _changed_bytes(given: Mapping[str, TypedValue], stored: Mapping[str, TypedValue]) -> int:
    added = sum(_entry_bytes(k, v) for k, v in stored.items() if given.get(k) != v)
    removed = sum(_entry_bytes(k, v) for k, v in given.items() if stored.get(k) != v)
    return added - removed


def _cookieless_id(event: events_pb2.Event, user_agent: str) -> str:
    # Pug derives a daily visitor id from a salted hash; a stable stand-in without the salt.
    day = dt.datetime.fromtimestamp(event.occur_time.seconds, dt.UTC).date().isoformat()
    return "cookieless-" + hashlib.sha256(f"{day}|{user_agent}".encode()).hexdigest()[:16]


def _stored(
    event: events_pb2.Event, received_us: int, metadata: Mapping[str, str]
) -> tuple[EventRow, int]:
    given = {k: typed_value(v) for k, v in event.auto_properties.items()}
    auto = enrich(given, metadata)
    row = EventRow(
        event_id=event.event_id,
        kind=event.kind,
        distinct_id=(
            _cookieless_id(event, metadata.get("user-agent", ""))
            if event.cookieless
            else event.distinct_id
        ),
        session_id=event.session_id,
        occur_us=to_us(event.occur_time),
        auto_props=auto,
        custom_props={k: typed_value(v) for k, v in event.custom_properties.items()},
        received_us=received_us,
    )
    return row, _changed_bytes(given, auto)


def event_row(
    event: events_pb2.Event, *, received_us: int, metadata: Mapping[str, str]
) -> EventRow:
    """The row Pug stores for an event sent with these request headers."""
    return _stored(event, received_us, metadata)[0]


def _refuse_repeated_ids(events: Sequence[events_pb2.Event]) -> None:
    seen: set[str] = set()
    for index, event in enumerate(events):
        key = event.event_id.lower()  # compared as UUIDs: letter case does not make it new
        if key in seen:
            raise invalid_argument(
                f"event[{index}]: duplicate event_id {event.event_id}", "INVALID_EVENT_BATCH"
            )
        seen.add(key)


def _check_size(limit: int | None, request_bytes: int, added_bytes: int, messages: int) -> None:
    if limit is not None and request_bytes + added_bytes + messages * ENVELOPE_BYTES > limit:
        raise internal(_TOO_LARGE)


class EventsServicer(events_pb2_grpc.EventsServiceServicer):
    """``BatchCreate``: accept, enrich and store a batch, or refuse it whole."""

    def __init__(self, state: ServerState) -> None:
        self._s = state

    def BatchCreate(
        self, request: events_pb2.BatchCreateRequest, context: grpc.ServicerContext
    ) -> events_pb2.BatchCreateResponse:
        """Store the batch; drops (injected or cookieless out of range) are counted by reason."""
        call = current_call()
        _refuse_repeated_ids(request.events)
        now_us = self._s.now_us()
        stored = [_stored(event, now_us, call.metadata) for event in request.events]
        added = sum(extra for _, extra in stored)
        _check_size(self._s.publish_limit_bytes, request.ByteSize(), added, len(stored))
        drops = self._s.faults.take_drops(len(request.events))
        reply = events_pb2.BatchCreateResponse()
        kept: list[events_pb2.Event] = []
        rows: list[EventRow] = []
        for index, (event, (row, _)) in enumerate(zip(request.events, stored, strict=True)):
            reason = drops[index] if index < len(drops) else ""
            out_of_range = abs(row.occur_us - now_us) > _COOKIELESS_WINDOW_US
            if not reason and event.cookieless and out_of_range:
                reason = "day_out_of_range"
            if reason:
                reply.dropped += 1
                reply.dropped_by_reason[reason] += 1
            else:
                kept.append(event)
                rows.append(row)
        self._s.store.insert_events(call.caller.project_id, rows)
        reply.accepted = len(kept)
        self._s.recorder.accepted_events(kept)
        return reply


class ProfilesSDKServicer(sdk_profiles_pb2_grpc.ProfilesSDKServiceServicer):
    """``Identify``: shallow-merge traits, and merge an anonymous profile when named."""

    def __init__(self, state: ServerState) -> None:
        self._s = state

    def Identify(
        self, request: sdk_profiles_pb2.IdentifyRequest, context: grpc.ServicerContext
    ) -> sdk_profiles_pb2.IdentifyResponse:
        """Apply the identify at once (Pug applies it asynchronously, in no set order)."""
        if not request.external_id:
            # Set-but-empty passes protovalidate's `required`; a profile cannot be keyed by "".
            raise ServerError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "invalid request: external_id: value is required",
                "INVALID_ARGUMENT",
                violations=[FieldViolation("external_id", "value is required", "required")],
            )
        _check_size(self._s.publish_limit_bytes, request.ByteSize(), 0, 1)
        self._s.store.identify(
            current_call().caller.project_id,
            request.external_id,
            struct_to_dict(request.traits),
            anonymous_id=request.anonymous_id,
            device_id=request.device_id,
            now_us=self._s.now_us(),
        )
        self._s.recorder.accepted_identify(request)
        return sdk_profiles_pb2.IdentifyResponse()
