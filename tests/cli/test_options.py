"""The command line speaks CLI: shared options anywhere, warnings shown, option names, hints."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from pug_grpc.testing import LocalServer, local_server
from tests.support.cli import run_cli

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


def test_connection_options_go_before_or_after_the_command(server: LocalServer) -> None:
    connection = ["--endpoint", server.endpoint, "--api-key", server.private_key]
    before = run_cli(*connection, "track", "opt-1", "signup")
    assert before.returncode == 0, before.stderr
    assert before.stdout == "signup for opt-1: delivered\n"
    after = run_cli("track", "opt-2", "signup", *connection)
    assert after.returncode == 0, after.stderr
    split = run_cli(
        "--endpoint", server.endpoint, "track", "opt-3", "signup", "--api-key", server.private_key
    )
    assert split.returncode == 0, split.stderr
    nested = run_cli("--timeout", "5", *connection, "profiles", "--quiet", "get", "opt-1")
    assert nested.returncode == 0, nested.stderr
    assert '"externalId": "opt-1"' in nested.stdout
    # The one after the command wins.
    last = run_cli("--endpoint", "http://127.0.0.1:1", "track", "opt-4", "signup", *connection)
    assert last.returncode == 0, last.stderr
    assert {"opt-1", "opt-2", "opt-3", "opt-4"} <= {e.distinct_id for e in server.events}


def test_a_dropped_property_is_a_warning_and_is_said_on_stdout(server: LocalServer) -> None:
    env = {"PUG_ENDPOINT": server.endpoint, "PUG_API_KEY": server.private_key}
    shown = run_cli(
        "track", "warn-1", "signup", "--prop", "$lib=mine", "--prop", "plan=pro", env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "signup for warn-1: delivered, with 1 warning\n"
    assert shown.stderr == (
        "pug-grpc: warning: property '$lib' dropped: '$' keys are reserved for auto-properties\n"
    )
    quiet = run_cli("--quiet", "track", "warn-2", "signup", "--prop", "$lib=mine", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout == "signup for warn-2: delivered, with 1 warning\n"
    stored = next(e for e in server.events if e.distinct_id == "warn-1")
    assert "$lib" not in stored.custom_properties
    assert stored.custom_properties["plan"].string_value == "pro"


def test_messages_name_options_not_keyword_arguments() -> None:
    insecure = run_cli(
        "track", "u", "signup", "--endpoint", "http://pug.example.com:50051", "--api-key", "prv_x"
    )
    assert insecure.returncode == 1
    assert "--allow-insecure" in insecure.stderr
    assert "allow_insecure" not in insecure.stderr
    no_key = run_cli("track", "u", "signup", "--endpoint", "http://127.0.0.1:1")
    assert no_key.returncode == 1
    assert no_key.stderr == (
        "pug-grpc: error: an API key is required (pass --api-key KEY or set PUG_API_KEY)\n"
    )
    no_endpoint = run_cli("profiles", "get", "x", "--api-key", "prv_x")
    assert no_endpoint.returncode == 1
    assert "--endpoint URL" in no_endpoint.stderr
    assert "endpoint=..." not in no_endpoint.stderr


def test_a_millisecond_timestamp_gets_a_hint(server: LocalServer) -> None:
    env = {"PUG_ENDPOINT": server.endpoint, "PUG_API_KEY": server.private_key}
    result = run_cli("track", "u", "signup", "--timestamp", "1714557600000", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "pug-grpc: error: --timestamp: timestamp '1714557600000' is outside the supported range"
        " (years 1 to 9999); it looks like milliseconds since the epoch (2024-05-01 10:00:00"
        " UTC): give seconds (1714557600)\n"
    )


def test_trend_buckets_are_labelled_in_the_requested_time_zone() -> None:
    zone = "Pacific/Kiritimati"
    with local_server(reporting_timezone=zone) as server:  # Pug buckets in the project's zone
        _check_trend_labels(server, zone)


def _check_trend_labels(server: LocalServer, zone: str) -> None:
    env = {"PUG_ENDPOINT": server.endpoint, "PUG_API_KEY": server.private_key}
    # UTC+14 all year: its midnight is 10:00 UTC the day before, so a UTC label shows a date
    # one day earlier than the zone's.
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    sent = run_cli("track", "tz-1", "tz_probe", "--timestamp", moment.isoformat(), env=env)
    assert sent.returncode == 0, sent.stderr
    chart = run_cli(
        "insights", "trends", "--kind", "tz_probe", "--days", "3", "--timezone", zone, env=env
    )
    assert chart.returncode == 0, chart.stderr
    counted = [line.split() for line in chart.stdout.splitlines() if re.search(r"█\s+1$", line)]
    assert [fields[0] for fields in counted] == [f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d}"]
    hourly = run_cli(
        "insights",
        "trends",
        "--kind",
        "tz_probe",
        "--days",
        "1",
        "--granularity",
        "hour",
        "--timezone",
        zone,
        env=env,
    )
    assert hourly.returncode == 0, hourly.stderr
    local = moment.astimezone(ZoneInfo(zone))
    assert f"{local:%m-%d %H}:00 +14" in hourly.stdout
    unknown = run_cli("insights", "trends", "--timezone", "Mars/Olympus", env=env)
    assert unknown.returncode == 1
    assert "--timezone: unknown time zone 'Mars/Olympus'" in unknown.stderr
