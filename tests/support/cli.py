"""Run the ``pug-grpc`` command line as a subprocess, the way users do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

from tests.support.protos import ROOT


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """``python -m pug_grpc ARGS`` with no PUG_* variables unless given in ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PUG_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pug_grpc", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_cli_on_terminal(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 90
) -> tuple[int, str, str]:
    """Like :func:`run_cli`, with stderr on a pseudo-terminal (so progress bars are drawn).

    Returns the exit status, stdout, and everything written to the terminal, raw.
    """
    import pty

    clean = {k: v for k, v in os.environ.items() if not k.startswith("PUG_")}
    clean.update(env or {})
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "pug_grpc", *args],
        cwd=ROOT,
        env=clean,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the child has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    stdout, _ = process.communicate(timeout=timeout)
    return process.returncode, stdout, b"".join(chunks).decode("utf-8", "replace")
