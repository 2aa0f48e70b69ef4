"""Client-side validation that agrees with the server's protovalidate rules.

The server refuses a whole ``BatchCreate`` when one event breaks a rule, so every event is
checked before it is queued. :func:`event_problem` is the hand-written check used on the
caller's thread (a few hundred nanoseconds); :func:`violations` runs ``protovalidate`` itself
and is the reference the tests compare it with.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any, Final

from google.protobuf.message import Message

from pug_grpc._ingest.properties import _valid_text

__all__ = [
    "event_problem",
    "field_path",
    "identify_problem",
    "is_uuid",
    "valid_kind",
    "violations",
]

_log = logging.getLogger("pug_grpc.validation")

RESERVED_PREFIX: Final = "cookieless-"
ANONYMOUS_PREFIX: Final = "anon-"
MAX_ANONYMOUS_ID_LEN: Final = 255
MAX_DEVICE_ID_LEN: Final = 36

# fullmatch, not ``$``: Python's ``$`` also matches before a trailing newline, RE2's does not.
_KIND: Final = re.compile(r"[a-zA-Z0-9_.\-]+")
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_KIND_CACHE_LIMIT: Final = 4096
_good_kinds: set[str] = set()


def valid_kind(kind: object) -> bool:
    """``kind`` matches ``^[a-zA-Z0-9_.-]+$`` (remembered: a service uses few kinds)."""
    if type(kind) is not str:
        return False
    if kind in _good_kinds:
        return True
    if _KIND.fullmatch(kind) is None:
        return False
    if len(_good_kinds) < _KIND_CACHE_LIMIT:
        _good_kinds.add(kind)
    return True


def is_uuid(value: object) -> bool:
    """The protovalidate ``string.uuid`` rule: 8-4-4-4-12 hex digits, either case."""
    return type(value) is str and len(value) == 36 and _UUID.fullmatch(value) is not None


def event_problem(distinct_id: object, kind: object, session_id: object, event_id: object) -> str:
    """Why an event with these identity fields would be refused, or ``""`` when it would not.

    Properties and timestamps are not checked here: they are normalized into valid values.
    """
    if not valid_kind(kind):
        return "kind must be a non-empty string of letters, digits, '_', '.' or '-'"
    if type(distinct_id) is not str or not distinct_id:
        return "distinct_id must be a non-empty string"
    if distinct_id.startswith(RESERVED_PREFIX):
        return "distinct_id must not start with the reserved 'cookieless-' prefix"
    if not _valid_text(distinct_id):
        return "distinct_id is not valid Unicode text"
    if not is_uuid(session_id):
        return "session_id must be a UUID string"
    if event_id is not None and event_id != "" and not is_uuid(event_id):
        return "event_id must be a UUID string"  # None or "" mean "generate one"
    return ""


def identify_problem(external_id: object, anonymous_id: object, device_id: object) -> str:
    """Why an ``Identify`` with these fields would be refused, or ``""`` when it would not.

    Empty strings mean "not set" (they are left unset on the wire).
    """
    if type(external_id) is not str or not external_id:
        return "external_id must be a non-empty string"
    if external_id.startswith(RESERVED_PREFIX):
        return "external_id must not start with the reserved 'cookieless-' prefix"
    if not _valid_text(external_id):
        return "external_id is not valid Unicode text"
    if type(anonymous_id) is not str:
        return "anonymous_id must be a string"
    if anonymous_id:
        if not anonymous_id.startswith(ANONYMOUS_PREFIX):
            return "anonymous_id must start with 'anon-'"
        if len(anonymous_id) > MAX_ANONYMOUS_ID_LEN:
            return "anonymous_id must be at most 255 characters"
        if not _valid_text(anonymous_id):
            return "anonymous_id is not valid Unicode text"
    if type(device_id) is not str:
        return "device_id must be a string"
    if len(device_id) > MAX_DEVICE_ID_LEN:
        return "device_id must be at most 36 characters"
    if not _valid_text(device_id):
        return "device_id is not valid Unicode text"
    return ""


def coerce_id(value: object) -> object:
    """Accept ``uuid.UUID`` (and ints for ids) where a string id is expected."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def field_path(violation: Any) -> str:
    """The dotted field path of a protovalidate violation (map keys in brackets); "" if none."""
    field = getattr(violation.proto, "field", None)
    elements = getattr(field, "elements", None) or ()
    parts: list[str] = []
    for element in elements:
        name = str(element.field_name)
        # protovalidate's own message classes: the subscript is a small oneof value object.
        subscript = getattr(element, "subscript", None)
        value = getattr(subscript, "value", None) if subscript is not None else None
        if value is not None:
            name += f"[{value!r}]"
        parts.append(name)
    return ".".join(parts)


def violations(message: Message) -> list[str]:
    """Every protovalidate violation of ``message`` as ``"field: message"`` text.

    A rule that protovalidate cannot evaluate (its ``EvaluationError``, see the contract's known
    caveats) counts as passed here: the server remains the final judge.
    """
    import protovalidate  # on first use: it costs about 12 MB, and the hot path never needs it

    try:
        found = protovalidate.collect_violations(message)
    except protovalidate.EvaluationError as exc:
        _log.debug("protovalidate could not evaluate a rule: %s", exc)
        return []
    out = []
    for violation in found:
        path = field_path(violation)
        text = violation.proto.message or violation.proto.rule_id
        out.append(f"{path}: {text}" if path else text)
    return out
