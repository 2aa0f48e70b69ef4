"""``scripts/bench.py --quick`` runs end to end and writes its table and JSON (no timing checks).

The peers are included when their packages are installed (they are development dependencies);
every sink listens on 127.0.0.1 only.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 300

pytestmark = pytest.mark.timeout(120)


def test_quick_benchmark_writes_the_table_and_the_json(tmp_path: Path) -> None:
    sdks = ["pug"] + [
        name
        for name, module in (("posthog", "posthog"), ("segment", "segment.analytics"))
        if importlib.util.find_spec(module.split(".")[0]) is not None
    ]
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
            "--quick",
            "--events",
            str(EVENTS),
            "--sdks",
            ",".join(sdks),
            "--no-queue-raised",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["config"]["events"] == EVENTS
    assert report["machine"]["nproc"] >= 1
    summary = {row["variant"]: row for row in report["summary"]}
    assert set(summary) == {"pug", *sdks[1:]}
    for row in summary.values():
        assert row["runs"] == 1
        assert row["lost"] == 0  # a few hundred events never fill a queue
        for name in ("p50_us", "p99_us", "events_per_s", "cpu_us_per_event", "peak_rss_mb"):
            assert row[name] > 0, name
    assert len(report["runs"]) == len(summary) + 3  # + gzip and batch-size variants
    assert [v["variant"] for v in report["pug_variants"]] == [
        "pug",
        "pug-gzip",
        "pug-batch-1000",
        "pug-batch-1000-gzip",
    ]
    assert report["memory"]["bytes_per_event"] > 0
    assert report["memory"]["queue_depth"] >= 2000
    for read in ("profiles_list", "feed", "feed_page_1000"):
        assert report["reads"][read]["items"] >= 500
    assert report["profile"]["sent"] == EVENTS
    assert any("track" in row["function"] for row in report["profile"]["caller"])
    assert any("encode" in row["function"] for row in report["profile"]["worker"])

    table = (tmp_path / "latest.md").read_text()
    assert table in done.stdout
    assert "| SDK | caller µs p50 / p99 | end-to-end events/s (stored) |" in table
    assert "| pug-grpc (defaults) |" in table
    if len(sdks) > 1:
        assert "| pug-grpc (defaults) vs |" in table  # the ratios to each peer
    assert "Memory per queued event:" in table
    assert "| profiles.list" in table
