"""The local server's lifecycle, storage, inspection and channel rules."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import grpc
import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc

from pug_grpc.testing import LocalServer, local_server
from tests.support.server import details, event, key_md

pytestmark = pytest.mark.timeout(60)


def _send(server: LocalServer, *events: events_pb2.Event, **call: object) -> int:
    with server.channel() as channel:
        stub = events_pb2_grpc.EventsServiceStub(channel)
        request = events_pb2.BatchCreateRequest(events=list(events))
        reply = stub.BatchCreate(request, metadata=key_md(server), timeout=10, **call)  # type: ignore[arg-type]
        return reply.accepted


def _total_events(server: LocalServer, external_id: str) -> int:
    with server.channel() as channel:
        stub = profiles_pb2_grpc.ProfilesServiceStub(channel)
        request = profiles_pb2.GetByExternalIdRequest(external_id=external_id)
        return stub.GetByExternalId(request, metadata=key_md(server)).profile.activity.total_events


def test_sqlite_storage_survives_restart_and_concurrent_batches(tmp_path: Path) -> None:
    database = tmp_path / "pug.db"
    with local_server(database=database) as server:

        def push(worker: int) -> None:
            for _ in range(5):
                _send(server, *[event(f"w{worker}") for _ in range(50)])

        threads = [threading.Thread(target=push, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert server.stored_row_count() == 6 * 5 * 50
        keys = (server.public_key, server.private_key)
    with local_server(database=database, public_key=keys[0], private_key=keys[1]) as again:
        assert again.stored_row_count() == 1500
        assert _total_events(again, "w3") == 250


def test_a_file_from_before_redeliveries_were_rows_is_upgraded(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    old = sqlite3.connect(database)
    old.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, project_id TEXT NOT NULL,"
        " event_id TEXT NOT NULL, kind TEXT NOT NULL, distinct_id TEXT NOT NULL,"
        " profile_key TEXT NOT NULL, session_id TEXT NOT NULL, occur_us INTEGER NOT NULL,"
        " received_us INTEGER NOT NULL, auto_props TEXT NOT NULL, custom_props TEXT NOT NULL,"
        " UNIQUE (project_id, event_id))"
    )
    old.execute(
        "INSERT INTO events (project_id, event_id, kind, distinct_id, profile_key, session_id,"
        " occur_us, received_us, auto_props, custom_props)"
        " VALUES ('proj_local', 'e-1', 'signup', 'u', 'u', 's', 1, 1, '{}', '{}')"
    )
    old.commit()
    old.close()
    with local_server(database=database) as server:
        assert server.stored_row_count() == 1
        again = event("u")
        _send(server, again)
        _send(server, again)
        assert server.stored_row_count() == 3


def test_restart_keeps_port_and_data(pug_server: LocalServer) -> None:
    _send(pug_server, event())
    port = pug_server.port
    pug_server.restart()
    assert pug_server.port == port
    assert _send(pug_server, event()) == 1
    assert pug_server.stored_row_count() == 2


def test_a_stopped_server_is_unreachable_then_back(pug_server: LocalServer) -> None:
    pug_server.stop()
    assert not pug_server.running
    with pytest.raises(grpc.RpcError) as caught:
        _send(pug_server, event())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    pug_server.start()
    assert _send(pug_server, event(), wait_for_ready=True) == 1


def test_wait_for_events_returns_or_times_out(pug_server: LocalServer) -> None:
    with pytest.raises(TimeoutError, match="0 of 1 events"):
        pug_server.wait_for_events(1, timeout=0.05)
    _send(pug_server, event())
    assert len(pug_server.wait_for_events(1, timeout=5)) == 1
    with pytest.raises(TimeoutError, match="identifies"):
        pug_server.wait_for_identifies(1, timeout=0.05)


def test_reset_forgets_recordings_and_faults_but_keeps_data(pug_server: LocalServer) -> None:
    _send(pug_server, event())
    pug_server.faults.fail_next(times=5)
    pug_server.faults.outage()
    pug_server.reset()
    assert (pug_server.events, pug_server.calls) == ([], [])
    assert _send(pug_server, event()) == 1
    assert pug_server.stored_row_count() == 2


def test_without_recording_nothing_is_kept_in_memory() -> None:
    with local_server(record=False) as server:
        _send(server, event())
        assert (server.events, server.calls) == ([], [])
        assert server.stored_row_count() == 1


def test_only_gzip_request_compression_is_accepted(pug_server: LocalServer) -> None:
    assert _send(pug_server, event(), compression=grpc.Compression.Gzip) == 1
    assert _send(pug_server, event(), compression=grpc.Compression.NoCompression) == 1
    with pytest.raises(grpc.RpcError) as caught:
        _send(pug_server, event(), compression=grpc.Compression.Deflate)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
    assert "deflate" in caught.value.details()  # type: ignore[attr-defined]
    assert pug_server.stored_row_count() == 2
    assert len(pug_server.calls) == 2  # grpcio refused it before the call path saw it


def test_a_crashing_handler_answers_internal_with_details(
    pug_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pug_server.store, "insert_events", broken)
    with pytest.raises(grpc.RpcError) as caught:
        _send(pug_server, event())
    found = details(caught.value)
    assert (found.code, found.message, found.reason) == (
        grpc.StatusCode.INTERNAL,
        "internal error",
        "INTERNAL",
    )
    assert pug_server.calls[-1].code == grpc.StatusCode.INTERNAL


def test_a_call_after_the_database_closed_fails_without_blocking_the_next_ones() -> None:
    """A handler still running when the server stopped must not leave the store locked: the
    next handlers (and interpreter exit, which joins them) would wait for ever."""
    import sqlite3
    import threading

    from pug_grpc.testing._database import Database

    db = Database()
    db.close()
    with pytest.raises(sqlite3.ProgrammingError), db._tx():
        pass
    outcome: list[str] = []

    def later_call() -> None:
        try:
            with db._tx():
                outcome.append("entered")
        except sqlite3.ProgrammingError:
            outcome.append("refused")

    worker = threading.Thread(target=later_call, daemon=True)
    worker.start()
    worker.join(5)
    assert outcome == ["refused"]
