"""The one reading of a caller's timestamp: ingestion, reads and the command line share it.

The rules, everywhere: an aware ``datetime`` is taken as it is and a naive one means UTC;
numbers are seconds since the Unix epoch; text (where a caller may pass text) is RFC 3339 /
ISO 8601, a trailing ``Z`` included, or epoch seconds; the range is that of
``google.protobuf.Timestamp`` (years 1 to 9999). A number out of that range that reads as
milliseconds gets a hint saying so, the most common mistake with epoch timestamps.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Final

__all__ = [
    "MAX_TIMESTAMP_NS",
    "MIN_TIMESTAMP_NS",
    "NS_PER_S",
    "datetime_to_ns",
    "in_timestamp_range",
    "ns_to_datetime",
    "to_ns",
]

NS_PER_S: Final = 1_000_000_000
MIN_TIMESTAMP_NS: Final = -62_135_596_800 * NS_PER_S  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP_NS: Final = 253_402_300_800 * NS_PER_S - 1  # 9999-12-31T23:59:59.999999999Z

_UTC: Final = dt.UTC
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=_UTC)


def datetime_to_ns(value: dt.datetime) -> int:
    """Nanoseconds since the epoch for ``value``; a naive datetime is taken as UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=_UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def in_timestamp_range(ns: int) -> bool:
    """Say whether ``ns`` fits a ``google.protobuf.Timestamp`` (years 1 to 9999)."""
    return MIN_TIMESTAMP_NS <= ns <= MAX_TIMESTAMP_NS


def ns_to_datetime(ns: int) -> dt.datetime:
    """The aware UTC datetime of ``ns`` (to the microsecond)."""
    return _EPOCH + dt.timedelta(microseconds=ns // 1000)


def to_ns(value: object, *, text: bool = False) -> int:
    """Nanoseconds since the epoch for a caller's timestamp; ``ValueError`` says what is wrong.

    Takes a ``datetime`` or epoch seconds (``int`` or ``float``), and with ``text=True`` a
    string holding either.
    """
    shown = value
    if text and isinstance(value, str):
        value = _parse_text(value)
    if isinstance(value, dt.datetime):
        ns = datetime_to_ns(value)
        if not in_timestamp_range(ns):
            raise ValueError(
                f"timestamp {shown!r} is outside the supported range (years 1 to 9999)"
            )
        return ns
    if isinstance(value, bool) or not isinstance(value, int | float):
        accepted = (
            "a datetime, RFC 3339 text or epoch seconds" if text else "a datetime or epoch seconds"
        )
        raise ValueError(f"timestamp must be {accepted}, not {type(value).__name__}")
    if isinstance(value, int):
        ns = value * NS_PER_S
    else:
        if not math.isfinite(value):
            raise ValueError("timestamp must be a finite number of epoch seconds")
        whole = math.floor(value)
        ns = int(whole) * NS_PER_S + round((value - whole) * NS_PER_S)
    if not in_timestamp_range(ns):
        raise ValueError(
            f"timestamp {shown!r} is outside the supported range (years 1 to 9999)"
            + _milliseconds_hint(value)
        )
    return ns


def _parse_text(text: str) -> dt.datetime | float:
    stripped = text.strip()
    if not stripped:
        raise ValueError("timestamp is empty (give RFC 3339 text or epoch seconds)")
    try:
        return float(stripped)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(stripped.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not RFC 3339 text or epoch seconds") from None


def _milliseconds_hint(value: float) -> str:
    """A hint when a number is out of range as epoch seconds but fine as milliseconds."""
    seconds = value / 1000
    if not in_timestamp_range(round(seconds * NS_PER_S)) or seconds < 0:
        return ""
    moment = ns_to_datetime(round(seconds * NS_PER_S))
    shown = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return (
        f"; it looks like milliseconds since the epoch ({moment:%Y-%m-%d %H:%M:%S} UTC):"
        f" give seconds ({shown})"
    )
