"""The lifecycle in real processes: signal handlers, Ctrl-C during close(), and fork storms.

Each test names the defect of the first engine it guards against. The local server runs in
the test process; the client runs in a child process (which forks further in the fork test).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from pug_grpc.testing import LocalServer
from tests.support.reliability import LeakGuard, pug_server, run_python

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with pug_server() as running:
        yield running


SIGNAL_HANDLER = """
import signal, threading, time
pug = Pug(KEY, ENDPOINT, batch=BatchSettings(max_wait=0.05), on_error=on_error)
fired = [0]

def handler(signum, frame):
    fired[0] += 1
    pug.track("from-handler", "signal.track", {"n": fired[0]})

signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
lock = pug._engine._lock
end = time.monotonic() + 2.0
n = 0
while time.monotonic() < end:
    with lock:  # the main thread holds the engine's lock when the signal lands, often
        pug.track("main", "signal.main", {"n": n})
        pug.stats()
    n += 1
signal.setitimer(signal.ITIMER_REAL, 0)
result = pug.flush(30)
stats = pug.stats()
print("DONE", fired[0], n, stats.enqueued, stats.accepted, result.ok, flush=True)
pug.close()
"""


def test_track_in_a_signal_handler_never_deadlocks(
    server: LocalServer, leak_guard: LeakGuard
) -> None:
    """track() from a signal handler could wait for a lock the interrupted thread held."""
    done, _ = run_python(SIGNAL_HANDLER, server, timeout=60, guard=leak_guard)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("DONE"))
    _, fired, main, enqueued, accepted, ok = line.split()
    assert int(fired) > 100, "the handler ran often"
    assert int(enqueued) == int(fired) + int(main) == int(accepted)
    assert ok == "True"
    assert server.stored_event_count() == int(enqueued)


CTRL_C_DURING_CLOSE = """
import os, signal, threading
pug = Pug(KEY, ENDPOINT, on_error=on_error, shutdown_timeout=60,
          batch=BatchSettings(max_wait=60, max_in_flight=1, max_request_bytes=16384))
for seq in range(2000):
    pug.track("interrupted", "close.interrupted", {"seq": seq})
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
print("CLOSING", flush=True)
pug.close(timeout=60)  # interrupted by Ctrl-C: the exit hook must finish the drain
print("NOT INTERRUPTED", flush=True)
"""


def test_ctrl_c_during_close_leaves_the_drain_to_the_exit_hook(
    server: LocalServer, leak_guard: LeakGuard
) -> None:
    """Ctrl-C during close() lost thousands of events: the client left the exit hook first."""
    server.faults.set_latency(0.02, "BatchCreate")  # about 80 requests, one at a time
    done, _ = run_python(CTRL_C_DURING_CLOSE, server, timeout=120, guard=leak_guard)
    assert "CLOSING" in done.stdout
    assert "NOT INTERRUPTED" not in done.stdout
    assert "KeyboardInterrupt" in done.stderr
    assert "ON_ERROR" not in done.stdout
    assert server.stored_event_count() == 2000


SIGTERM_DURING_CLOSE = """
import os, signal, sys, threading

def exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # the handler docs/guarantees.md documents

signal.signal(signal.SIGTERM, exit_on_sigterm)
pug = Pug(KEY, ENDPOINT, on_error=on_error, shutdown_timeout=60,
          batch=BatchSettings(max_wait=60, max_in_flight=1, max_request_bytes=16384))
for seq in range(2000):
    pug.track("terminated", "close.terminated", {"seq": seq})
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
pug.close(timeout=60)
print("NOT TERMINATED", flush=True)
"""


def test_sigterm_during_close_still_drains_through_the_exit_hook(
    server: LocalServer, leak_guard: LeakGuard
) -> None:
    server.faults.set_latency(0.02, "BatchCreate")
    done, _ = run_python(SIGTERM_DURING_CLOSE, server, timeout=120, guard=leak_guard)
    assert done.returncode == 128 + 15, done.stderr[-3000:]
    assert "NOT TERMINATED" not in done.stdout
    assert "ON_ERROR" not in done.stdout
    assert server.stored_event_count() == 2000


FORK_STORM = """
import os, threading, time
pug = Pug(KEY, ENDPOINT, on_error=on_error, batch=BatchSettings(max_wait=0.01))
stop = threading.Event()
sent = [0]

