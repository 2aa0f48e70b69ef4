"""The spool across processes: SIGKILL mid-stream, four processes on one path, fork().

The children are real interpreters (``spool_support.child``) on a loopback server kept in an
outage while they track, so nothing is delivered before the test says so.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2

from pug_grpc import SqliteStorage
from pug_grpc.testing import LocalServer
from tests.storage.spool_support import (
    child,
    spool_files,
    spooled_event_ids,
    spooled_items,
    wait_for_line,
    wait_for_lines,
)
from tests.support.reliability import client, pug_server, wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with pug_server() as running:
        yield running


def prop(event: events_pb2.Event, name: str) -> int:
    return int(event.custom_properties[name].int_value)


TRACK_FOREVER = """
pug = client()
seq = 0
while True:
    for _ in range(100):
        pug.track(f"user-{seq % 5}", "kill.test", {"seq": seq, "proc": int(sys.argv[4])})
        seq += 1
    if seq == 2000:
        print("TRACKED", seq, flush=True)
    time.sleep(0.002)
"""


def test_sigkill_mid_stream_then_a_new_client_delivers_every_spooled_event(
    server: LocalServer, tmp_path: Path
) -> None:
    server.faults.outage()
    proc = child(TRACK_FOREVER, server, tmp_path, "0")
    wait_for_line(proc, "TRACKED")
    assert wait_until(lambda: spooled_items(tmp_path) >= 1500, 15)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    spooled = spooled_event_ids(tmp_path)  # counted from the spool itself
    assert len(spooled) == spooled_items(tmp_path) >= 1500
    assert len(set(spooled)) == len(spooled)
    server.faults.end_outage()
    pug = client(server, storage=SqliteStorage(tmp_path))
    result = pug.flush(20)
    pug.close()
    assert result.completed
    assert result.accepted == len(spooled)
    delivered = [e.event_id for e in server.events]
    assert sorted(delivered) == sorted(spooled)  # every one, once, with the ids it was given
    seqs = sorted(prop(e, "seq") for e in server.events)
    assert seqs == list(range(len(seqs)))  # the spool holds a prefix: the oldest events
    assert spool_files(tmp_path) == []


SHARER = """
pug = client()
me = int(sys.argv[4])
for seq in range(1000):
    pug.track(f"user-{seq % 5}", "share.test", {"seq": seq, "proc": me})
pug.flush(0.5)
print("SPOOLED", flush=True)
sys.stdin.readline()  # the test says when to finish
result = pug.flush(30)
pug.close(30)
print("DONE", result.completed, pug.stats().accepted, flush=True)
"""


def test_four_processes_on_one_spool_deliver_every_event_once(
    server: LocalServer, tmp_path: Path
) -> None:
    server.faults.outage()
    procs = [child(SHARER, server, tmp_path, str(n)) for n in range(4)]
    for proc in procs:
        wait_for_line(proc, "SPOOLED")
    assert len(spool_files(tmp_path)) == 4  # one file per live process
    assert wait_until(lambda: spooled_items(tmp_path) == 4000, 10)
    for proc in procs[:2]:  # two die during the outage; the two others take their files over
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    server.faults.end_outage()
    assert wait_until(lambda: len(server.events) >= 4000, 30), len(server.events)
    for proc in procs[2:]:
        assert proc.stdin is not None
        proc.stdin.write("finish\n")
        proc.stdin.flush()
    accepted = 0
    for proc in procs[2:]:
        line = wait_for_line(proc, "DONE")
        assert line.split()[1] == "True"
        accepted += int(line.split()[2])
        proc.wait(30)
        assert proc.returncode == 0
    assert accepted == 4000  # the live two delivered their own and the dead two's events
    pairs = Counter((prop(e, "proc"), prop(e, "seq")) for e in server.events)
    assert len(pairs) == 4000
    assert max(pairs.values()) == 1, [p for p, n in pairs.items() if n > 1][:5]
    assert len({e.event_id for e in server.events}) == len(server.events) == 4000
    assert spool_files(tmp_path) == []


FORKER = """
from pug_grpc._ingest import spool_files
pug = client()
for seq in range(300):
    pug.track("parent", "fork.test", {"seq": seq, "proc": 0})
pug.flush(0.5)
parent_file = pug._engine._pipeline.storage._home.path
pid = os.fork()
if pid == 0:
    for seq in range(200):
        pug.track("child", "fork.test", {"seq": seq, "proc": 1})
    pug.flush(0.5)
    child_file = pug._engine._pipeline.storage._home.path
    print("CHILD", child_file != parent_file, len(spool_files.abandoned) >= 1, flush=True)
    sys.stdin.readline()
    pug.flush(30)
    pug.close(30)
    print("CHILD_DONE", pug.stats().accepted, flush=True)
    os._exit(0)
print("PARENT_SPOOLED", flush=True)
sys.stdin.readline()
pug.flush(30)
pug.close(30)
os.waitpid(pid, 0)
print("PARENT_DONE", pug.stats().accepted, flush=True)
"""


def test_a_forked_child_spools_to_its_own_file_and_never_sends_the_parents_events(
    server: LocalServer, tmp_path: Path
) -> None:
    server.faults.outage()
    proc = child(FORKER, server, tmp_path)
    lines = wait_for_lines(proc, "CHILD", "PARENT_SPOOLED")
    assert lines["CHILD"] == "CHILD True True"
    assert len(spool_files(tmp_path)) == 2
    assert wait_until(lambda: spooled_items(tmp_path) == 500, 10)
    server.faults.end_outage()
    assert proc.stdin is not None
    proc.stdin.write("go\ngo\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "CHILD_DONE 200" in out
    assert "PARENT_DONE 300" in out
    assert "Traceback" not in err
    pairs = Counter((prop(e, "proc"), prop(e, "seq")) for e in server.events)
    assert len(pairs) == 500
    assert max(pairs.values()) == 1
    assert spool_files(tmp_path) == []
