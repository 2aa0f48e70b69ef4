"""``pug-grpc demo`` end to end, as a subprocess, with a smaller workload to stay fast."""

from __future__ import annotations

import re

import pytest

from pug_grpc.testing import local_server
from tests.support.cli import run_cli

pytestmark = pytest.mark.timeout(180)


def test_demo_with_its_own_local_server() -> None:
    result = run_cli("demo", "--events", "3000", "--users", "40", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "(in-process)" in out
    assert "Sent 3,000 events, 3,000 accepted, 0 dropped, 0 rejected, 0 undelivered" in out
    assert re.search(r"\d[\d,]* anonymous visitors aliased", out)
    assert re.search(r"Throughput: [\d,]+ events/s", out)
    assert "ProfilesService.GetByExternalId" in out
    assert "ActivityService.GetActivityFeed" in out
    bars = [line for line in out.splitlines() if "█" in line]
    assert len(bars) == 7  # one bar per day of the trend
    assert sum(int(line.split()[-1].replace(",", "")) for line in bars) <= 3000
    assert out.rstrip().endswith("Done.")
    assert result.stderr == ""


def test_demo_against_a_configured_endpoint() -> None:
    with local_server() as server:
        env = {"PUG_ENDPOINT": server.endpoint, "PUG_API_KEY": server.private_key}
        result = run_cli("demo", "--events", "1500", "--users", "25", "--days", "3", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "(in-process)" not in result.stdout
        assert server.stored_event_count() == 1500
        assert {e.kind for e in server.events} >= {"dashboard_opened", "feature_used", "search"}
        identified = {r.external_id for r in server.identifies}
        assert len(identified) == 25
        aliased = [r for r in server.identifies if r.anonymous_id]
        assert aliased
        assert all(r.anonymous_id.startswith("anon-") for r in aliased)
