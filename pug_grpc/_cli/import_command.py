"""``pug-grpc import FILE``: check each row, send the good ones, count every outcome by reason.

A rejected row is reported with its line number (the first :data:`SHOWN_ROWS` of them; all are
counted). Every other row ends in exactly one of the client's outcomes (``stats()``, one client
per import): stored, dropped by the server per reason, or not delivered per cause, the
dead-letter causes read from the ``on_error`` reports. The exit status is 0 only when every
row was stored.

A row whose kind names a catalogued event but breaks its rules is sent as given (Pug accepts
any properties for any kind) and counted per kind and rule in the summary; ``--strict-catalog``
rejects it instead. A row without a session id gets its user's session, renewed after 30
minutes between the user's events (by their timestamps).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from typing import BinaryIO, TextIO

from google.protobuf.message import Message

from pug_grpc._cli.commands import CliError, check_reachable, client, one_line
from pug_grpc._cli.console import Console
from pug_grpc._cli.importer import ImportRow, detect_format, read_rows
from pug_grpc._cli.progress import Progress
from pug_grpc._cli.summary import ImportCounts, reason_key, render_summary
from pug_grpc._ingest.outcomes import (
    EVENTS_DROPPED,
    INVALID_EVENT,
    QUEUE_OVERFLOW,
    UNACKNOWLEDGED,
    UNCONFIRMED,
    UNDELIVERED,
    Stats,
)

__all__ = ["SHOWN_ROWS", "error_reason", "run_import"]

SHOWN_ROWS = 100
_EXIT_FAILED = 1


def error_reason(error: BaseException) -> str:
    """How an ``on_error`` report is counted: its status code, message and reason (no ids)."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if code is None or not isinstance(message, str):
        return reason_key(one_line(error))
    reason = getattr(error, "reason", "")
    text = f"{getattr(code, 'name', code)}: {one_line(ValueError(message))}"
    return reason_key(text + (f" (reason={reason})" if reason else ""))


_FROM_STATS = frozenset({EVENTS_DROPPED, UNACKNOWLEDGED, QUEUE_OVERFLOW, UNDELIVERED, UNCONFIRMED})
"""Reasons whose counts come from ``stats()`` (exact), not from the reports (capped items)."""


class _Outcomes:
    """The counts per reason: the client's exact outcomes, with its reports saying why."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rejected: Counter[str] = Counter()
        self.dead: Counter[str] = Counter()
        self.stats = Stats()

    def on_error(self, error: BaseException, items: Sequence[Message]) -> None:
        reason = getattr(error, "reason", "")
        if reason in _FROM_STATS:
            return
        bucket = self.rejected if reason == INVALID_EVENT else self.dead
        with self.lock:
            bucket[error_reason(error)] += max(1, len(items))

    def take_stats(self, stats: Stats) -> None:
        """Read the client's counters (one client per import: they count this import alone)."""
        with self.lock:
            self.stats = stats

    def counts(self, rows: int, rejected_rows: Counter[str], seconds: float) -> ImportCounts:
        with self.lock:
            stats = self.stats
            undelivered = Counter(self.dead)
            unexplained = stats.dead_lettered - sum(undelivered.values())
            if unexplained > 0:  # dead-lettered without a report we could read
                undelivered["not delivered"] += unexplained
            for label, count in (
                ("queue full: the oldest events were dropped", stats.overflowed),
                ("not sent before the deadline", stats.undelivered),
                ("sent, no reply before the deadline (the server may have stored them)",
                 stats.unconfirmed),
                ("the server answered OK but did not account for them", stats.unacknowledged),
            ):  # fmt: skip
                if count:
                    undelivered[label] += count
            return ImportCounts(
                rows=rows,
                stored=stats.accepted,
                seconds=seconds,
                rejected=rejected_rows + self.rejected,
                undelivered=undelivered,
                dropped=Counter(stats.dropped_by_reason),
                catalog=Counter(stats.catalog_mismatches_by_rule),
            )


def _open(args: argparse.Namespace, stack: ExitStack) -> tuple[BinaryIO, int | None]:
    if str(args.file) == "-":
        return sys.stdin.buffer, None
    try:
        stream = stack.enter_context(args.file.open("rb"))
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    with args.file.open("rb") as counting:
        total = sum(1 for _ in counting)
    return stream, total


def run_import(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    """Import the file; prints the summary and returns the exit status."""
    file_format = detect_format(
        args.file, args.format or ("jsonl" if str(args.file) == "-" else None)
    )
    outcomes = _Outcomes()
    rejected_rows: Counter[str] = Counter()
    rows = queued = 0
    started = time.perf_counter()
    with ExitStack() as stack:
        stream, total = _open(args, stack)
        pug = stack.enter_context(
            client(
                args,
                on_error=outcomes.on_error,
                strict_catalog=bool(getattr(args, "strict_catalog", False)),
            )
        )
        check_reachable(args, pug)
        enabled = False if args.no_progress else None
        bar = stack.enter_context(Progress(total, "importing", console=console, enabled=enabled))

        def settle() -> None:
            result = pug.flush(timeout=max(args.timeout, 60.0))
            if not result.completed:
                raise CliError("the server did not acknowledge the import in time")

        for row in read_rows(stream, file_format):
            rows += 1
            bar.update(row.line)
            if not isinstance(row, ImportRow):
                if sum(rejected_rows.values()) < SHOWN_ROWS:
                    console.note(f"line {row.line}: rejected: {row.reason}")
                elif sum(rejected_rows.values()) == SHOWN_ROWS:
                    console.note("further rejected rows are counted in the summary only")
                rejected_rows[reason_key(row.reason)] += 1
                continue
            pug.track(
                row.distinct_id,
                row.kind,
                row.properties,
                timestamp=row.timestamp,
                session_id=row.session_id,
                event_id=row.event_id,
            )
            queued += 1
            if queued % args.chunk == 0:
                settle()
        settle()
        outcomes.take_stats(pug.stats())
    counts = outcomes.counts(rows, rejected_rows, time.perf_counter() - started)
    out.write(render_summary(str(args.file), counts))
    return 0 if counts.ok else _EXIT_FAILED