def keep_sending():
    while not stop.is_set():
        pug.track("parent", "fork.parent", {"seq": sent[0]})
        sent[0] += 1
        time.sleep(0.002)

sender = threading.Thread(target=keep_sending)
sender.start()
children, hung, failed = {}, 0, 0
started = time.monotonic()

def reap(block):
    global hung, failed
    for pid, born in list(children.items()):
        got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if got == 0:
            if time.monotonic() - born > 20:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                hung += 1
                del children[pid]
            continue
        if status != 0:
            failed += 1
        del children[pid]

for n in range(200):
    pid = os.fork()
    if pid == 0:
        for seq in range(5):
            pug.track(f"child-{n}", "fork.child", {"seq": seq})
        result = pug.flush(15)
        os._exit(0 if result.ok and result.accepted == 5 else 3)
    children[pid] = time.monotonic()
    while len(children) >= 6:
        reap(False)
        time.sleep(0.005)
while children:
    reap(False)
    time.sleep(0.01)
stop.set()
sender.join()
result = pug.flush(30)
stats = pug.stats()
print("FORKS", 200, "HUNG", hung, "FAILED", failed, "PARENT", sent[0], stats.enqueued,
      stats.accepted, result.ok, round(time.monotonic() - started, 1), flush=True)
pug.close()
"""


def test_two_hundred_forks_while_the_parent_sends_to_a_slow_server(leak_guard: LeakGuard) -> None:
    """fork() during a send left children whose calls hung past their deadline, and gRPC
    aborted in grandchildren; here every child delivers its own events and none hangs."""
    with pug_server(validate=False, max_workers=32) as server:
        server.faults.set_latency(0.05)
        done, elapsed = run_python(FORK_STORM, server, timeout=170, guard=leak_guard)
        events = server.events
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ON_ERROR" not in done.stdout
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("FORKS"))
    fields = line.split()
    assert fields[3] == "0", f"hung children: {line}"
    assert fields[5] == "0", f"failed children: {line}"
    sent, enqueued, accepted, ok = int(fields[7]), int(fields[8]), int(fields[9]), fields[10]
    assert sent == enqueued == accepted
    assert ok == "True"
    per_user = Counter(e.distinct_id for e in events)
    assert all(per_user[f"child-{n}"] == 5 for n in range(200)), "every child delivered its own"
    assert per_user["parent"] >= sent
    assert "Other threads are currently calling into gRPC" not in done.stderr
    print(f"fork storm: {line} ({elapsed:.1f} s)")


FORK_INSIDE_FIRST_TRACK = """
import os, signal, threading
pug = Pug(KEY, ENDPOINT, on_error=on_error, batch=BatchSettings(max_wait=0.01))
held, release = threading.Event(), threading.Event()

def inside_the_first_track():
    # Where another thread is during its first track(): the client's locks held, the worker
    # not started yet (so no fork hook of a started client is in place).
    with pug._sessions._lock, pug._engine._lock:
        held.set()
        release.wait(10)

thread = threading.Thread(target=inside_the_first_track)
thread.start()
held.wait(5)
pid = os.fork()
if pid == 0:
    signal.alarm(10)  # a child stuck on a lock of the parent's thread dies here
    pug.track("child", "fork.child")
    result = pug.flush(5)
    os._exit(0 if result.ok and result.accepted == 1 else 3)
release.set()
thread.join()
_, status = os.waitpid(pid, 0)
pug.track("parent", "fork.parent")
print("CHILD", os.waitstatus_to_exitcode(status), "PARENT", pug.flush(5).accepted, flush=True)
pug.close()
"""


def test_a_fork_while_another_thread_is_inside_the_first_track_gives_the_child_free_locks(
    server: LocalServer, leak_guard: LeakGuard
) -> None:
    done, _ = run_python(FORK_INSIDE_FIRST_TRACK, server, timeout=60, guard=leak_guard)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "CHILD 0 PARENT 1" in done.stdout, done.stdout
    assert {e.kind for e in server.events} == {"fork.child", "fork.parent"}
