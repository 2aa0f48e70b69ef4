"""``scripts/bench.py --quick`` runs end to end and writes its tables and JSON (no timing checks).

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
SCRIPTS = ROOT / "scripts"

pytestmark = pytest.mark.timeout(300)


def _sdks() -> list[str]:
    return ["pug"] + [
        name
        for name, module in (("posthog", "posthog"), ("segment", "segment"))
        if importlib.util.find_spec(module) is not None
    ]


def test_quick_benchmark_writes_every_table_and_the_json(tmp_path: Path) -> None:
    sdks = _sdks()
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "bench.py"),
            "--quick",
            "--sdks",
            ",".join(sdks),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["config"]["quick"] is True
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["versions"]["pug-grpc"] != "not installed"
    for section in ("loopback", "delayed", "validating", "outage"):
        rows = report[section]
        assert {row["sdk"] for row in rows} == set(sdks), section
        for row in rows:
            assert "errors" not in row, (section, row["errors"])
            assert row["events_per_s"] > 0, (section, row["sdk"])
            assert row["p50_us"] > 0, (section, row["sdk"])
    for row in report["loopback"]:
        assert row["lost"] == 0  # a couple of thousand events never fill a queue
    delayed = {(row["delay_ms"], row["workload"]) for row in report["delayed"]}
    assert delayed == {(20.0, "burst"), (20.0, "paced")}
    assert all(row["refused_requests"] > 0 for row in report["outage"])  # the outage happened
    memory = {row["sdk"]: row for row in report["memory"]}
    assert set(sdks) <= set(memory)
    assert memory["pug"]["queued"] > 0
    assert memory["pug"]["growth_mb"] >= 0
    assert len(report["variants"]) == 3
    for read in ("profiles_list", "feed", "feed_page_1000"):
        assert report["reads"][read]["items"] >= 500
    assert any("track" in row["function"] for row in report["profile"]["caller"])
    assert len(report["targets"]) >= 10
    assert report["storage"]["returncode"] == 0
    assert "SqliteStorage" in report["storage"]["text"]
    assert "lost 0" in report["storage"]["text"]
    assert report["asyncio"]["returncode"] == 0
    assert "AsyncPug: list + track" in report["asyncio"]["text"]
    assert {t["passed"] for t in report["targets"]} <= {True, False, None}

    table = (tmp_path / "latest.md").read_text()
    assert table in done.stdout
    assert table.startswith("Machine: ")
    for heading in (
        "### Loopback (0 ms)",
        "### Delayed sinks",
        "### Validating server",
        "### Outage",
        "### Memory behind a stopped server",
        "### Storage: MemoryStorage and SqliteStorage",
        "### asyncio: the event loop's lateness",
        "### Targets, from this run",
    ):
        assert heading in table
    assert "| pug-grpc (defaults) |" in table
    assert "| 20 ms burst: ≥ 10x Segment's delivered rate |" in table or len(sdks) < 3


def test_pug_settings_keep_known_fields_and_name_the_others() -> None:
    sys.path.insert(0, str(SCRIPTS))
    try:
        from bench_runs import pug_settings
    finally:
        sys.path.remove(str(SCRIPTS))

    settings, ignored = pug_settings(["max_size=500", "max_wait=0.5", "no_such_knob=8"])
    assert settings == {"max_size": 500, "max_wait": 0.5}
    assert ignored == ["no_such_knob"]
    with pytest.raises(ValueError, match="name=value"):
        pug_settings(["max_size"])
