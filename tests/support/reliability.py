"""Shared pieces of the reliability suite.

- Fixed, random-looking credentials for every local server, so the leak guard knows what to
  look for.
- :class:`LeakGuard` (fixture ``leak_guard``): collects every log record of every logger at DEBUG,
  plus every ``on_error`` payload, exception text, ``repr`` and subprocess output a test hands it,
  and fails the test at teardown if an API key, JWT or refresh token shows up in any of them.
- :class:`Reports`: a thread-safe ``on_error`` collector.
- :func:`run_python`: run a child interpreter against a server, with DEBUG logging on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from pug_grpc.gen.sdk.events.v1 import events_pb2

from pug_grpc import BatchSettings, Pug, RetrySettings
from pug_grpc.testing import LocalServer, RecordedCall, local_server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PRIVATE_KEY = "prv_" + secrets.token_hex(20)
PUBLIC_KEY = "pub_" + secrets.token_hex(20)
WRONG_KEY = "prv_" + secrets.token_hex(20)
"""A well-formed key the local server does not know (``UNAUTHENTICATED``)."""
PROJECT_ID = "proj_reliability"

FAST_RETRY = RetrySettings(
    max_attempts=10_000, initial_backoff=0.02, max_backoff=0.2, multiplier=2.0, max_elapsed=60.0
)
"""Retry for a minute with short waits: tests about delivery, not about the default backoff."""


@contextlib.contextmanager
def pug_server(**changes: Any) -> Iterator[LocalServer]:
    """A local server (in memory, free port) that knows this suite's keys."""
    with local_server(
        private_key=PRIVATE_KEY, public_key=PUBLIC_KEY, project_id=PROJECT_ID, **changes
    ) as server:
        yield server


def client(
    server: LocalServer,
    *,
    batch: BatchSettings | None = None,
    retry: RetrySettings | None = None,
    **options: Any,
) -> Pug:
    """A client on ``server`` with short batching and retry waits unless told otherwise."""
    return Pug(
        options.pop("api_key", PRIVATE_KEY),
        server.endpoint,
        options.pop("project_id", PROJECT_ID),
        batch=batch or BatchSettings(max_size=500, max_wait=0.05),
        retry=retry or FAST_RETRY,
        **options,
    )


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def batch_of(call: RecordedCall) -> events_pb2.BatchCreateRequest:
    """The ``BatchCreate`` request a recorded call carried."""
    assert isinstance(call.request, events_pb2.BatchCreateRequest)
    return call.request


def seq_of(event: events_pb2.Event) -> int:
    """The ``seq`` custom property the tests number their events with."""
    return int(event.custom_properties["seq"].int_value)


@dataclass
class Audit:
    """What the server holds for events numbered ``seq`` 0..n-1."""

    received: int
    """Deliveries the server accepted (a redelivery counts again)."""
    ids_by_seq: dict[int, set[str]]
    missing: list[int]
    duplicated_ids: Counter[str]
    """Event ids delivered more than once, with their delivery counts."""

    @property
    def unstable_ids(self) -> dict[int, set[str]]:
        """Events that reached the server under more than one id (a retry re-minted its id)."""
        return {s: ids for s, ids in self.ids_by_seq.items() if len(ids) > 1}

    @property
    def extra_deliveries(self) -> int:
        return sum(n - 1 for n in self.duplicated_ids.values())


def audit(events: Sequence[events_pb2.Event], n: int) -> Audit:
    ids_by_seq: dict[int, set[str]] = {}
    deliveries: Counter[str] = Counter()
    for event in events:
        ids_by_seq.setdefault(seq_of(event), set()).add(event.event_id)
        deliveries[event.event_id] += 1
    return Audit(
        received=len(events),
        ids_by_seq=ids_by_seq,
        missing=[s for s in range(n) if s not in ids_by_seq],
        duplicated_ids=Counter({k: v for k, v in deliveries.items() if v > 1}),
    )


# -- on_error ---------------------------------------------------------------------------


@dataclass
class Report:
    error: BaseException
    items: list[Message]

    @property
    def reason(self) -> str:
        return str(getattr(self.error, "reason", "") or type(self.error).__name__)


class Reports:
    """A thread-safe ``on_error`` collector. ``keep`` caps stored items per report (memory)."""

    def __init__(self, *, keep: int | None = None) -> None:
        self._lock = threading.Lock()
        self._keep = keep
        self.all: list[Report] = []
        self.item_counts: Counter[str] = Counter()

    def __call__(self, error: BaseException, items: Sequence[Message]) -> None:
        kept = list(items) if self._keep is None else list(items[: self._keep])
        with self._lock:
            self.all.append(Report(error, kept))
            self.item_counts[Report(error, []).reason] += len(items)

    def of(self, reason: str) -> list[Report]:
        with self._lock:
            return [r for r in self.all if r.reason == reason]

    def reasons(self) -> Counter[str]:
        with self._lock:
            return Counter(r.reason for r in self.all)

    def event_ids(self, reason: str | None = None) -> list[str]:
        with self._lock:
            return [
                i.event_id
                for r in self.all
                if reason is None or r.reason == reason
                for i in r.items
                if isinstance(i, events_pb2.Event)
            ]

    def texts(self, items_per_report: int = 5) -> Iterator[str]:
        """Everything a report shows: error str/repr/args, its cause chain, a few items."""
        with self._lock:
            reports = list(self.all)
        for report in reports:
            yield from exception_texts(report.error)
            for item in report.items[:items_per_report]:
                yield repr(item)[:100_000]  # an item may hold a multi-megabyte field


