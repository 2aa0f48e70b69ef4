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
from tests.support.cli import run_cli, run_cli_on_terminal

pytestmark = pytest.mark.timeout(120)
_KIND_RULE = "does not match regex pattern `^[a-zA-Z0-9_.-]+$`"


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
    assert "rows/s" in result.stdout
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
    assert result.stdout.splitlines()[1:] == [
        "  dropped by the server:",
        "            4  salt_unavailable",
    ]
    assert "4 dropped by the server" in result.stdout


def test_undelivered_events_are_counted_per_reason_not_listed(
    server: LocalServer, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join(
            json.dumps({"distinct_id": f"u{i}", "kind": "signup", "timestamp": 1714557600}) + "\n"
            for i in range(30)
        ),
        encoding="utf-8",
    )
    server.faults.fail_next("BatchCreate", times=10, code=grpc.StatusCode.PERMISSION_DENIED)
    result = run_cli("import", str(path), env=_env(server))
    assert result.returncode == 1
    assert not [line for line in result.stderr.splitlines() if line.startswith("line ")]
    summary = result.stdout.splitlines()
    assert "30 rows, 0 events stored, 0 rejected, 30 undelivered" in summary[0]
    assert summary[1] == "  undelivered:"
    count, reason = summary[2].split(maxsplit=1)
    assert count == "30"
    assert reason.startswith("PERMISSION_DENIED: ")
    assert len(summary) == 3


def test_excel_csv_with_a_byte_order_mark(server: LocalServer, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    text = "distinct_id,kind,timestamp,plan\r\nxl-1,signup,2024-05-01T08:00:00Z,pro\r\n"
    path.write_bytes(text.encode("utf-8-sig"))
    result = run_cli("import", str(path), env=_env(server))
    assert result.returncode == 0, result.stderr
    assert "1 rows, 1 events stored, 0 rejected" in result.stdout
    (stored,) = [e for e in server.events if e.distinct_id == "xl-1"]
    assert stored.custom_properties["plan"].string_value == "pro"


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_invalid_utf8_is_one_rejected_line_and_the_import_goes_on(
    server: LocalServer, tmp_path: Path, suffix: str
) -> None:
    if suffix == "csv":
        lines = [
            b"distinct_id,kind,timestamp",
            *(f"u8-{i},signup,1714557600".encode() for i in range(4)),
        ]
    else:
        lines = [
            json.dumps(
                {"distinct_id": f"u8-{i}", "kind": "signup", "timestamp": 1714557600}
            ).encode()
            for i in range(5)
        ]
    lines[2] = lines[2].replace(b"u8-", b"u\xff8-")
    path = tmp_path / f"mixed.{suffix}"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = run_cli("import", str(path), env=_env(server))
    assert result.returncode == 1
    column = lines[2].index(b"\xff") + 1
    assert result.stderr == f"line 3: rejected: not valid UTF-8 (byte 0xff at column {column})\n"
    stored = sorted(e.distinct_id for e in server.events if e.distinct_id.startswith("u8-"))
    assert len(stored) == len(lines) - 1 - (suffix == "csv")
    assert "1 rejected" in result.stdout
    assert "not valid UTF-8 (byte 0xff at column" in result.stdout  # its reason in the summary


def test_rejections_are_counted_per_reason_and_listed_up_to_a_limit(
    server: LocalServer, tmp_path: Path
) -> None:
    rows = [
        {"distinct_id": f"r{i}", "kind": "bad kind", "timestamp": 1714557600} for i in range(120)
    ]
    rows += [
        {"distinct_id": f"m{i}", "kind": "signup", "timestamp": 1714557600123} for i in range(5)
    ]
    rows.append({"distinct_id": "ok", "kind": "signup", "timestamp": 1714557600})
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = run_cli("import", str(path), env=_env(server))
    assert result.returncode == 1
    listed = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert len(listed) == 100
    assert "further rejected rows are counted in the summary only" in result.stderr
    summary = result.stdout.splitlines()
    assert "126 rows, 1 events stored, 125 rejected, 0 undelivered" in summary[0]
    assert summary[1] == "  rejected:"
    assert summary[2].split(maxsplit=1)[0] == "120"
    assert "kind" in summary[2]
    assert summary[3].split(maxsplit=1)[0] == "5"
    assert "looks like milliseconds since the epoch" in summary[3]
    quiet = run_cli("import", str(path), "--quiet", env=_env(server))
    assert quiet.stderr == ""
    assert quiet.stdout.splitlines()[1:4] == summary[1:4]


def _visible(raw: str) -> list[str]:
    """What a terminal shows for each line: the text after the last carriage return."""
    shown = []
    for segment in raw.split("\n"):
        last = segment.rstrip("\r").split("\r")[-1].replace("\x1b[K", "")
        shown.append(last)
    return shown


def test_messages_appear_above_the_progress_bar(server: LocalServer, tmp_path: Path) -> None:
    rows = [
        {
            "distinct_id": f"p{i}",
            "kind": "bad kind" if i % 50 == 7 else "signup",
            "timestamp": 1714557600,
        }
        for i in range(400)
    ]
    path = tmp_path / "bar.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    status, stdout, terminal = run_cli_on_terminal("import", str(path), env=_env(server))
    assert status == 1
    assert "400 rows, 392 events stored, 8 rejected" in stdout
    shown = [line for line in _visible(terminal) if line]
    messages = [line for line in shown if not line.startswith("importing [")]
    assert messages == [
        f"line {i + 1}: rejected: kind: {_KIND_RULE}" for i in range(400) if i % 50 == 7
    ]
    assert any(line.startswith("importing [") for line in shown)  # the bar was drawn
    assert shown[-1].startswith("importing [############################] 100%  400/400")
