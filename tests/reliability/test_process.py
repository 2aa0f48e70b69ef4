"""Shutdown, exit, SIGTERM and fork, in real processes against the local server.

Children log at DEBUG to stderr and print every ``on_error`` report as an ``ON_ERROR`` line;
the leak guard scans both.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

from pug_grpc import BatchSettings
from pug_grpc._ingest.outcomes import UNCONFIRMED, UNDELIVERED
from pug_grpc.testing import LocalServer
from tests.support.reliability import (
    ChildReports,
    LeakGuard,
    audit,
    batch_of,
    child_popen,
    client,
    pug_server,
    run_python,
    seq_of,
)

pytestmark = pytest.mark.timeout(60)

DOWN_MODES = ["refused", "hanging"]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with pug_server() as running:
        yield running


def take_down(server: LocalServer, mode: str) -> None:
    """``refused``: nothing listens on the port. ``hanging``: calls are accepted, never answered."""
    if mode == "refused":
        server.stop(grace=None)
    else:
        server.faults.set_latency(30.0)


def by_distinct_id(events: list[events_pb2.Event]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for event in events:
        out.setdefault(event.distinct_id, []).append(seq_of(event))
    return {k: sorted(v) for k, v in out.items()}


# -- close(timeout) ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", DOWN_MODES)
def test_close_with_the_server_down_returns_in_time_and_reports_everything(
    server: LocalServer,
    leak_guard: LeakGuard,
    mode: str,
) -> None:
    reports = leak_guard.reports()
    pug = client(
        server, batch=BatchSettings(max_size=100, max_wait=60), on_error=reports, timeout=30
    )
    take_down(server, mode)
    for seq in range(2_000):
        pug.track("user-1", "close.test", {"seq": seq})
        if seq % 500 == 0:
            pug.identify("user-1", {"n": seq})
    time.sleep(0.2)  # the worker is now retrying (refused) or waiting on a reply (hanging)
    start = time.monotonic()
    pug.close(timeout=1.0)
    elapsed = time.monotonic() - start
    print(f"close(timeout=1.0) with the server {mode}: {elapsed:.2f} s")
    assert elapsed < 1.0 + 0.3
    # Sent without a reply: UNCONFIRMED (it may have been stored); never sent: UNDELIVERED.
    assert set(reports.reasons()) <= {UNDELIVERED, UNCONFIRMED}
    items = [i for r in reports.all for i in r.items]
    seqs = Counter(seq_of(i) for i in items if isinstance(i, events_pb2.Event))
    assert seqs == Counter(range(2_000)), "every event reported, each exactly once"
    identifies = [i for i in items if isinstance(i, profiles_pb2.IdentifyRequest)]
    assert len(identifies) == 4
    stats = pug.stats()
    assert (stats.sent, stats.dead_lettered, stats.queue_depth) == (0, 0, 0)
    assert stats.undelivered + stats.unconfirmed == 2_004
    assert reports.item_counts[UNDELIVERED] == stats.undelivered
    assert reports.item_counts[UNCONFIRMED] == stats.unconfirmed
    unconfirmed_items = [i for r in reports.of(UNCONFIRMED) for i in r.items]
    unconfirmed = {seq_of(i) for i in unconfirmed_items if isinstance(i, events_pb2.Event)}
    if mode == "hanging":
        # Exactly what the server received (and never answered) is unconfirmed.
        received = {seq_of(e) for c in server.calls_to("BatchCreate") for e in batch_of(c).events}
        assert received
        assert unconfirmed == received
        assert stats.unconfirmed == len(received) + len(server.calls_to("Identify"))
    else:
        # Nothing listens: at most the one request probing the outage was out at the deadline.
        assert stats.unconfirmed <= 1_000
        assert stats.undelivered >= 1_004
    assert server.events == []


# -- exit without close() ----------------------------------------------------------------


def test_exit_without_close_delivers_through_atexit(
    server: LocalServer,
    leak_guard: LeakGuard,
) -> None:
    done, elapsed = run_python(
        """
        pug = Pug(KEY, ENDPOINT, batch=BatchSettings(max_size=100, max_wait=60), on_error=on_error)
        for seq in range(3_000):
            pug.track("exiting", "atexit.test", {"seq": seq})
        pug.identify("exiting", {"plan": "pro"})
        print("EXITING", pug.stats().sent, flush=True)  # max_wait is 60 s: only exit sends
        """,
        server,
        guard=leak_guard,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ON_ERROR" not in done.stdout
    found = audit(server.events, 3_000)
    assert found.missing == []
    assert found.duplicated_ids == {}
    assert [i.external_id for i in server.identifies] == ["exiting"]
    print(f"child tracked 3,000 events and exited in {elapsed:.2f} s")


@pytest.mark.parametrize("mode", DOWN_MODES)
def test_exit_with_the_server_down_is_bounded_and_reports_everything(
    server: LocalServer,
    leak_guard: LeakGuard,
    mode: str,
) -> None:
    take_down(server, mode)
    done, elapsed = run_python(
        """
        pug = Pug(KEY, ENDPOINT, batch=BatchSettings(max_size=100, max_wait=60),
                  on_error=on_error, timeout=30, shutdown_timeout=1.0)
        for seq in range(500):
            pug.track("exiting", "atexit.down", {"seq": seq})
        """,
        server,
        guard=leak_guard,
        timeout=30,
    )
    print(f"exit with the server {mode}: {elapsed:.2f} s (budget 1 s)")
    assert done.returncode == 0, done.stderr[-2000:]
    # 1 s budget, at most about 1 s more to cancel the call in flight, plus interpreter start.
    assert elapsed < 5.0
    reports = ChildReports.parse(done.stdout)
    # Never sent: UNDELIVERED; sent and never answered (hanging): UNCONFIRMED.
    assert reports.reasons() <= {UNDELIVERED, UNCONFIRMED}
    if mode == "hanging":
        received = sum(len(batch_of(c).events) for c in server.calls_to("BatchCreate"))
        assert received > 0
        assert reports.count(UNCONFIRMED) == received
    assert reports.count() == 500
    assert len(set(reports.ids())) == 500


# -- SIGTERM -----------------------------------------------------------------------------

SIGTERM_EXAMPLE = """
import signal
import sys

def exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # a normal exit: atexit hooks run, so Pug drains its queue

signal.signal(signal.SIGTERM, exit_on_sigterm)
"""
"""The SIGTERM snippet of docs/guarantees.md, verbatim."""

SIGTERM_CHILD = """
import time
pug = Pug(KEY, ENDPOINT, batch=BatchSettings(max_size=100, max_wait=60), on_error=on_error)
for seq in range(1_000):
    pug.track("terminated", "sigterm.test", {"seq": seq})
print("READY", flush=True)
# A long-running service, until it is told to stop. Short sleeps: a signal that lands while
# the main thread is entering one long sleep runs its handler only when the sleep ends
# (CPython checks for signals between bytecodes), which made this test wait 30 s under load.
for _ in range(300):
    time.sleep(0.1)
print("NOT TERMINATED", flush=True)
"""


@pytest.mark.parametrize("handler", [True, False], ids=["with-handler", "default-action"])
def test_sigterm_with_the_documented_handler_delivers_the_queue(
    server: LocalServer,
    leak_guard: LeakGuard,
    handler: bool,
) -> None:
    child = child_popen((SIGTERM_EXAMPLE if handler else "") + SIGTERM_CHILD, server)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        start = time.monotonic()
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=20)
        elapsed = time.monotonic() - start
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
    leak_guard.add(stdout, stderr)
    assert "NOT TERMINATED" not in stdout
    if handler:
        assert child.returncode == 128 + signal.SIGTERM, stderr[-2000:]
        assert elapsed < 5.0
        assert "ON_ERROR" not in stdout
        found = audit(server.events, 1_000)
        assert found.missing == []
        assert found.duplicated_ids == {}
    else:
        # Python's default action kills the process without running atexit: the queue is
        # lost. This is why docs/guarantees.md documents the handler.
        assert child.returncode == -signal.SIGTERM
        assert server.events == []


# -- fork --------------------------------------------------------------------------------

FORK_PARENT = """
pug = Pug(KEY, ENDPOINT, batch=BatchSettings(max_size=100, max_wait=60), on_error=on_error)
for seq in range(200):  # two full batches: sent at once
    pug.track("parent", "fork.parent", {"seq": seq})
assert pug.flush(10).completed  # acknowledged: nothing is in flight at the fork
for seq in range(200, 250):  # still queued in the parent when it forks (max_wait is 60 s)
    pug.track("parent", "fork.parent", {"seq": seq})
"""
FORK_PARENT_AFTER = """
for seq in range(250, 300):
    pug.track("parent", "fork.parent", {"seq": seq})
