"""``pug-grpc import``: good rows delivered, bad rows reported by line, exit status honest."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pug_grpc.testing import LocalServer, local_server
from tests.support.cli import run_cli

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


def _env(server: LocalServer) -> dict[str, str]:
    return {"PUG_ENDPOINT": server.endpoint, "PUG_API_KEY": server.private_key}


def test_jsonl_with_good_and_bad_rows(server: LocalServer, tmp_path: Path) -> None:
    known_id = str(uuid.uuid4())
    rows = [
        {
            "distinct_id": "u1",
            "kind": "signup",
            "timestamp": "2024-05-01T10:00:00Z",
            "properties": {"plan": "pro", "seats": 3},
            "event_id": known_id,
        },
        {"distinct_id": "u1", "kind": "bad kind", "timestamp": "2024-05-01T10:01:00Z"},
        "this line is not json",
        {
            "distinct_id": "u2",
            "kind": "purchase",
            "timestamp": 1714557600,
            "properties": {"amount": 12.5, "currency": "EUR"},
        },
        {"kind": "signup", "timestamp": "2024-05-01T10:02:00Z"},
        {"distinct_id": "u3", "kind": "signup", "timestamp": "last tuesday"},
        {"distinct_id": "cookieless-9", "kind": "signup", "timestamp": 1714557600},
        {"distinct_id": "u4", "kind": "x", "timestamp": 1714557600, "session_id": "nope"},
        {"distinct_id": "u5", "kind": "x", "timestamp": 1714557600, "properties": {"$lib": "x"}},
        {"distinct_id": "u6", "kind": "page_view", "timestamp": "2024-05-01 12:00:00"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n\n",
        encoding="utf-8",
    )
    result = run_cli("import", str(path), env=_env(server))
    assert result.returncode == 1, result.stderr
    rejected = {
        int(line.split(":")[0].removeprefix("line ")): line
        for line in result.stderr.splitlines()
        if line.startswith("line ")
    }
    assert sorted(rejected) == [2, 3, 5, 6, 7, 8, 9]
    assert "kind" in rejected[2]
    assert "not valid JSON" in rejected[3]
    assert "distinct_id is required" in rejected[5]
    assert "timestamp" in rejected[6]
    assert "cookieless-" in rejected[7]
    assert "session_id" in rejected[8]
    assert "'$lib'" in rejected[9]
    assert "3 events stored, 7 rejected, 0 undelivered" in result.stdout
    assert "Traceback" not in result.stderr
    stored = {e.distinct_id: e for e in server.events}
    assert sorted(stored) == ["u1", "u2", "u6"]
    assert stored["u1"].event_id == known_id
    assert stored["u1"].custom_properties["seats"].int_value == 3
    assert stored["u2"].custom_properties["amount"].double_value == 12.5
    assert stored["u2"].occur_time.ToDatetime(tzinfo=dt.UTC) == dt.datetime(
        2024, 5, 1, 10, tzinfo=dt.UTC
    )
    assert stored["u6"].occur_time.ToDatetime(tzinfo=dt.UTC).hour == 12  # naive means UTC


def test_csv_all_good_exits_zero(server: LocalServer, tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    lines = ["distinct_id,kind,timestamp,plan,properties"]
    lines += [
        f'user-{i},signup,2024-05-0{1 + i % 9}T08:00:00Z,pro,"{{""n"": {i}}}"' for i in range(120)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("import", str(path), "--chunk", "50", env=_env(server))
    assert result.returncode == 0, result.stderr
    assert "120 rows, 120 events stored, 0 rejected" in result.stdout
    assert "events/s" in result.stdout
    assert server.stored_event_count() == 120
    first = next(e for e in server.events if e.distinct_id == "user-7")
    assert first.custom_properties["plan"].string_value == "pro"
    assert first.custom_properties["n"].int_value == 7


def test_csv_without_required_columns_is_one_clear_error(
    server: LocalServer, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user,event\nu1,signup\n", encoding="utf-8")
    result = run_cli("import", str(path), env=_env(server))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "pug-grpc: error: the CSV header lacks the column(s) distinct_id, kind, timestamp"
    )


def test_server_drops_make_the_exit_status_non_zero(server: LocalServer, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join(
            json.dumps({"distinct_id": f"u{i}", "kind": "signup", "timestamp": 1714557600}) + "\n"
            for i in range(10)
        ),
        encoding="utf-8",
    )
    server.faults.drop_events(4, reason="salt_unavailable")
    result = run_cli("import", str(path), env=_env(server))
    assert result.returncode == 1
    assert "6 events stored" in result.stdout
    assert "4 dropped by the server" in result.stdout


def test_undelivered_rows_are_reported_by_line(server: LocalServer, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join(
            json.dumps({"distinct_id": f"u{i}", "kind": "signup", "timestamp": 1714557600}) + "\n"
            for i in range(3)
        ),
        encoding="utf-8",
    )
    server.faults.fail_next("BatchCreate", times=10, code=grpc.StatusCode.PERMISSION_DENIED)
    result = run_cli("import", str(path), env=_env(server))
    assert result.returncode == 1
    undelivered = [line for line in result.stderr.splitlines() if "not delivered" in line]
    assert [line.split(":")[0] for line in undelivered] == ["line 1", "line 2", "line 3"]
    assert "PERMISSION_DENIED" in undelivered[0]
    assert "3 undelivered" in result.stdout
