"""Process lifecycle in real subprocesses: flush/close, the atexit drain and budget, and fork."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2

from tests.support.loopback import Loopback, serve

KEY = "prv_0123456789abcdefSECRET"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def lb() -> Iterator[Loopback]:
    with serve() as server:
        yield server


def run(
    script: str, endpoint: str, timeout: float = 30
) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), endpoint],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    return done, time.monotonic() - start


PRELUDE = f"""
import os, sys
from pug_grpc import Pug, BatchSettings
KEY = {KEY!r}
ENDPOINT = sys.argv[1]
def on_error(error, items):
    print("ON_ERROR", getattr(error, "reason", type(error).__name__), len(items), flush=True)
"""


def test_flush_and_close_in_a_script(lb: Loopback) -> None:
    done, _ = run(
        PRELUDE
        + """
with Pug(KEY, ENDPOINT, batch=BatchSettings(max_wait=60), on_error=on_error) as pug:
    for i in range(3):
        pug.track("u", "k", {"i": i})
    result = pug.flush(10)
    print("FLUSH", result.completed, result.accepted)
    pug.track("u", "after-flush")
print("CLOSED", pug.stats().sent)
""",
        lb.endpoint,
    )
    assert done.returncode == 0, done.stderr
    assert "FLUSH True 3" in done.stdout
    assert "CLOSED 4" in done.stdout
    assert [e.kind for e in lb.recorder.events()] == ["k", "k", "k", "after-flush"]


def test_atexit_drains_what_is_queued(lb: Loopback) -> None:
    done, _ = run(
        PRELUDE
        + """
pug = Pug(KEY, ENDPOINT, batch=BatchSettings(max_wait=60), on_error=on_error)
for i in range(5):
    pug.track("u", "k", {"i": i})
print("EXITING", flush=True)
""",
        lb.endpoint,
    )
    assert done.returncode == 0, done.stderr
    assert len(lb.recorder.events()) == 5  # max_wait is 60 s: only the exit hook sent them
    assert "ON_ERROR" not in done.stdout


def test_atexit_has_a_fixed_time_budget(lb: Loopback) -> None:
    release = threading.Event()

    def stall(request: Any, context: grpc.ServicerContext) -> Any:
        release.wait(20)
        return events_pb2.BatchCreateResponse(accepted=len(request.events))

    lb.recorder.default = stall
    try:
        done, elapsed = run(
            PRELUDE
            + """
pug = Pug(KEY, ENDPOINT, batch=BatchSettings(max_size=2, max_wait=60), on_error=on_error,
          timeout=30, shutdown_timeout=1.0)
for i in range(5):
    pug.track("u", "k", {"i": i})
""",
            lb.endpoint,
        )
    finally:
        release.set()
    assert done.returncode == 0, done.stderr
    assert elapsed < 10  # 1 s budget plus interpreter start; never the 30 s RPC timeout
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("ON_ERROR")]
    assert lines
    # In flight at the deadline: sent, no reply (UNCONFIRMED); still waiting: UNDELIVERED.
    assert {ln.split()[1] for ln in lines} <= {"UNDELIVERED", "UNCONFIRMED"}
    assert sum(int(ln.split()[2]) for ln in lines) == 5


def test_fork_child_gets_its_own_worker_and_never_resends(lb: Loopback) -> None:
    done, _ = run(
        PRELUDE
        + """
pug = Pug(KEY, ENDPOINT, batch=BatchSettings(max_wait=60), on_error=on_error)
pug.track("parent", "before-fork")          # queued in the parent; its worker is running
parent_session = pug.session_for("parent")
pid = os.fork()
if pid == 0:
    pug.track("parent", "in-child")  # the same user: a new session in the child
    result = pug.flush(10)
    stats = pug.stats()
    print("CHILD", result.completed, result.accepted, stats.enqueued, stats.sent,
          pug.session_for("parent") != parent_session, flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
pug.track("parent", "after-fork")
result = pug.flush(10)
print("PARENT", status, result.completed, result.accepted, pug.stats().sent, flush=True)
pug.close()
""",
        lb.endpoint,
    )
    assert done.returncode == 0, done.stderr
    assert "CHILD True 1 1 1 True" in done.stdout
    assert "PARENT 0 True 2 2" in done.stdout
    kinds = sorted(e.kind for e in lb.recorder.events())
    assert kinds == ["after-fork", "before-fork", "in-child"]  # nothing sent twice


def test_fork_before_first_use(lb: Loopback) -> None:
    done, _ = run(
        PRELUDE
        + """
pug = Pug(KEY, ENDPOINT, batch=BatchSettings(max_wait=60), on_error=on_error)
pids = []
for n in range(2):
    pid = os.fork()
    if pid == 0:
        pug.track(f"child-{n}", "k")
        pug.close()
        os._exit(0)
    pids.append(pid)
print("STATUSES", [os.waitpid(p, 0)[1] for p in pids], flush=True)
""",
        lb.endpoint,
    )
    assert done.returncode == 0, done.stderr
    assert "STATUSES [0, 0]" in done.stdout
    assert sorted(e.distinct_id for e in lb.recorder.events()) == ["child-0", "child-1"]


def test_a_client_dropped_without_close_is_still_drained_at_exit(lb: Loopback) -> None:
    done, _ = run(
        PRELUDE
        + """
import gc
def handler():
    Pug(KEY, ENDPOINT, batch=BatchSettings(max_wait=60), on_error=on_error).track("u", "k")
handler()
gc.collect()
""",
        lb.endpoint,
    )
    assert done.returncode == 0, done.stderr
    assert len(lb.recorder.events()) == 1
