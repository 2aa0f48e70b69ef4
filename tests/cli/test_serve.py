"""``pug-grpc serve``: data across restarts, IPv6, the keys it prints, a busy port explained."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.protos import ROOT

pytestmark = pytest.mark.timeout(120)
KEY = "prv_local_development_key"


def _start_serve(*options: str) -> tuple[subprocess.Popen[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUG_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "pug_grpc", "serve", "--port", "0", *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = []
    while not banner or not banner[-1].startswith("Press Ctrl-C"):
        line = process.stdout.readline()
        assert line, process.communicate(timeout=20)
        banner.append(line.rstrip("\n"))
    return process, banner


def _endpoint(banner: list[str]) -> str:
    assert banner[0].startswith("Pug local server listening on http://"), banner
    return banner[0].split()[-1]


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return out, err


def test_serve_keeps_data_across_restarts(tmp_path: Path) -> None:
    db = str(tmp_path / "pug.db")
    process, banner = _start_serve("--db", db)
    try:
        env = {"PUG_ENDPOINT": _endpoint(banner), "PUG_API_KEY": KEY}
        assert run_cli("track", "erin", "signup", env=env).returncode == 0
        assert run_cli("identify", "erin", "--trait", "plan=pro", env=env).returncode == 0
    finally:
        out, _ = _stop(process)
        assert "Stopped." in out
    process, banner = _start_serve("--db", db)
    try:
        env = {"PUG_ENDPOINT": _endpoint(banner), "PUG_API_KEY": KEY}
        profile = json.loads(run_cli("profiles", "get", "erin", env=env).stdout)
        assert profile["properties"] == {"plan": "pro"}
        assert profile["activity"]["totalEvents"] == "1"
    finally:
        _stop(process)


def test_serve_prints_the_keys_it_uses() -> None:
    process, banner = _start_serve("--db", ":memory:", "--private-key", "prv_my_own_key_123")
    try:
        text = "\n".join(banner)
        assert "  public key   pub_local_development_key  (ingestion)" in text
        assert "  private key  prv_my_own_key_123  (ingestion and reads)" in text
        assert "PUG_API_KEY=prv_my_own_key_123 pug-grpc track" in text
        assert "<private key>" not in text
        env = {"PUG_ENDPOINT": _endpoint(banner), "PUG_API_KEY": "prv_my_own_key_123"}
        assert run_cli("track", "kim", "signup", env=env).returncode == 0
    finally:
        _stop(process)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_serve_on_the_ipv6_loopback() -> None:
    process, banner = _start_serve("--db", ":memory:", "--host", "::1")
    try:
        endpoint = _endpoint(banner)
        assert endpoint.startswith("http://[::1]:")
        tracked = run_cli(
            "track", "v6", "signup", env={"PUG_ENDPOINT": endpoint, "PUG_API_KEY": KEY}
        )
        assert tracked.returncode == 0, tracked.stderr
        assert tracked.stdout == "signup for v6: delivered\n"
    finally:
        _stop(process)


def test_a_busy_port_is_explained_and_grpc_logs_only_with_debug() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = run_cli("serve", "--port", port, "--db", ":memory:")
        assert busy.returncode == 1
        assert busy.stderr == (
            f"pug-grpc: error: cannot listen on 127.0.0.1:{port}: the port is in use (or the"
            " address is not on this machine); try --port 0 to pick a free port\n"
        )
        debug = run_cli("serve", "--port", port, "--db", ":memory:", "--debug")
        assert debug.returncode == 1
        # gRPC's own log lines ("E0000 12:00:00.000 ... add_port.cc] ...") only with --debug.
        assert re.search(r"^[EWI]\d{4} ", debug.stderr, re.MULTILINE), debug.stderr
