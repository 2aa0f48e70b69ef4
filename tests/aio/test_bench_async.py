"""scripts/bench_async.py runs end to end on a small workload (its figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.protos import ROOT


def test_bench_async_prints_every_phase() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_async.py"),
            "--profiles",
            "120",
            "--events",
            "600",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["listed"] == 121  # the seeded profiles and the feed's user
    assert figures["accepted"] == 600
    phases = [phase["phase"] for phase in figures["phases"]]
    assert phases[0] == "probe alone"
    assert len(phases) == 7
    assert all(phase["samples"] > 0 for phase in figures["phases"])
