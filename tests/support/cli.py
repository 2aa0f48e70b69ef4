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
