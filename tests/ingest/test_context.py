"""The request context end to end: what the local server received and what it stored."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pug_grpc import BatchSettings, Pug
from pug_grpc._ingest import user_agents
from pug_grpc._ingest.context import CONTEXT_KEYS, current_context, request_context
from pug_grpc._ingest.messages import AUTO_PROPERTIES
from pug_grpc._ingest.properties import MAX_STRING_LEN
from pug_grpc.testing import LocalServer, local_server

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SESSION = "0190a6c5-4f1e-7abc-8def-0123456789ab"
OTHER_SESSION = "0190a6c5-4f1e-7abc-8def-0123456789ac"
SENT_BY_CLIENT = CONTEXT_KEYS | set(AUTO_PROPERTIES)
SERVER_OWNED = {"$ip", "$channel", "$referrerDomain", "$bot_score", "$verified_bot", "$country"}
NO_WAIT = BatchSettings(max_wait=0.01)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


@pytest.fixture
def client(server: LocalServer) -> Iterator[Pug]:
    server.reset()
    pug = Pug(server.private_key, server.endpoint, batch=NO_WAIT)
    yield pug
    pug.close()


def received(server: LocalServer, pug: Pug) -> list[Any]:
    assert pug.flush(10).completed
    return list(server.events)


def stored_auto(server: LocalServer, kind: str) -> dict[str, Any]:
    (row,) = server.store.events(server.project_id, kind=kind)
    return {key: value for key, (_, value) in row.auto_props.items()}


def test_events_inside_a_context_carry_the_end_users_url_referrer_locale_and_browser(
    server: LocalServer, client: Pug
) -> None:
    with client.context(
        url="https://shop.example/pricing?utm_source=newsletter&utm_medium=email",
        referrer="https://www.google.com/search?q=pug",
        user_agent=CHROME_WINDOWS,
        locale="en_us",
        page_title="Pricing",
    ):
        client.track("alice", "pricing.viewed", {"plan": "pro"})
    client.track("alice", "outside")
    inside, outside = received(server, client)
    auto = {k: getattr(v, str(v.WhichOneof("value"))) for k, v in inside.auto_properties.items()}
    assert auto == {
        **AUTO_PROPERTIES,
        "$url": "https://shop.example/pricing?utm_source=newsletter&utm_medium=email",
        "$referrer": "https://www.google.com/search?q=pug",
        "$locale": "en_us",
        "$pageTitle": "Pricing",
        "$browser": "Chrome",
        "$browserVersion": "124.0.0.0",
        "$os": "Windows",
        "$osVersion": "10",
        "$device": "Desktop",
        "$mobile": False,
    }
    assert inside.custom_properties["plan"].string_value == "pro"
    assert set(outside.auto_properties) == set(AUTO_PROPERTIES)
    # What Pug derives from them on the server (the local server does it as the README says).
    stored = stored_auto(server, "pricing.viewed")
    assert stored["$pathname"] == "/pricing"
    assert stored["$hostname"] == "shop.example"
    assert stored["$utmSource"] == "newsletter"
    assert stored["$referrerDomain"] == "google.com"
    assert stored["$channel"] == "email"
    assert stored["$locale"] == "en-US"
    assert stored["$browser"] == "Chrome"  # the visitor's, not the backend's gRPC agent
    assert stored_auto(server, "outside")["$browser"] == "pug-grpc"  # the backend itself


def test_an_ai_assistant_referrer_reaches_pug_as_the_referrer_domain(
    server: LocalServer, client: Pug
) -> None:
    with client.context(url="https://shop.example/", referrer="https://chatgpt.com/"):
        client.track("alice", "landing")
    received(server, client)
    stored = stored_auto(server, "landing")
    assert stored["$referrerDomain"] == "chatgpt.com"
    assert stored["$channel"] == "referral"


def test_keys_the_server_owns_are_never_sent(server: LocalServer, client: Pug) -> None:
    with client.context(url="https://a.example/", properties={"$ip": "203.0.113.9", "ok": 1}):
        client.track("alice", "k", {"$channel": "forged", "$referrerDomain": "forged.example"})
    (event,) = received(server, client)
    assert set(event.auto_properties) <= SENT_BY_CLIENT
    assert not set(event.custom_properties) & SERVER_OWNED
    assert dict(event.custom_properties)["ok"].int_value == 1


def test_nested_contexts_merge_inner_values_win_and_empty_text_clears(
    server: LocalServer, client: Pug
) -> None:
    with client.context(
        url="https://a.example/outer",
        locale="de-DE",
        page_title="Outer",
        properties={"tenant": "acme", "tier": "gold"},
    ):
        with client.context(url="https://a.example/inner", page_title="", properties={"tier": 2}):
            client.track("alice", "inner")
        client.track("alice", "after")
    inner, after = received(server, client)
    assert inner.auto_properties["$url"].string_value == "https://a.example/inner"
    assert inner.auto_properties["$locale"].string_value == "de-DE"
    assert "$pageTitle" not in inner.auto_properties
    assert inner.custom_properties["tenant"].string_value == "acme"
    assert inner.custom_properties["tier"].int_value == 2
    assert after.auto_properties["$url"].string_value == "https://a.example/outer"
    assert after.auto_properties["$pageTitle"].string_value == "Outer"
    assert after.custom_properties["tier"].string_value == "gold"


def test_call_properties_win_over_the_contexts(server: LocalServer, client: Pug) -> None:
    when = dt.datetime(2026, 5, 1, 8, 30, tzinfo=dt.UTC)
    with client.context(properties={"source": "context", "kept": True, "since": when}):
        client.track("alice", "k", {"source": "call"})
    (event,) = received(server, client)
    assert event.custom_properties["source"].string_value == "call"
    assert event.custom_properties["kept"].bool_value is True
    since = event.custom_properties["since"]
    assert since.WhichOneof("value") == "timestamp_value"
    assert since.timestamp_value.ToDatetime(dt.UTC) == when


def test_session_id_the_call_wins_over_the_context_which_wins_over_the_users_own(
    server: LocalServer, client: Pug
) -> None:
    client.track("alice", "own")
    with client.context(session_id=SESSION):
        client.track("alice", "context")
        client.track("alice", "call", session_id=OTHER_SESSION)
        with client.context(session_id="not-a-uuid"):  # dropped with a warning; outer stays
            client.track("alice", "bad")
    own, context, call, bad = received(server, client)
    assert own.session_id == client.session_for("alice")
    assert own.session_id not in (SESSION, OTHER_SESSION)
    assert context.session_id == SESSION
    assert call.session_id == OTHER_SESSION
    assert bad.session_id == SESSION


def test_the_context_follows_asyncio_tasks_and_never_leaks_between_them(
    server: LocalServer, client: Pug
) -> None:
    async def request(path: str) -> None:
        with client.context(url=f"https://a.example/{path}"):
            await asyncio.sleep(0.01)  # interleave with the other requests
            task = asyncio.create_task(track_later(path))
            await task

    async def track_later(path: str) -> None:
        await asyncio.sleep(0.01)
        client.track(f"user-{path}", "async.view")

    async def main() -> None:
        await asyncio.gather(*(request(str(i)) for i in range(20)))

    asyncio.run(main())
    events = received(server, client)
    assert len(events) == 20
    for event in events:
        path = event.distinct_id.removeprefix("user-")
        assert event.auto_properties["$url"].string_value == f"https://a.example/{path}"
    assert current_context() is None


def test_the_context_follows_threads_started_in_a_copied_context(
    server: LocalServer, client: Pug
) -> None:
    with client.context(url="https://a.example/job"):
        copied = contextvars.copy_context()
        plain = threading.Thread(target=client.track, args=("alice", "plain.thread"))
    worker = threading.Thread(target=copied.run, args=(client.track, "alice", "copied.thread"))
    for thread in (worker, plain):
        thread.start()
        thread.join()
    by_kind = {e.kind: e for e in received(server, client)}
    assert by_kind["copied.thread"].auto_properties["$url"].string_value == "https://a.example/job"
    assert "$url" not in by_kind["plain.thread"].auto_properties  # a new thread: a new context


def test_bad_context_values_are_dropped_with_a_warning_never_raised(
    server: LocalServer, client: Pug, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pug_grpc")
    with client.context(
        url=42,  # type: ignore[arg-type]
        referrer="bad \udc80 text",
        properties=["not", "a", "mapping"],  # type: ignore[arg-type]
        page_title="x" * 5000,
    ):
        client.track("alice", "k")
    (event,) = received(server, client)
    assert "$url" not in event.auto_properties
    assert "$referrer" not in event.auto_properties
    assert len(event.auto_properties["$pageTitle"].string_value) == MAX_STRING_LEN
    assert "context url dropped" in caplog.text
    assert "context referrer dropped" in caplog.text


def test_a_mobile_user_agent_is_parsed_to_the_phone_it_names(
    server: LocalServer, client: Pug
) -> None:
    with client.context(user_agent=SAFARI_IPHONE):
        client.track("alice", "k")
    (event,) = received(server, client)
    auto = event.auto_properties
    assert auto["$browser"].string_value == "Safari"
    assert auto["$os"].string_value == "iOS"
    assert auto["$osVersion"].string_value == "17.4"
    assert auto["$device"].string_value == "Mobile"
    assert auto["$mobile"].bool_value is True


def test_a_user_agent_is_parsed_once_however_many_requests_carry_it() -> None:
    header = CHROME_WINDOWS.replace("124.0.0.0", "124.0.9.9")
    before = user_agents._parsed.cache_info()
    for _ in range(200):
        with request_context(user_agent=header):
            pass
    after = user_agents._parsed.cache_info()
    assert after.misses - before.misses == 1
    assert after.maxsize == user_agents.CACHE_SIZE


@settings(max_examples=300, deadline=None)
@given(header=st.text(max_size=2000) | st.sampled_from([CHROME_WINDOWS, SAFARI_IPHONE, ""]))
def test_any_user_agent_gives_only_browser_keys_with_sendable_values(header: str) -> None:
    found = user_agents.parse_user_agent(header)
    assert set(found) <= set(user_agents.AGENT_KEYS)
    for key, value in found.items():
        assert isinstance(value, bool) if key == "$mobile" else isinstance(value, str)
    assert user_agents._parsed.cache_info().currsize <= user_agents.CACHE_SIZE


urls = st.one_of(
    st.text(max_size=1500),
    st.builds(
        lambda host, path, query: f"https://{host}/{path}?{query}",
        st.from_regex(r"[a-z]{1,12}\.[a-z]{2,4}", fullmatch=True),
        st.text(max_size=40),
        st.text(max_size=40),
    ),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    url=urls,
    referrer=st.none() | urls,
    agent=st.text(max_size=300),
    properties=st.dictionaries(
        st.text(max_size=8), st.integers(-(2**70), 2**70) | st.text(max_size=20), max_size=4
    ),
)
def test_any_context_input_delivers_the_event_with_only_the_contexts_keys(
    server: LocalServer, url: str, referrer: str | None, agent: str, properties: dict[str, Any]
) -> None:
    server.reset()
    pug = Pug(server.private_key, server.endpoint, batch=NO_WAIT)
    try:
        with pug.context(url=url, referrer=referrer, user_agent=agent, properties=properties):
            pug.track("fuzz", "fuzz.event")
        assert pug.flush(10).ok
        (event,) = server.events
    finally:
        pug.close()
    assert set(event.auto_properties) <= SENT_BY_CLIENT
    sendable = url[:MAX_STRING_LEN]
    try:
        sendable.encode("utf-8")
    except UnicodeEncodeError:
        sendable = ""  # a lone surrogate: the context drops the url
    if sendable:
        assert event.auto_properties["$url"].string_value == sendable
    else:
        assert "$url" not in event.auto_properties
    assert not any(key.startswith("$") for key in event.custom_properties)


def test_without_ua_parser_no_browser_property_is_sent_and_the_rest_still_is(
    tmp_path: Any,
) -> None:
    script = f"""
