"""The reads hung on the ingestion facade: ``Pug.profiles``, ``Pug.activity``, ``Pug.insights``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2

from pug_grpc import PugError, PugPublicKeyError
from pug_grpc._pug import Pug
from tests.support.read_servers import Running, sample_events, sample_profiles

KEY = "prv_test_0123456789abcdef"
PUB = "pub_test_0123456789abcdef"


def test_reads_share_the_clients_channel_and_credentials(server: Running) -> None:
    server.state.profiles = sample_profiles(3)
    server.state.events = sample_events(["u1"], 4)
    with Pug(KEY, server.endpoint, "proj-1", timeout=5.0) as pug:
        server.state.canned["/shared.profiles.v1.ProfilesService/Get"] = profiles_pb2.GetResponse(
            profile=profiles_pb2.Profile(id="p1")
        )
        assert pug.profiles.get("p1").profile.id == "p1"
        assert [p.id for p in pug.profiles.list()] == ["p0", "p1", "p2"]
        assert len(list(pug.activity.feed("u1", page_size=3))) == 4
        window = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
        assert list(pug.insights.segment_users_page(time_range=window).distinct_ids) == []
        assert pug.profiles is pug.profiles  # built once per channel
    calls = server.state.calls()
    assert {c.metadata["x-api-key"] for c in calls} == {KEY}
    assert {c.metadata["x-project-id"] for c in calls} == {"proj-1"}
    remaining = calls[0].time_remaining
    assert remaining is not None
    assert remaining <= 6.0


def test_public_key_reads_fail_before_the_network(server: Running) -> None:
    with Pug(PUB, server.endpoint, timeout=5.0) as pug:
        with pytest.raises(PugPublicKeyError, match="prv_"):
            pug.profiles.get("p1")
        with pytest.raises(PugPublicKeyError):
            pug.activity.feed("u1")
        with pytest.raises(PugPublicKeyError):
            pug.insights.filter_schema()
    assert server.state.paths() == []


def test_closed_client_refuses_reads(server: Running) -> None:
    pug = Pug(KEY, server.endpoint, timeout=5.0)
    pug.close()
    with pytest.raises(PugError, match="closed"):
        pug.profiles.get("p1")
    assert server.state.paths() == []


def test_client_without_endpoint_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUG_ENDPOINT", raising=False)
    with Pug(KEY, send=False) as pug, pytest.raises(PugError, match="no channel"):
        pug.profiles.get("p1")


def test_read_retry_is_the_default_for_idempotent_reads_only(server: Running) -> None:
    import grpc

    from pug_grpc import PugUnavailableError
    from pug_grpc._retry import RetrySettings
    from tests.support.read_servers import rich_status

    get = "/shared.profiles.v1.ProfilesService/Get"
    delete = "/shared.profiles.v1.ProfilesService/Delete"
    server.state.canned[get] = profiles_pb2.GetResponse(profile=profiles_pb2.Profile(id="p1"))
    unavailable = rich_status(grpc.StatusCode.UNAVAILABLE, "try again", reason="UNAVAILABLE")
    policy = RetrySettings(initial_backoff=0.0, max_backoff=0.0, max_attempts=3)
    # Pug's annotation still names the old tenacity type until the lead switches it.
    with Pug(KEY, server.endpoint, timeout=5.0, read_retry=policy) as pug:  # type: ignore[arg-type]
        server.state.fail(get, unavailable, times=2)
        assert pug.profiles.get("p1").profile.id == "p1"  # third attempt succeeds
        server.state.fail(delete, unavailable, times=1)
        with pytest.raises(PugUnavailableError):
            pug.profiles.delete("p1")  # a write is not retried by the default
    assert [c.path for c in server.state.calls()].count(get) == 3
    assert [c.path for c in server.state.calls()].count(delete) == 1
