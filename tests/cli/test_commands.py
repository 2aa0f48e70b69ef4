"""The thin commands: track, identify, alias, profiles, activity, insights."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pug_grpc.testing import LocalServer, local_server
from tests.support.cli import run_cli

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


def _env(server: LocalServer, key: str | None = None) -> dict[str, str]:
    return {"PUG_ENDPOINT": server.endpoint, "PUG_API_KEY": key or server.private_key}


def test_track_identify_alias_then_read_back(server: LocalServer) -> None:
    env = _env(server)
    tracked = run_cli(
        "track",
        "anon-7",
        "signup",
        "--prop",
        "plan=pro",
        "--prop",
        "seats=3",
        "--timestamp",
        "2024-05-01T10:00:00Z",
        env=env,
    )
    assert tracked.returncode == 0, tracked.stderr
    assert tracked.stdout == "signup for anon-7: delivered\n"
    identified = run_cli(
        "identify", "carol", "--trait", "plan=team", "--traits", '{"age": 41}', env=env
    )
    assert identified.returncode == 0, identified.stderr
    aliased = run_cli("alias", "anon-7", "carol", env=env)
    assert aliased.returncode == 0, aliased.stderr
    event = next(e for e in server.events if e.distinct_id == "anon-7")
    assert event.custom_properties["seats"].int_value == 3
    assert event.occur_time.seconds == 1714557600

    profile = run_cli("profiles", "get", "carol", env=env)
    assert profile.returncode == 0, profile.stderr
    body = json.loads(profile.stdout)
    assert body["properties"] == {"plan": "team", "age": 41.0}
    assert body["activity"]["totalEvents"] == "1"  # the anonymous event now belongs to carol
    by_id = run_cli("profiles", "get", "--id", body["id"], env=env)
    assert json.loads(by_id.stdout)["externalId"] == "carol"

    listed = run_cli("profiles", "list", "--where", "plan=team", env=env)
    assert [json.loads(line)["externalId"] for line in listed.stdout.splitlines()] == ["carol"]

    feed = run_cli("activity", "feed", "carol", "--limit", "5", env=env)
    assert feed.returncode == 0, feed.stderr
    assert [json.loads(line)["kind"] for line in feed.stdout.splitlines()] == ["signup"]


def test_insights_trends_chart_and_json(server: LocalServer) -> None:
    env = _env(server)
    assert run_cli("track", "dave", "report_exported", env=env).returncode == 0
    chart = run_cli("insights", "trends", "--kind", "report_exported", "--days", "2", env=env)
    assert chart.returncode == 0, chart.stderr
    lines = chart.stdout.splitlines()
    assert lines[0] == "report_exported"
    assert lines[-1].rstrip().endswith("1")
    assert "█" in lines[-1]
    raw = run_cli("insights", "trends", "--json", "--granularity", "hour", "--days", "1", env=env)
    assert "series" in json.loads(raw.stdout)["trends"]


def test_errors_are_one_line_and_debug_shows_the_traceback(server: LocalServer) -> None:
    missing = run_cli("profiles", "get", "nobody", env=_env(server))
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("pug-grpc: error: NOT_FOUND")
    assert "request_id=req_" in missing.stderr
    debug = run_cli("profiles", "get", "nobody", "--debug", env=_env(server))
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    public = run_cli("profiles", "get", "carol", env=_env(server, server.public_key))
    assert public.returncode == 1
    assert "pub_" in public.stderr
    assert server.public_key not in public.stderr  # masked
    bad_event = run_cli("track", "u", "not a kind", env=_env(server))
    assert bad_event.returncode == 1
    # The client's warning (shown by default), then the outcome.
    first, last = bad_event.stderr.splitlines()
    assert first.startswith("pug-grpc: warning: dropped: invalid event: kind must be")
    assert last.startswith("pug-grpc: error: not a kind for u: not delivered")
    no_endpoint = run_cli("track", "u", "signup", env={"PUG_API_KEY": server.private_key})
    assert no_endpoint.returncode == 1
    assert "endpoint is required" in no_endpoint.stderr
    flags = run_cli(
        "track", "u", "signup", "--endpoint", server.endpoint, "--api-key", server.private_key
    )
    assert flags.returncode == 0, flags.stderr


def test_help_is_there_for_every_command() -> None:
    top = run_cli("--help")
    assert top.returncode == 0
    assert "PUG_ENDPOINT" in top.stdout
    for command in ("serve", "demo", "track", "identify", "alias", "import"):
        assert "--endpoint" in run_cli(command, "--help").stdout
    assert "--limit" in run_cli("profiles", "list", "--help").stdout
    usage = run_cli("track")
    assert usage.returncode == 2
    assert "distinct_id" in usage.stderr
