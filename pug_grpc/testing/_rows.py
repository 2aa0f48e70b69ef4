"""The rows the local server stores, and the typed property values inside them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PAGEVIEW_KINDS",
    "ActivitySummary",
    "DeletionRow",
    "EventRow",
    "ProfileRow",
    "TypedValue",
    "as_text",
    "dump_props",
    "load_props",
]

TypedValue = tuple[str, Any]
"""A property value with its case: ``("s"|"i"|"d"|"b"|"t", value)``; ``t`` is RFC 3339 text."""

PAGEVIEW_KINDS = ("page_view", "screen_view", "$pageview")
"""Kinds counted as page views in a profile's activity summary."""


def dump_props(props: dict[str, TypedValue]) -> str:
    """JSON of ``{key: [case, value]}``: the case survives the round trip through SQLite."""
    return json.dumps(props, separators=(",", ":"), ensure_ascii=False)


def load_props(text: str) -> dict[str, TypedValue]:
    """The inverse of :func:`dump_props`."""
    return {key: (pair[0], pair[1]) for key, pair in json.loads(text).items()}


def as_text(value: TypedValue) -> str:
    """A property value as the text a filter or a value list compares with."""
    case, raw = value
    if case == "b":
        return "true" if raw else "false"
    if case == "d":
        return repr(float(raw))
    return str(raw)


@dataclass(frozen=True)
class EventRow:
    """One stored event, after the server's own additions (``profile_key`` follows aliases)."""

    event_id: str
    kind: str
    distinct_id: str
    session_id: str
    occur_us: int
    auto_props: dict[str, TypedValue]
    custom_props: dict[str, TypedValue]
    received_us: int = 0
    profile_key: str = ""
    seq: int = 0


@dataclass(frozen=True)
class ProfileRow:
    """One stored profile: its traits as plain JSON values."""

    id: str
    external_id: str
    properties: dict[str, Any]
    create_us: int
    update_us: int
    project_id: str = ""


@dataclass(frozen=True)
class DeletionRow:
    """A completed data-subject deletion request."""

    request_id: str
    external_id: str
    profile_id: str
    events_deleted: int
    requested_us: int
    completed_us: int


@dataclass
class ActivitySummary:
    """Per-profile figures computed from its events."""

    first_us: int = 0
    last_us: int = 0
    total: int = 0
    pageviews: int = 0
    sessions: int = 0
    latest_auto: dict[str, TypedValue] = field(default_factory=dict)
