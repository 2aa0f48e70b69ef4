"""Every command fails within seconds, with the cause, when the endpoint cannot be reached."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run_cli

KEY = "prv_connection_failure_key_1234"


@pytest.fixture(scope="module")
def http1_port() -> Iterator[int]:
    """A plain HTTP/1.1 server, as Pug's own port is."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CASES = {
    "refused": (lambda port: f"http://127.0.0.1:{_closed_port()}", "connection was refused"),
    "http1": (lambda port: f"http://127.0.0.1:{port}", "speaks HTTP/1.x"),
    "name": (lambda port: "https://pug-grpc-no-such-host.invalid", "host name was not found"),
    "tls-to-plaintext": (lambda port: f"https://127.0.0.1:{port}", "answered in plaintext"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["track", "import", "profiles"])
def test_the_command_fails_within_seconds_and_says_why(
    case: str, command: str, http1_port: int, tmp_path: Path
) -> None:
    endpoint_of, cause = CASES[case]
    endpoint = endpoint_of(http1_port)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"distinct_id": "u", "kind": "k", "timestamp": 1714557600}\n')
    args = {
        "track": ["track", "u", "signup"],
        "import": ["import", str(rows), "--no-progress"],
        "profiles": ["profiles", "get", "u"],
    }[command]
    started = time.monotonic()
    result = run_cli("--endpoint", endpoint, "--api-key", KEY, *args, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert cause in result.stderr
    assert "within 10 s" not in result.stderr, "a bare timeout instead of the cause"
    if case == "http1":
        assert "--transport connect" in result.stderr
        assert 'transport="connect"' not in result.stderr
    assert elapsed < 10, f"{command} took {elapsed:.1f} s to fail"
