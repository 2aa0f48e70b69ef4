"""Default sessions: one per user, renewed after 30 minutes without an event, bounded memory."""

from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pug_grpc import BatchSettings, Pug
from pug_grpc._ingest.sessions import DEFAULT_MAX_USERS, SESSION_TIMEOUT_S, SessionTracker
from pug_grpc.testing import LocalServer, local_server

NS = 1_000_000_000
T0 = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


@pytest.fixture
def client(server: LocalServer) -> Iterator[Pug]:
    server.reset()
    pug = Pug(server.private_key, server.endpoint, batch=BatchSettings(max_wait=0.01))
    yield pug
    pug.close()


def counter_ids() -> Iterator[str]:
    return (f"s{n}" for n in itertools.count())


def test_each_user_gets_a_session_of_their_own_at_the_server(
    server: LocalServer, client: Pug
) -> None:
    for user in ("alice", "bob", "carol", "alice", "bob"):
        client.track(user, "page.view")
    assert client.flush(10).ok
    sessions = {e.distinct_id: set() for e in server.events}
    for event in server.events:
        sessions[event.distinct_id].add(event.session_id)
    assert all(len(ids) == 1 for ids in sessions.values())
    (alice,), (bob,), (carol,) = sessions["alice"], sessions["bob"], sessions["carol"]
    assert len({alice, bob, carol}) == 3
    for sid in (alice, bob, carol):
        uuid.UUID(sid)
    assert client.session_for("alice") == alice
    assert client.session_for("nobody") is None


def test_a_session_is_renewed_after_thirty_minutes_without_an_event(
    server: LocalServer, client: Pug
) -> None:
    minutes = [0, 10, 40, 70.5, 71, 200]  # gaps: 10, 30 (same), 30.5 (new), 0.5, 129 (new)
    for m in minutes:
        client.track("alice", "tick", timestamp=START + dt.timedelta(minutes=m))
    assert client.flush(10).ok
    ids = [e.session_id for e in server.events]
    assert ids[0] == ids[1] == ids[2]
    assert ids[3] == ids[4] != ids[2]
    assert ids[5] not in ids[:5]
    # Pug's own sessions, as the server groups them, are the same.
    stored = server.store.events(server.project_id, kind="tick", newest_first=False)
    assert [row.session_id for row in stored] == ids


def test_an_older_event_joins_the_current_session(server: LocalServer, client: Pug) -> None:
    client.track("alice", "late", timestamp=START + dt.timedelta(minutes=50))
    client.track("alice", "earlier", timestamp=START + dt.timedelta(minutes=5))
    client.track("alice", "next", timestamp=START + dt.timedelta(minutes=70))
    assert client.flush(10).ok
    assert len({e.session_id for e in server.events}) == 1


def test_memory_is_bounded_least_recently_seen_users_go_first(
    server: LocalServer,
) -> None:
    server.reset()
    with Pug(server.private_key, server.endpoint, max_session_users=3) as pug:
        start = time.time()
        for user in ("a", "b", "c"):
            pug.track(user, "k", timestamp=start)
        first_a = pug.session_for("a")
        # a is the most recent now (an entry is refreshed at most once a second)
        pug.track("a", "k", timestamp=start + 2)
        pug.track("d", "k", timestamp=start + 3)  # b, the least recently seen, goes
        assert len(pug._sessions) == 3
        assert pug.session_for("b") is None
        assert pug.session_for("a") == first_a
        pug.track("b", "k")  # seen again after eviction: a new session
        assert pug.flush(10).ok
    b_ids = [e.session_id for e in server.events if e.distinct_id == "b"]
    assert len(set(b_ids)) == 2


def test_the_default_bound_holds_for_many_more_users() -> None:
    tracker = SessionTracker()
    for n in range(DEFAULT_MAX_USERS + 2500):
        tracker.session_for(f"user-{n}", T0 + n)
    assert len(tracker) == DEFAULT_MAX_USERS
    assert tracker.peek("user-0") is None
    assert tracker.peek(f"user-{DEFAULT_MAX_USERS + 2499}") is not None


def test_the_options_are_checked() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_users"):
            SessionTracker(max_users=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_users"):
        Pug(send=False, max_session_users=0)


steps = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.integers(min_value=-40 * 60, max_value=45 * 60),  # seconds since the previous call
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, cap=st.integers(min_value=1, max_value=6))
def test_the_tracker_agrees_with_a_plain_model_of_the_rule(
    steps: list[tuple[str, int]], cap: int
) -> None:
    tracker = SessionTracker(max_users=cap, new_id=counter_ids().__next__)
    model: dict[str, tuple[str, int]] = {}  # user -> (session, latest time); dict order = LRU
    now = T0
    made = 0
    for user, delta in steps:
        now += delta * NS
        got = tracker.session_for(user, now)
        if user in model and now - model[user][1] <= SESSION_TIMEOUT_S * NS:
            sid, latest = model.pop(user)
            expected = (sid, max(latest, now))
        else:
            model.pop(user, None)
            expected = (f"s{made}", now)
            made += 1
        model[user] = expected
        while len(model) > cap:
            del model[next(iter(model))]
        assert got == expected[0]
        assert len(tracker) == len(model) <= cap
    for user in "abcde":
        assert tracker.peek(user) == (model[user][0] if user in model else None)
