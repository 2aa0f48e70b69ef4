"""Helpers of the storage tests: reading a spool directory from outside, child processes."""

from __future__ import annotations

import glob
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from pug_grpc.gen.sdk.events.v1 import events_pb2

from pug_grpc.testing import LocalServer
from tests.support.reliability import PRIVATE_KEY, ROOT


def spool_files(directory: Path) -> list[str]:
    """The live spool files in ``directory`` (not the ones set aside)."""
    return sorted(glob.glob(os.path.join(directory, "pug-spool-*.sqlite")))


def spooled_event_ids(directory: Path) -> list[str]:
    """Every event id stored in the spool files, read with SQLite directly."""
    ids: list[str] = []
    for path in spool_files(directory):
        conn = sqlite3.connect(path)
        try:
            for kind, payload in conn.execute("SELECT kind, payload FROM records ORDER BY id"):
                if kind == 0:
                    batch = events_pb2.BatchCreateRequest.FromString(payload)
                    ids.extend(e.event_id for e in batch.events)
        finally:
            conn.close()
    return ids


def spooled_items(directory: Path) -> int:
    """Items stored in the spool files (a file still being created counts 0)."""
    total = 0
    for path in spool_files(directory):
        conn = sqlite3.connect(path)
        try:
            total += conn.execute("SELECT COALESCE(SUM(count), 0) FROM records").fetchone()[0]
        except sqlite3.OperationalError:  # no table yet: its process is creating it
            pass
        finally:
            conn.close()
    return total


CHILD = """
import os, sys, time
from pug_grpc import BatchSettings, Pug, RetrySettings, SqliteStorage
KEY, ENDPOINT, SPOOL = sys.argv[1], sys.argv[2], sys.argv[3]
RETRY = RetrySettings(initial_backoff=0.02, max_backoff=0.2, max_elapsed=600.0)
def on_error(error, items):
    print("ON_ERROR", getattr(error, "reason", type(error).__name__), len(items),
          str(error).replace(chr(10), " "), flush=True)
def client(**options):
    return Pug(KEY, ENDPOINT, "proj_reliability", batch=BatchSettings(max_size=100, max_wait=0.02),
               retry=RETRY, on_error=on_error,
               storage=SqliteStorage(SPOOL, takeover_interval=0.2), **options)
"""


def child(script: str, server: LocalServer, spool: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``CHILD + script`` with the key, endpoint, spool path and ``args`` as arguments."""
    argv = [sys.executable, "-c", CHILD + textwrap.dedent(script), PRIVATE_KEY, server.endpoint]
    argv += [str(spool), *args]
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def wait_for_line(proc: subprocess.Popen[str], prefix: str) -> str:
    """Read the child's stdout until a line starts with ``prefix`` (fails if it ends first)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.strip()
    proc.wait(5)
    errors = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"child ended before {prefix!r}: {errors}")


def wait_for_lines(proc: subprocess.Popen[str], *prefixes: str) -> dict[str, str]:
    """Read the child's stdout until a line with each prefix came, in any order."""
    assert proc.stdout is not None
    seen: dict[str, str] = {}
    for line in proc.stdout:
        for prefix in prefixes:
            if line.startswith(prefix + " ") or line.strip() == prefix:
                seen[prefix] = line.strip()
        if len(seen) == len(prefixes):
            return seen
    proc.wait(5)
    errors = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"child ended with only {sorted(seen)} of {prefixes}: {errors}")
