"""``default_properties`` under every event; the ``before_send`` hook may change or drop it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pug_grpc import BatchSettings, Pug, TrackedEvent
from pug_grpc.testing import LocalServer, local_server

NO_WAIT = BatchSettings(max_wait=0.01)
SESSION = "0190a6c5-4f1e-7abc-8def-0123456789ab"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


class Reports:
    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def __call__(self, error: BaseException, items: Any) -> None:
        self.errors.append(error)


def client(server: LocalServer, **options: Any) -> Pug:
    server.reset()
    return Pug(server.private_key, server.endpoint, batch=NO_WAIT, **options)


def custom(event: Any) -> dict[str, Any]:
    return {k: getattr(v, str(v.WhichOneof("value"))) for k, v in event.custom_properties.items()}


def test_default_properties_sit_under_the_contexts_and_the_calls(server: LocalServer) -> None:
    defaults = {"service": "checkout", "region": "eu", "tier": "free", "$ip": "1.2.3.4"}
    with client(server, default_properties=defaults) as pug:
        pug.track("alice", "plain")
        with pug.context(properties={"tier": "gold", "request": "r-1"}):
            pug.track("alice", "in.context", {"region": "us"})
        assert pug.flush(10).ok
    plain, scoped = server.events
    assert custom(plain) == {"service": "checkout", "region": "eu", "tier": "free"}
    assert custom(scoped) == {
        "service": "checkout",
        "region": "us",
        "tier": "gold",
        "request": "r-1",
    }
    assert "$ip" not in plain.auto_properties


def test_default_properties_must_be_a_mapping() -> None:
    with pytest.raises(ValueError, match="default_properties"):
        Pug(send=False, default_properties=["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="before_send"):
        Pug(send=False, before_send="not callable")  # type: ignore[arg-type]


def test_before_send_sees_the_whole_event_and_may_change_it(server: LocalServer) -> None:
    seen: list[TrackedEvent] = []

    def hook(event: TrackedEvent) -> TrackedEvent:
        seen.append(
            dataclasses.replace(
                event,
                properties=dict(event.properties),
                auto_properties=dict(event.auto_properties),
            )
        )
        event.properties["plan"] = event.properties["plan"].upper()
        event.properties["hooked"] = True
        url = str(event.auto_properties.get("$url", ""))
        event.auto_properties["$url"] = url.split("?", maxsplit=1)[
            0
        ]  # keep query strings out of Pug
        event.auto_properties["$ip"] = "203.0.113.9"  # never sent from a context
        return dataclasses.replace(event, kind="signup.done")

    when = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    with client(server, before_send=hook, default_properties={"app": "web"}) as pug:
        with pug.context(url="https://a.example/welcome?token=secret", locale="fr-FR"):
            pug.track("alice", "signup", {"plan": "pro"}, timestamp=when, session_id=SESSION)
        assert pug.flush(10).ok
    (event,) = server.events
    (before,) = seen
    assert before.kind == "signup"
    assert before.distinct_id == "alice"
    assert before.properties == {"app": "web", "plan": "pro"}
    assert before.auto_properties == {"$url": "https://a.example/welcome?token=secret",
                                      "$locale": "fr-FR"}  # fmt: skip
    assert before.session_id == SESSION
    assert before.timestamp == when
    assert before.event_id is None
    assert event.kind == "signup.done"
    assert custom(event) == {"app": "web", "plan": "PRO", "hooked": True}
    assert event.auto_properties["$url"].string_value == "https://a.example/welcome"
    assert event.auto_properties["$locale"].string_value == "fr-FR"
    assert "$ip" not in event.auto_properties
    assert event.occur_time.seconds == int(when.timestamp())


def test_before_send_returning_none_drops_the_event_and_counts_it(server: LocalServer) -> None:
    reports = Reports()

    def hook(event: TrackedEvent) -> TrackedEvent | None:
        return None if event.kind.startswith("health.") else event

    with client(server, before_send=hook, on_error=reports) as pug:
        pug.track("probe", "health.check")
        pug.track("alice", "order.placed")
        assert pug.flush(10).ok
        stats = pug.stats()
    assert [e.kind for e in server.events] == ["order.placed"]
    assert stats.filtered == 1
    assert stats.rejected == 0
    assert stats.enqueued == 1
    assert not reports.errors


def test_an_exception_in_before_send_is_logged_and_the_event_sent_unchanged(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(event: TrackedEvent) -> TrackedEvent:
        event.properties["half"] = "done"  # changed a copy, then failed
        raise RuntimeError("bug in the hook")

    def junk(event: TrackedEvent) -> Any:
        return {"kind": "not an event"}

    with client(server, before_send=hook) as pug:
        pug.track("alice", "k", {"a": 1})
        assert pug.flush(10).ok
    with client(server, before_send=junk) as pug:
        pug.track("alice", "k", {"a": 2})
        assert pug.flush(10).ok
    assert custom(server.events[0]) == {"a": 2}
    assert "before_send raised" in caplog.text
    assert "bug in the hook" in caplog.text
    assert "not a TrackedEvent" in caplog.text


def test_an_event_the_hook_breaks_is_refused_and_reported(server: LocalServer) -> None:
    reports = Reports()

    def hook(event: TrackedEvent) -> TrackedEvent:
        return dataclasses.replace(event, distinct_id="cookieless-x", session_id="nope")

    with client(server, before_send=hook, on_error=reports) as pug:
        pug.track("alice", "k")
        assert pug.flush(10).ok
        assert pug.stats().rejected == 1
    assert server.events == []
    assert "after before_send" in str(reports.errors[0])


keys = st.text(alphabet="ab$", min_size=1, max_size=3)
int64 = st.integers(-(2**63), 2**63 - 1)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    defaults=st.dictionaries(keys, int64 | st.text(max_size=6), max_size=4),
    call=st.dictionaries(keys, int64 | st.text(max_size=6), max_size=4),
)
def test_the_call_always_wins_over_the_defaults(
    server: LocalServer, defaults: dict[str, Any], call: dict[str, Any]
) -> None:
    with client(server, default_properties=defaults) as pug:
        pug.track("fuzz", "k", call)
        assert pug.flush(10).ok
    (event,) = server.events
    expected = {k: v for k, v in {**defaults, **call}.items() if not k.startswith("$")}
    assert custom(event) == expected
