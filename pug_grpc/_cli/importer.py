"""Reading and checking historical events for ``pug-grpc import`` (JSON Lines or CSV).

Each row is checked against the contract's event rules before it is queued, so a bad row is
reported with its line number and reason instead of disappearing into the worker's log. Files
are read as bytes and decoded line by line (UTF-8, a leading byte order mark skipped, as Excel
writes it), so a line that is not UTF-8 is one rejected row, not the end of the import.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import protovalidate

from pug_grpc._timestamps import ns_to_datetime, to_ns
from pug_grpc.gen.sdk.events.v1 import events_pb2

__all__ = ["ImportRow", "RowProblem", "detect_format", "parse_timestamp", "read_rows"]

_KNOWN_COLUMNS = ("distinct_id", "kind", "timestamp", "session_id", "event_id", "properties")
_validator = protovalidate.Validator()


@dataclass(frozen=True)
class ImportRow:
    """One good row, ready for ``Pug.track``; ``event_id`` is fixed so a retry cannot duplicate."""

    line: int
    distinct_id: str
    kind: str
    timestamp: dt.datetime
    properties: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    event_id: str = ""


@dataclass(frozen=True)
class RowProblem:
    """A row that cannot be imported, and why."""

    line: int
    reason: str


def parse_timestamp(value: Any) -> dt.datetime:
    """An aware datetime from RFC 3339 text or epoch seconds (the package's one reading:
    naive text means UTC, years 1 to 9999; see :mod:`pug_grpc._timestamps`)."""
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError("timestamp is required (RFC 3339 text or epoch seconds)")
    if not isinstance(value, str | int | float):
        raise ValueError(f"timestamp must be text or a number, not {type(value).__name__}")
    return ns_to_datetime(to_ns(value, text=True))


def _optional_text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    return value


def _check(record: Mapping[str, Any], line: int) -> ImportRow:
    distinct_id = record.get("distinct_id")
    kind = record.get("kind")
    if not isinstance(distinct_id, str) or not distinct_id:
        raise ValueError("distinct_id is required")
    if distinct_id.startswith("cookieless-"):
        raise ValueError("distinct_id must not start with the reserved 'cookieless-' prefix")
    if not isinstance(kind, str) or not kind:
        raise ValueError("kind is required")
    timestamp = parse_timestamp(record.get("timestamp"))
    session_id = _optional_text(record, "session_id")
    event_id = _optional_text(record, "event_id") or str(uuid.uuid4())
    properties = record.get("properties") or {}
    if isinstance(properties, str):
        try:
            properties = json.loads(properties)
        except json.JSONDecodeError:
            raise ValueError("properties is not valid JSON") from None
    if not isinstance(properties, dict):
        raise ValueError("properties must be an object")
    extra = {k: v for k, v in record.items() if k not in _KNOWN_COLUMNS and v not in (None, "")}
    properties = {**extra, **properties}
    for key in properties:
        if not isinstance(key, str) or not key or key.startswith("$"):
            raise ValueError(f"property name {key!r} is not allowed (empty or starts with '$')")
    # The identity fields are checked with the contract's own rules, as the server will.
    probe = events_pb2.Event(event_id=event_id, kind=kind, distinct_id=distinct_id)
    probe.session_id = session_id or str(uuid.uuid4())
    probe.occur_time.FromDatetime(timestamp)
    found = _validator.collect_violations(probe)
    if found:
        first = found[0].proto
        where = ".".join(str(e.field_name) for e in first.field.elements) if first.field else ""
        raise ValueError(f"{where + ': ' if where else ''}{first.message}")
    return ImportRow(line, distinct_id, kind, timestamp, properties, session_id, event_id)


def decoded_lines(stream: Iterable[bytes], problems: list[RowProblem]) -> Iterator[str]:
    """Each line of ``stream`` as text; a line that is not UTF-8 is added to ``problems`` and
    given as an empty line, so that line numbers stay right and the rest is still read."""
    for line, raw in enumerate(stream, start=1):
        try:
            yield raw.decode("utf-8-sig" if line == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            problems.append(
                RowProblem(
                    line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                )
            )
            yield "\n"


def _jsonl(lines: Iterable[str]) -> Iterator[tuple[int, Mapping[str, Any] | str]]:
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield line, f"not valid JSON ({exc.msg})"
            continue
        yield line, record if isinstance(record, dict) else "a row must be a JSON object"


def _csv(lines: Iterable[str]) -> Iterator[tuple[int, Mapping[str, Any] | str]]:
    reader = csv.DictReader(lines)
    missing = [
        c for c in ("distinct_id", "kind", "timestamp") if c not in (reader.fieldnames or ())
    ]
    if missing:
        raise ValueError(f"the CSV header lacks the column(s) {', '.join(missing)}")
    for record in reader:
        if None in record:
            yield reader.line_num, "the row has more cells than the header"
            continue
        yield reader.line_num, dict(record)


def detect_format(path: Path, requested: str | None) -> str:
    """``jsonl`` or ``csv``: as requested, else from the file name's extension."""
    if requested:
        return requested
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {path.name}: use --format jsonl or --format csv")


def read_rows(stream: Iterable[bytes], file_format: str) -> Iterator[ImportRow | RowProblem]:
    """Each row of the binary ``stream``, checked: an :class:`ImportRow` or a problem."""
    undecodable: list[RowProblem] = []
    lines = decoded_lines(stream, undecodable)
    source = _csv(lines) if file_format == "csv" else _jsonl(lines)
    for line, record in source:
        yield from undecodable
        undecodable.clear()
        if isinstance(record, str):
            yield RowProblem(line, record)
            continue
        try:
            yield _check(record, line)
        except ValueError as exc:
            yield RowProblem(line, str(exc))
    yield from undecodable
