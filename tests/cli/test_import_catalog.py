"""``pug-grpc import`` sends rows breaking a catalog kind's rules, counting them per reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows() -> list[dict[str, Any]]:
    rows = [
        {"distinct_id": f"u{n}", "kind": "search", "timestamp": 1714557600 + n,
         "properties": {"results": n}}
        for n in range(50)
    ]  # fmt: skip
    rows += [
        {"distinct_id": "u1", "kind": "add_to_cart", "timestamp": 1714557600,
         "properties": {"sku": f"s{n}"}}
        for n in range(10)
    ]  # fmt: skip
    rows += [
        {"distinct_id": "u1", "kind": "product_viewed", "timestamp": 1714557600,
         "properties": {"product_id": "p1"}}
    ]  # fmt: skip
    return rows


def test_catalog_rule_breaks_are_sent_and_counted_not_printed_per_row(
    server: LocalServer, tmp_path: Path
) -> None:
    path = _write(tmp_path / "moved.jsonl", _rows())
    result = run_cli("import", str(path), "--no-progress", env=_env(server))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "61 events stored, 0 rejected" in result.stdout
    assert "sent as given, breaking their catalog kind's rules:" in result.stdout
    assert "50  search: required" in result.stdout
    assert "10  add_to_cart: required" in result.stdout
    warned = [line for line in result.stderr.splitlines() if "sent as given" in line]
    assert len(warned) == 2  # one per kind and rule, not one per row
    assert len(server.events) == 61
    search = next(e for e in server.events if e.kind == "search")
    assert "results" in search.custom_properties


def test_strict_catalog_rejects_them(server: LocalServer, tmp_path: Path) -> None:
    path = _write(tmp_path / "moved.jsonl", _rows())
    result = run_cli("import", str(path), "--no-progress", "--strict-catalog", env=_env(server))
    assert result.returncode == 1
    assert "1 events stored, 60 rejected" in result.stdout
    assert [e.kind for e in server.events] == ["product_viewed"]


def test_rows_without_a_session_get_their_users_session_by_timestamp(
    server: LocalServer, tmp_path: Path
) -> None:
    rows = [
        {"distinct_id": "u1", "kind": "page", "timestamp": "2024-05-01T10:00:00Z"},
        {"distinct_id": "u2", "kind": "page", "timestamp": "2024-05-01T10:05:00Z"},
        {"distinct_id": "u1", "kind": "page", "timestamp": "2024-05-01T10:20:00Z"},
        {"distinct_id": "u1", "kind": "page", "timestamp": "2024-05-01T11:30:00Z"},
    ]
    path = _write(tmp_path / "visits.jsonl", rows)
    result = run_cli("import", str(path), "--no-progress", env=_env(server))
    assert result.returncode == 0, result.stderr
    first, other, second, later = (e.session_id for e in server.events)
    assert first == second
    assert len({first, other, later}) == 3