import sys
sys.modules["ua_parser"] = None  # as if the useragent extra were not installed
from pug_grpc import Pug, BatchSettings
from pug_grpc._ingest import user_agents
from pug_grpc.testing import local_server
assert not user_agents.available()
with local_server() as server:
    with Pug(server.private_key, server.endpoint) as pug:
        with pug.context(url="https://a.example/x", user_agent={CHROME_WINDOWS!r}):
            pug.track("alice", "k")
        assert pug.flush(10).ok
    (event,) = server.events
    print(sorted(event.auto_properties))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    keys = eval(done.stdout.strip().splitlines()[-1])
    assert "$url" in keys
    assert not set(keys) & set(user_agents.AGENT_KEYS)


def test_the_asyncio_client_opens_the_same_context(server: LocalServer) -> None:
    from pug_grpc import AsyncPug

    server.reset()

    async def main() -> None:
        async with AsyncPug(server.private_key, server.endpoint, batch=NO_WAIT) as apug:
            with apug.context(url="https://a.example/async", locale="sv-SE"):
                await asyncio.sleep(0)
                apug.track("alice", "async.k")
            assert (await apug.flush(10)).ok
            assert apug.session_for("alice") is not None

    asyncio.run(main())
    (event,) = server.events
    assert event.auto_properties["$url"].string_value == "https://a.example/async"
    assert event.auto_properties["$locale"].string_value == "sv-SE"