# The parent exits without close() too: its exit hook sends what it still holds.
"""

FORK_IN_FLIGHT = """
pug = Pug(KEY, ENDPOINT, batch=BatchSettings(max_size=100, max_wait=60), on_error=on_error,
          retry=RetrySettings(initial_backoff=0.05, max_backoff=0.2))
for seq in range(100):  # one full batch: sent at once; the server takes 0.5 s to answer
    pug.track("parent", "fork.parent", {"seq": seq})
for seq in range(100, 150):  # queued behind it
    pug.track("parent", "fork.parent", {"seq": seq})
time.sleep(0.2)
pid = os.fork()
if pid == 0:
    for seq in range(120):
        pug.track("child-0", "fork.child", {"seq": seq})
    sys.exit(0)
os.waitpid(pid, 0)
pug.close(timeout=10)
print("PARENT", pug.stats().accepted, pug.stats().sent, flush=True)
"""


def test_fork_while_a_request_is_in_flight_redelivers_at_most_that_request(
    server: LocalServer,
    leak_guard: LeakGuard,
) -> None:
    """gRPC's fork handling may cut the parent's connection (and the call on it) at the fork:
    that call is then retried, a lost reply as far as the client can tell. Nothing else is
    sent twice, and the child never sends the parent's events."""
    server.faults.set_latency(0.5, "BatchCreate")
    done, _ = run_python("import time\n" + FORK_IN_FLIGHT, server, guard=leak_guard)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ON_ERROR" not in done.stdout
    assert "PARENT 150 150" in done.stdout, "the parent was told 'accepted' once per event"
    got = by_distinct_id(server.events)
    assert sorted(set(got["parent"])) == list(range(150))
    assert got["child-0"] == list(range(120))
    first_batch = {e.event_id for e in batch_of(server.calls_to("BatchCreate")[0]).events}
    again = Counter(e.event_id for e in server.events)
    redelivered = {i for i, n in again.items() if n > 1}
    print(f"redelivered after the fork: {len(redelivered)} event(s)")
    assert redelivered <= first_batch
    assert audit([e for e in server.events if e.distinct_id == "parent"], 150).unstable_ids == {}


def check_fork_delivery(server: LocalServer, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ON_ERROR" not in done.stdout
    ids = Counter(e.event_id for e in server.events)
    assert [i for i, n in ids.items() if n > 1] == [], "an event was delivered twice"
    got = by_distinct_id(server.events)
    assert got.pop("parent") == list(range(300)), "the parent's events, each exactly once"
    assert got == {"child-0": list(range(120)), "child-1": list(range(120))}
    assert sorted(i.external_id for i in server.identifies) == ["child-0", "child-1"]


def test_os_fork_children_deliver_and_the_parents_queue_is_sent_once(
    server: LocalServer,
    leak_guard: LeakGuard,
) -> None:
    done, _ = run_python(
        FORK_PARENT
        + """
for n in range(2):
    pid = os.fork()
    if pid == 0:
        for seq in range(120):
            pug.track(f"child-{n}", "fork.child", {"seq": seq})
        pug.identify(f"child-{n}")
        sys.exit(0)  # a normal exit without close(): the child's exit hook delivers
    _, status = os.waitpid(pid, 0)
    print("CHILD", n, status, flush=True)
"""
        + FORK_PARENT_AFTER,
        server,
        guard=leak_guard,
    )
    assert "CHILD 0 0" in done.stdout
    assert "CHILD 1 0" in done.stdout
    check_fork_delivery(server, done)


def test_multiprocessing_fork_children_deliver_and_the_parents_queue_is_sent_once(
    server: LocalServer,
    leak_guard: LeakGuard,
) -> None:
    done, _ = run_python(
        FORK_PARENT
        + """
import multiprocessing

def child(n):
    for seq in range(120):
        pug.track(f"child-{n}", "fork.child", {"seq": seq})
    pug.identify(f"child-{n}")
    # returns without close(); multiprocessing ends the process with os._exit

context = multiprocessing.get_context("fork")
processes = [context.Process(target=child, args=(n,)) for n in range(2)]
for process in processes:
    process.start()
for process in processes:
    process.join(20)
print("EXITCODES", [p.exitcode for p in processes], flush=True)
"""
        + FORK_PARENT_AFTER,
        server,
        guard=leak_guard,
    )
    assert "EXITCODES [0, 0]" in done.stdout
    check_fork_delivery(server, done)
