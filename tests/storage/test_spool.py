"""SqliteStorage with a real client on a loopback server: restarts, budgets, bad files, disks.

Each test tracks numbered events (a ``seq`` property) so the server's recordings say which
arrived, under which ids and how many times; the spool files are read with SQLite directly.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pug_grpc import BatchSettings, Pug, SqliteStorage, StorageError
from pug_grpc._ingest.outcomes import QUEUE_OVERFLOW
from pug_grpc.testing import LocalServer
from tests.storage.spool_support import spool_files, spooled_event_ids, spooled_items
from tests.support.reliability import Reports, client, pug_server, seq_of, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with pug_server() as running:
        yield running


def track(pug: Pug, seqs: range) -> None:
    for seq in seqs:
        pug.track(f"user-{seq % 7}", "spool.test", {"seq": seq})


def leave_spool(server: LocalServer, spool: Path, count: int) -> list[str]:
    """A client that tracks ``count`` events during an outage and closes with them unsent."""
    server.faults.outage()
    reports = Reports()
    first = client(server, storage=SqliteStorage(spool), on_error=reports)
    track(first, range(count))
    first.close(0.3)
    stats = first.stats()
    assert stats.undelivered + stats.unconfirmed == count  # a probe may be out at the deadline
    reasons = reports.reasons()
    assert reasons["UNDELIVERED"] + reasons["UNCONFIRMED"] >= 1  # all may be in that one probe
    assert server.events == []
    server.faults.end_outage()
    return reports.event_ids("UNDELIVERED") + reports.event_ids("UNCONFIRMED")


def test_a_new_client_delivers_what_a_closed_one_left_with_the_same_ids(
    server: LocalServer, tmp_path: Path
) -> None:
    reported = leave_spool(server, tmp_path, 700)
    spooled = spooled_event_ids(tmp_path)
    assert sorted(spooled) == sorted(reported)
    assert len(set(spooled)) == 700

    second = client(server, storage=SqliteStorage(tmp_path))
    result = second.flush(10)  # no call needed: the client starts on a persistent storage
    assert result.completed
    assert result.accepted == 700
    assert sorted(e.event_id for e in server.events) == sorted(spooled)
    assert sorted(seq_of(e) for e in server.events) == list(range(700))
    second.close()
    assert spool_files(tmp_path) == []
    assert os.listdir(tmp_path) == []


def test_the_spool_grows_while_the_server_is_away_not_memory(
    server: LocalServer, tmp_path: Path
) -> None:
    server.faults.outage()
    pug = client(server, storage=SqliteStorage(tmp_path))
    track(pug, range(3000))
    assert wait_until(lambda: spooled_items(tmp_path) >= 2900, 10)
    stats = pug.stats()
    assert stats.queue_depth == 3000
    server.faults.end_outage()
    assert pug.flush(20).accepted == 3000
    assert spooled_items(tmp_path) == 0
    pug.close()
    assert len({e.event_id for e in server.events}) == 3000


def test_a_full_spool_drops_the_oldest_as_queue_overflow(
    server: LocalServer, tmp_path: Path
) -> None:
    server.faults.outage()
    reports = Reports()
    pug = client(
        server,
        storage=SqliteStorage(tmp_path, max_bytes=40_000),
        on_error=reports,
        batch=BatchSettings(max_size=50, max_wait=0.01),
    )
    track(pug, range(2000))
    pug.flush(1.0)
    stats = pug.stats()
    assert stats.overflowed > 0
    assert reports.reasons()[QUEUE_OVERFLOW] >= 1
    overflowed = sum(len(r.items) for r in reports.of(QUEUE_OVERFLOW))
    assert overflowed == stats.overflowed
    server.faults.end_outage()
    result = pug.flush(20)
    pug.close()
    delivered = sorted(seq_of(e) for e in server.events)
    assert len(delivered) == 2000 - stats.overflowed
    # The newest survived: what was dropped is older than anything delivered after it, except
    # the requests already in flight or waiting out a retry when the spool filled.
    assert delivered[-1] == 1999
    assert result.completed


# -- bad files ---------------------------------------------------------------------------------
def _spool_with_records(directory: Path, count: int) -> Path:
    """A spool file left with ``count`` one-event records (written by a real storage)."""
    from pug_grpc import Record

    storage = SqliteStorage(directory)
    storage.open(lambda error: None)
    storage.recover(0)
    for n in range(count):
        storage.append(Record("events", b"\x0a\x05" + f"ev{n:03d}".encode()[:5], 1))
    storage.close()
    (path,) = spool_files(directory)
    return Path(path)


def _open_fresh(directory: Path) -> tuple[SqliteStorage, list[StorageError]]:
    problems: list[StorageError] = []
    storage = SqliteStorage(directory)
    storage.open(problems.append)
    return storage, problems


def _set_aside(directory: Path, cause: str) -> list[Path]:
    return sorted(p for p in directory.iterdir() if f".sqlite.{cause}-" in p.name)


def test_a_corrupt_file_is_set_aside_untouched_and_reported_once(tmp_path: Path) -> None:
    garbage = os.urandom(8192)
    bad = tmp_path / "pug-spool-00000000000000000001-1-deadbeef.sqlite"
    bad.write_bytes(garbage)
    storage, problems = _open_fresh(tmp_path)
    assert storage.recover(0) == 0
    assert storage.recover(0) == 0
    (aside,) = _set_aside(tmp_path, "corrupt")
    assert aside.read_bytes() == garbage
    assert len(problems) == 1
    text = problems[0].message
    assert str(bad) in text
    assert "not a SQLite database" in text
    assert "renamed to" in text
    assert problems[0].reason == "STORAGE_FAILED"
    assert not bad.exists()
    storage.close()


def test_a_truncated_file_is_set_aside_untouched(tmp_path: Path) -> None:
    path = _spool_with_records(tmp_path, 300)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    storage, problems = _open_fresh(tmp_path)
    assert storage.recover(0) == 0
    (aside,) = _set_aside(tmp_path, "corrupt")
    assert aside.read_bytes() == data[: len(data) // 2]
    assert len(problems) == 1
    assert str(path) in problems[0].message
    storage.close()


def test_a_file_of_an_unknown_version_is_set_aside(tmp_path: Path) -> None:
    path = _spool_with_records(tmp_path, 3)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    before = path.read_bytes()
    storage, problems = _open_fresh(tmp_path)
    assert storage.recover(0) == 0
    (aside,) = _set_aside(tmp_path, "incompatible")
    assert aside.read_bytes() == before
    assert "schema version 0" in problems[0].message
    storage.close()


def test_a_file_of_a_newer_version_is_left_for_that_version(tmp_path: Path) -> None:
    path = _spool_with_records(tmp_path, 3)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = path.read_bytes()
    storage, problems = _open_fresh(tmp_path)
    assert storage.recover(0) == 0
    storage._next_scan = 0.0  # look again at once: still reported only once
    assert storage.recover(0) == 0
    assert path.read_bytes() == before
    assert len(problems) == 1
    assert "newer pug-grpc" in problems[0].message
    storage.close()
    assert path.exists()


def test_a_client_reports_a_bad_file_and_delivers_everything_else(
    server: LocalServer, tmp_path: Path
) -> None:
    (tmp_path / "pug-spool-00000000000000000001-1-deadbeef.sqlite").write_bytes(b"x" * 5000)
    reports = Reports()
    pug = client(server, storage=SqliteStorage(tmp_path), on_error=reports)
    track(pug, range(50))
    result = pug.flush(10)
    pug.close()
    assert result.accepted == 50
    problems = reports.of("STORAGE_FAILED")
    assert len(problems) == 1
    assert isinstance(problems[0].error, StorageError)
    assert problems[0].items == []


# -- full disks and read-only paths ------------------------------------------------------------
def test_a_full_disk_is_reported_once_and_events_go_on_in_memory(
    server: LocalServer, tmp_path: Path
) -> None:
    server.faults.outage()
    reports = Reports()
    storage = SqliteStorage(tmp_path)
    pug = client(server, storage=storage, on_error=reports)
    track(pug, range(200))
    assert wait_until(lambda: spooled_items(tmp_path) >= 100, 10)
    home = storage._home
    assert home is not None
    pages = home.conn.execute("PRAGMA page_count").fetchone()[0]
    home.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
    track(pug, range(200, 3000))
    assert wait_until(lambda: bool(reports.of("STORAGE_FAILED")), 10)
    server.faults.end_outage()
    result = pug.flush(20)
    pug.close()
    assert result.accepted == 3000
    assert sorted(seq_of(e) for e in server.events) == list(range(3000))
    (problem,) = reports.of("STORAGE_FAILED")
    text = problem.error.message
    assert "disk full" in text
    assert str(tmp_path) in text
    assert "memory" in text
    assert spool_files(tmp_path) == []  # what it held went to memory, the file was removed


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """``directory`` made unwritable: immutable when running as root, else mode 0555."""
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot make a directory read-only here: {done.stderr!r}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(directory)], check=False)
    else:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)


def test_a_read_only_path_is_reported_once_and_events_go_on_in_memory(
    server: LocalServer, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    reports = Reports()
    with read_only(spool):
        pug = client(server, storage=SqliteStorage(spool), on_error=reports)
        track(pug, range(500))
        result = pug.flush(10)
        track(pug, range(500, 600))
        pug.close()
    assert result.accepted == 500
    assert pug.stats().accepted == 600
    (problem,) = reports.of("STORAGE_FAILED")
    assert str(spool) in problem.error.message
    assert "not writable" in problem.error.message
    assert "memory" in problem.error.message
    assert list(spool.iterdir()) == []


def test_track_never_raises_whatever_the_spool_does(server: LocalServer, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the spool directory should be")
    reports = Reports()
    pug = client(server, storage=SqliteStorage(blocker), on_error=reports)
    started = time.perf_counter()
    track(pug, range(100))
    assert time.perf_counter() - started < 1.0
    assert pug.flush(10).accepted == 100
    pug.close()
    assert len(reports.of("STORAGE_FAILED")) == 1


def test_identify_calls_wait_in_the_spool_too(server: LocalServer, tmp_path: Path) -> None:
    server.faults.outage()
    first = client(server, storage=SqliteStorage(tmp_path))
    first.identify("user-1", {"plan": "pro"})
    first.alias("anon-1", "user-1")
    first.close(0.3)
    stats = first.stats()
    assert stats.undelivered + stats.unconfirmed == 2  # both stay in the spool either way
    server.faults.end_outage()
    second = client(server, storage=SqliteStorage(tmp_path))
    assert second.flush(10).identified == 2
    second.close()
    assert sorted(i.external_id for i in server.identifies) == ["user-1", "user-1"]


def test_a_lock_left_without_its_file_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    stale = tmp_path / "pug-spool-00000000000000000001-1-aaaaaaaa.lock"
    stale.write_text("")
    live = SqliteStorage(tmp_path)
    live.open(lambda error: None)
    live.recover(0)  # creates its own file and lock
    other = SqliteStorage(tmp_path)
    other.open(lambda error: None)
    assert other.recover(0) == 0
    assert not stale.exists()
    assert len(list(tmp_path.glob("*.lock"))) == 2  # the two live storages' own
    other.close()
    live.close()
    assert list(tmp_path.iterdir()) == []


def test_the_synchronous_setting_and_bad_options(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path, synchronous="FULL")
    storage.open(lambda error: None)
    storage.recover(0)
    assert storage._home is not None
    assert storage._home.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert storage._home.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    storage.close()
    for bad in ({"max_bytes": 0}, {"synchronous": "OFF"}, {"takeover_interval": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SqliteStorage(tmp_path, **bad)  # type: ignore[arg-type]