def exception_texts(error: BaseException | None) -> Iterator[str]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for render in (str, repr):
            try:
                yield render(error)
            except Exception as exc:  # a hostile __str__ in user data; still scan the rest
                yield f"<{render.__name__} failed: {type(exc).__name__}>"
        yield repr(getattr(error, "args", ()))
        for name in ("details", "debug_error_string"):
            value = getattr(error, name, None)
            if callable(value):
                with contextlib.suppress(Exception):
                    yield str(value())
        error = error.__cause__ or error.__context__


# -- leak guard --------------------------------------------------------------------------


class LeakGuard(logging.Handler):
    """Collects every log record (all loggers, DEBUG) and any text handed to it; finds secrets.

    A secret counts as leaked when any 12-character window of it (its last four characters
    excepted: ``mask()`` shows those on purpose) appears anywhere.
    """

    WINDOW = 12

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self._lock2 = threading.Lock()
        self.records: list[logging.LogRecord] = []
        self.formatted: list[str] = []
        self.unformattable: list[str] = []
        self._texts: list[str] = []
        self._sources: list[Callable[[], Iterable[str]]] = []
        self._secrets: set[str] = {PRIVATE_KEY, PUBLIC_KEY, WRONG_KEY}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception as exc:
            text = f"<unformattable {record.name}: {record.msg!r}: {type(exc).__name__}>"
            with self._lock2:
                self.unformattable.append(text)
        with self._lock2:
            self.records.append(record)
            self.formatted.append(text)

    def watch(self, *secrets_: str | None) -> None:
        """Also look for these (tokens issued during the test)."""
        with self._lock2:
            self._secrets.update(s for s in secrets_ if s)

    def add(self, *texts: object) -> None:
        """Scan these too (reprs, exception texts, subprocess output)."""
        with self._lock2:
            self._texts.extend(t if isinstance(t, str) else repr(t) for t in texts)

    def follow(self, source: Reports | Callable[[], Iterable[str]]) -> None:
        """Scan what this collector holds at teardown."""
        self._sources.append(source.texts if isinstance(source, Reports) else source)

    def reports(self, **options: Any) -> Reports:
        """A new ``on_error`` collector whose payloads are scanned at teardown."""
        collected = Reports(**options)
        self.follow(collected)
        return collected

    def messages(self, logger_prefix: str = "pug_grpc", level: int = logging.DEBUG) -> list[str]:
        with self._lock2:
            pairs = list(zip(self.records, self.formatted, strict=True))
        return [
            text
            for record, text in pairs
            if record.name.startswith(logger_prefix) and record.levelno >= level
        ]

    def fragments(self) -> dict[str, str]:
        """Window -> masked name of the secret it comes from."""
        found: dict[str, str] = {}
        for secret in self._secrets:
            body = secret[:-4]
            if len(body) < self.WINDOW:
                found[body] = "****" + secret[-4:]
                continue
            for start in range(len(body) - self.WINDOW + 1):
                found[body[start : start + self.WINDOW]] = "****" + secret[-4:]
        return found

    def leaks(self) -> list[str]:
        with self._lock2:
            texts = [*self.formatted, *self._texts]
        for source in self._sources:
            texts.extend(source())
        fragments = self.fragments()
        pattern = re.compile("|".join(re.escape(f) for f in sorted(fragments, key=len)[::-1]))
        out = []
        for text in texts:
            hit = pattern.search(text)
            if hit is not None:
                where = text[max(0, hit.start() - 60) : hit.start()]
                out.append(f"{fragments[hit.group(0)]} after {where!r}")
        return out


# -- subprocesses ------------------------------------------------------------------------

CHILD_PRELUDE = """
import logging, os, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                    format="%(levelname)s %(name)s %(message)s")
from pug_grpc import BatchSettings, Pug, RetrySettings
KEY, ENDPOINT = sys.argv[1], sys.argv[2]
def on_error(error, items):
    ids = ",".join(getattr(i, "event_id", "") for i in items)
    print("ON_ERROR", getattr(error, "reason", type(error).__name__), len(items), ids,
          repr(error), flush=True)
"""


def run_python(
    script: str,
    server: LocalServer,
    *,
    timeout: float = 30.0,
    guard: LeakGuard | None = None,
    key: str = PRIVATE_KEY,
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``CHILD_PRELUDE + script`` with the key and endpoint as arguments; time it."""
    args = [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(script), key, server.endpoint]
    start = time.monotonic()
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
    elapsed = time.monotonic() - start
    if guard is not None:
        guard.add(done.stdout, done.stderr)
    return done, elapsed


@dataclass
class ChildReports:
    """The ``ON_ERROR`` lines a child printed."""

    lines: list[list[str]] = field(default_factory=list)

    @classmethod
    def parse(cls, stdout: str) -> ChildReports:
        return cls([ln.split(" ", 4) for ln in stdout.splitlines() if ln.startswith("ON_ERROR")])

    def count(self, reason: str | None = None) -> int:
        return sum(int(p[2]) for p in self.lines if reason is None or p[1] == reason)

    def ids(self) -> list[str]:
        return [i for p in self.lines for i in p[3].split(",") if i]

    def reasons(self) -> set[str]:
        return {p[1] for p in self.lines}


def child_popen(script: str, server: LocalServer) -> subprocess.Popen[str]:
    """Start a child (for signals); the caller waits for it."""
    args = [
        sys.executable,
        "-c",
        CHILD_PRELUDE + textwrap.dedent(script),
        PRIVATE_KEY,
        server.endpoint,
    ]
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
