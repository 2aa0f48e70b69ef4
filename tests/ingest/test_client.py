"""The ``Pug`` facade end to end: real worker thread, real loopback servers."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pug_grpc
from pug_grpc import (
    BatchSettings,
    FlushResult,
    Pug,
    PugDeliveryError,
    RetrySettings,
    Stats,
    new_anonymous_id,
)
from pug_grpc._errors import PugError
from pug_grpc._ingest.outcomes import CLIENT_CLOSED, INVALID_EVENT, INVALID_IDENTIFY
from pug_grpc._version import __version__
from tests.support.loopback import Loopback, self_signed_cert, serve

KEY = "prv_live_0123456789abcdefSECRET"
SESSION = "0190a6c5-4f1e-7abc-8def-0123456789ab"
NO_WAIT = BatchSettings(max_size=100, max_wait=0.05)


@pytest.fixture
def lb() -> Iterator[Loopback]:
    with serve() as server:
        yield server


class Reports:
    def __init__(self) -> None:
        self.items: list[tuple[BaseException, list[Any]]] = []

    def __call__(self, error: BaseException, items: list[Any]) -> None:
        self.items.append((error, items))

    def reasons(self) -> list[str]:
        return [getattr(e, "reason", type(e).__name__) for e, _ in self.items]


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def client(lb: Loopback, reports: Reports) -> Iterator[Pug]:
    pug = Pug(KEY, lb.endpoint, "proj-1", batch=NO_WAIT, on_error=reports)
    yield pug
    pug.close()


def test_track_delivers_an_event_with_credentials(client: Pug, lb: Loopback) -> None:
    client.track("user-1", "signup.completed", {"plan": "pro", "seats": 3})
    result = client.flush(5)
    assert result.completed
    assert result.ok
    (event,) = lb.recorder.events()
    assert (result.accepted, result.failed) == (1, 0)
    assert event.distinct_id == "user-1"
    assert event.kind == "signup.completed"
    assert event.session_id == client.session_for("user-1")
    assert event.custom_properties["plan"].string_value == "pro"
    assert event.custom_properties["seats"].int_value == 3
    assert event.auto_properties["$lib"].string_value == "pug-grpc"
    assert event.auto_properties["$platform"].string_value == "server"
    assert abs(event.occur_time.seconds - time.time()) < 60
    md = lb.recorder.calls[0].metadata
    assert md["x-api-key"] == KEY
    assert md["x-project-id"] == "proj-1"
    assert md["user-agent"].startswith(f"pug-grpc/{__version__}")


def test_a_full_batch_goes_out_at_once_and_a_lone_event_waits_max_wait(lb: Loopback) -> None:
    with Pug(KEY, lb.endpoint, batch=BatchSettings(max_size=5, max_wait=2.0)) as pug:
        for i in range(5):
            pug.track(f"u{i}", "k")
        # A page is sent when it holds max_size events (or after max_wait): five make one.
        assert lb.recorder.wait_for(lambda r: len(r.events()) == 5, timeout=1.5)
        assert [len(b.events) for b in lb.recorder.batches()] == [5]
        pug.flush(5)  # the reply may still be on its way back
        lone = time.monotonic()
        pug.track("u-lone", "k")
        assert lb.recorder.wait_for(lambda r: len(r.events()) == 6, timeout=5)
        assert time.monotonic() - lone >= 1.9  # it waited max_wait for company
        pug.flush(5)
        assert pug.stats().batches == 2


def test_one_session_per_user_and_per_call_overrides(client: Pug, lb: Loopback) -> None:
    eid = uuid.uuid4()
    client.track("u", "a")
    client.track("u", "b", session_id=SESSION, event_id=eid)
    client.track("u", "c", session_id=uuid.UUID(SESSION), event_id=str(eid).upper())
    client.flush(5)
    by_kind = {e.kind: e for e in lb.recorder.events()}  # requests in flight may land any order
    a, b, c = by_kind["a"], by_kind["b"], by_kind["c"]
    assert re.fullmatch(r"[0-9a-f-]{36}", a.session_id)
    assert a.session_id == client.session_for("u")
    assert b.session_id == c.session_id == SESSION
    assert b.event_id == str(eid)
    assert c.event_id == str(eid).upper()


@pytest.mark.parametrize(
    ("timestamp", "seconds", "nanos"),
    [
        (dt.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC), 1704164645, 600000000),
        (dt.datetime(2024, 1, 2, 3, 4, 5), 1704164645, 0),  # naive is UTC
        (dt.datetime(2024, 1, 2, 4, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1))),
         1704164645, 0),
        (1704164645, 1704164645, 0),
        (1704164645.25, 1704164645, 250000000),
        (0, 0, 0),
        (-1.5, -2, 500000000),
    ],
)  # fmt: skip
def test_timestamps(client: Pug, lb: Loopback, timestamp: Any, seconds: int, nanos: int) -> None:
    client.track("u", "k", timestamp=timestamp)
    client.flush(5)
    (event,) = lb.recorder.events()
    assert event.HasField("occur_time")
    assert (event.occur_time.seconds, event.occur_time.nanos) == (seconds, nanos)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("", "k"), {}),
        (("u", "bad kind"), {}),
        (("u", ""), {}),
        (("cookieless-123", "k"), {}),
        ((None, "k"), {}),
        (("u", None), {}),
        (("u", "k"), {"session_id": "not-a-uuid"}),
        (("u", "k"), {"event_id": "123"}),
        (("u", "k"), {"timestamp": 1.7e12 * 1000}),  # milliseconds passed as seconds
        (("u", "k"), {"timestamp": float("nan")}),
        (("u", "k"), {"timestamp": "yesterday"}),
        (("u", "k", ["not", "a", "mapping"]), {}),
        (("u\ud800", "k"), {}),
    ],
)
def test_invalid_events_are_reported_never_raised(
    client: Pug, lb: Loopback, reports: Reports, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    client.track(*args, **kwargs)
    client.flush(5)
    assert lb.recorder.events() == []
    assert reports.reasons() == [INVALID_EVENT]
    error, items = reports.items[0]
    assert isinstance(error, PugDeliveryError)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(items) == 1
    assert client.stats().rejected == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats(),
                          st.binary(max_size=3), st.lists(st.integers(), max_size=2),
                          st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)),
                min_size=2, max_size=5))  # fmt: skip
def test_track_and_identify_never_raise(args: list[Any]) -> None:
    pug = Pug(send=False)
    pug.track(*args[:3], **dict(zip(("timestamp", "session_id"), args[3:], strict=False)))
    pug.identify(*args[:2], anonymous_id=args[-1], device_id=args[-2])
    pug.alias(args[0], args[1])
    stats = pug.stats()
    assert stats.enqueued + stats.rejected == 3  # every call is either queued or reported
    pug.close()


def test_identify_and_alias(client: Pug, lb: Loopback) -> None:
    anon = new_anonymous_id()
    assert re.fullmatch(r"anon-[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        anon)  # fmt: skip
    client.track("u", "first")
    client.identify("user-1", {"plan": "pro", "since": dt.datetime(2024, 1, 1)}, device_id="d1")
    client.alias(anon, "user-1")
    client.track("u", "last")
    result = client.flush(5)
    assert (result.identified, result.accepted) == (2, 2)
    calls = lb.recorder.calls
    # Pug applies identifies apart from events (no order between them), so neither waits.
    assert sorted(c.method for c in calls).count("Identify") == 2
    assert [e.kind for e in lb.recorder.events()] == ["first", "last"]
    identify_calls = [c for c in calls if c.method == "Identify"]
    first, second = sorted(lb.recorder.identifies(), key=lambda r: r.HasField("anonymous_id"))
    assert first.external_id == "user-1"
    assert first.device_id == "d1"
    assert not first.HasField("anonymous_id")  # empty fields stay unset
    assert json_format.MessageToDict(first.traits) == {
        "plan": "pro",
        "since": "2024-01-01T00:00:00Z",
    }
    assert second.external_id == "user-1"
    assert second.anonymous_id == anon
    assert identify_calls[0].metadata["x-api-key"] == KEY


@pytest.mark.parametrize(
    ("external_id", "kwargs"),
    [
        ("cookieless-1", {}),
        ("", {}),
        ("u", {"anonymous_id": "visitor-1"}),
        ("u", {"anonymous_id": "anon-" + "x" * 251}),
        ("u", {"device_id": "d" * 37}),
        ("u", {"traits": ["a"]}),
    ],
)
def test_invalid_identify_is_reported(
    client: Pug, lb: Loopback, reports: Reports, external_id: str, kwargs: dict[str, Any]
) -> None:
    traits = kwargs.pop("traits", None)
    client.identify(external_id, traits, **kwargs)
    client.flush(5)
    assert lb.recorder.identifies() == []
    assert reports.reasons() == [INVALID_IDENTIFY]


def test_send_false_keeps_everything_in_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("PUG_API_KEY", "PUG_ENDPOINT", "PUG_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    pug = Pug(send=False)  # no key, no endpoint, no channel
    pug.track("u", "k", {"a": 1})
    pug.identify("u")
    pug.track("u", "bad kind")
    assert pug.flush(1).completed
    stats = pug.stats()
    assert (stats.enqueued, stats.sent, stats.accepted, stats.identified, stats.rejected) == (
        2, 1, 1, 1, 1,
    )  # fmt: skip
    assert pug._connections._channel is None  # no channel was ever opened
    assert pug._connections._connect is None
    pug.close()


def test_sync_mode_sends_before_returning(lb: Loopback, reports: Reports) -> None:
    retry = RetrySettings(initial_backoff=0.01, max_backoff=0.01)
    with Pug(KEY, lb.endpoint, sync_mode=True, retry=retry, on_error=reports) as pug:
        pug.track("u", "one")
        assert len(lb.recorder.events()) == 1  # no flush needed
        lb.recorder.fail_next(grpc.StatusCode.UNAVAILABLE)
        pug.track("u", "two")
        assert [e.kind for e in lb.recorder.events()] == ["one", "two", "two"]
        pug.identify("user-1")
        assert len(lb.recorder.identifies()) == 1
        lb.recorder.fail_next(grpc.StatusCode.UNAUTHENTICATED)
        pug.track("u", "three")
        assert reports.reasons() == [""]  # the server's error, decoded (no ErrorInfo here)
        assert isinstance(reports.items[0][0], PugError)
        assert pug._engine._thread is None  # no worker thread in sync mode
        stats = pug.stats()
        assert (stats.sent, stats.retried, stats.dead_lettered) == (2, 1, 1)


def test_environment_fallbacks(lb: Loopback, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUG_API_KEY", KEY)
    monkeypatch.setenv("PUG_ENDPOINT", lb.endpoint)
    monkeypatch.setenv("PUG_PROJECT_ID", "env-proj")
    with Pug(batch=NO_WAIT) as pug:
        pug.track("u", "k")
        pug.flush(5)
    md = lb.recorder.calls[0].metadata
    assert (md["x-api-key"], md["x-project-id"]) == (KEY, "env-proj")


def test_configuration_errors_raise_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUG_API_KEY", raising=False)
    monkeypatch.delenv("PUG_ENDPOINT", raising=False)
    with pytest.raises(ValueError, match="API key is required"):
        Pug(endpoint="https://api.example")
    with pytest.raises(ValueError, match="endpoint is required"):
        Pug(KEY)
    with pytest.raises(ValueError, match="pub_") as info:
        Pug("sk_" + KEY, "https://api.example")
    assert KEY not in str(info.value)
    with pytest.raises(ValueError, match="allow_insecure"):
        Pug(KEY, "http://api.example:80")
    with pytest.raises(ValueError, match="timeout"):
        Pug(KEY, "https://api.example", timeout=0)
    Pug(KEY, "http://api.example:80", allow_insecure=True).close()


def test_public_key_warns_with_a_masked_key(caplog: pytest.LogCaptureFixture) -> None:
    key = "pub_0123456789abcdefWXYZ"
    with caplog.at_level("WARNING", logger="pug_grpc"):
        Pug(key, "https://api.example").close()
    assert "private (prv_) key" in caplog.text
    assert "****WXYZ" in caplog.text
    assert key not in caplog.text


def test_no_credential_in_logs_repr_or_reports(
    lb: Loopback, reports: Reports, caplog: pytest.LogCaptureFixture
) -> None:
    retry = RetrySettings(max_attempts=2, initial_backoff=0.01, max_backoff=0.01)
    with caplog.at_level(logging.DEBUG, logger="pug_grpc"):
        pug = Pug(KEY, lb.endpoint, "p", batch=NO_WAIT, retry=retry, on_error=reports)
        lb.recorder.fail_next(grpc.StatusCode.UNAUTHENTICATED)
        pug.track("u", "k")
        pug.track("u", "bad kind")
        pug.flush(5)
        lb.recorder.default = grpc.StatusCode.UNAVAILABLE
        pug.track("u", "k")
        pug.flush(5)
        text = repr(pug)
        pug.close()
        pug.track("u", "late")
    assert "****CRET" in text
    assert KEY not in text
    assert KEY not in caplog.text
    assert len(reports.items) == 4
    for error, items in reports.items:
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert all(KEY not in str(item) for item in items)


def test_close_is_idempotent_and_refuses_later_calls(lb: Loopback, reports: Reports) -> None:
    pug = Pug(KEY, lb.endpoint, batch=BatchSettings(max_wait=60), on_error=reports)
    pug.track("u", "k")
    pug.close()
    pug.close()
    assert len(lb.recorder.events()) == 1  # drained by close, not by max_wait
    pug.track("u", "k")
    pug.identify("u")
    assert reports.reasons() == [CLIENT_CLOSED, CLIENT_CLOSED]
    assert pug.stats().rejected == 2
    assert pug.flush(0.1).completed


def test_on_error_raising_or_flushing_never_breaks_the_worker(lb: Loopback) -> None:
    calls: list[FlushResult] = []
    pug: Pug

    def on_error(error: BaseException, items: list[Any]) -> None:
        calls.append(pug.flush(1))  # from the worker thread: must not deadlock
        raise RuntimeError("user bug")

    pug = Pug(KEY, lb.endpoint, batch=NO_WAIT, on_error=on_error)
    lb.recorder.fail_next(grpc.StatusCode.NOT_FOUND)
    pug.track("u", "one")
    pug.flush(5)
    pug.track("u", "two")
    assert pug.flush(5).accepted == 1
    assert [c.completed for c in calls] == [False]
    pug.close()


def test_callers_channel_gets_the_credentials_and_is_not_closed(lb: Loopback) -> None:
    channel = grpc.insecure_channel(lb.target)
    with Pug(KEY, channel=channel, project_id="p", batch=NO_WAIT) as pug:
        pug.track("u", "k")
        pug.flush(5)
    assert lb.recorder.calls[0].metadata["x-api-key"] == KEY
    from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc

    events_pb2_grpc.EventsServiceStub(channel).BatchCreate(events_pb2.BatchCreateRequest())
    channel.close()


def test_https_endpoint_with_given_credentials(tmp_path: Path) -> None:
    cert = self_signed_cert(tmp_path)
    if cert is None:
        pytest.skip("openssl CLI not available")
    with serve(server_credentials=cert.server_credentials()) as tls:
        creds = cert.channel_credentials()
        with Pug(KEY, f"https://localhost:{tls.port}", credentials=creds, batch=NO_WAIT) as pug:
            pug.track("u", "k")
            assert pug.flush(5).accepted == 1
        assert tls.recorder.calls[0].metadata["x-api-key"] == KEY


def test_stats_and_exports() -> None:
    assert {"Pug", "BatchSettings", "RetrySettings", "new_anonymous_id"} <= set(pug_grpc.__all__)
    pug = Pug(send=False)
    assert isinstance(pug.stats(), Stats)
    assert pug.stats().queue_depth == 0
    pug.close()


def test_many_threads_track_concurrently(lb: Loopback) -> None:
    with Pug(KEY, lb.endpoint, batch=BatchSettings(max_size=50, max_wait=0.05)) as pug:

        def work(n: int) -> None:
            for i in range(200):
                pug.track(f"t{n}", "k", {"i": i})

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result = pug.flush(10)
        assert result.completed
        stats = pug.stats()
    events = lb.recorder.events()
    assert len(events) == 800 == stats.accepted == stats.enqueued
    assert len({e.event_id for e in events}) == 800
    for n in range(4):  # every event of each thread, once; within a request, in its order
        seqs = [e.custom_properties["i"].int_value for e in events if e.distinct_id == f"t{n}"]
        assert sorted(seqs) == list(range(200))
        for batch in lb.recorder.batches():
            mine = [
                e.custom_properties["i"].int_value for e in batch.events if e.distinct_id == f"t{n}"
            ]
            assert mine == sorted(mine)


class _TagInterceptor(grpc.UnaryUnaryClientInterceptor):
    """A caller's own interceptor: adds one header."""

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = (*(details.metadata or ()), ("x-tag", "mine"))
        return continuation(details._replace(metadata=metadata), request)


def test_caller_interceptors_and_compression(lb: Loopback) -> None:
    with Pug(
        KEY,
        lb.endpoint,
        batch=NO_WAIT,
        interceptors=[_TagInterceptor()],
        compression=grpc.Compression.Gzip,
        channel_options=[("grpc.max_send_message_length", 8 * 1024 * 1024)],
    ) as pug:
        pug.track("u", "k", {"blob": "x" * 1000})
        assert pug.flush(5).accepted == 1
    md = lb.recorder.calls[0].metadata
    assert md["x-tag"] == "mine"
    assert md["x-api-key"] == KEY
    assert lb.recorder.events()[0].custom_properties["blob"].string_value == "x" * 1000


def test_an_item_that_races_close_is_reported_not_stranded(lb: Loopback, reports: Reports) -> None:
    pug = Pug(KEY, lb.endpoint, batch=NO_WAIT, on_error=reports)
    pug.track("u", "k")
    engine = pug._engine
    pug.close()
    # A track() that saw the client open, then lost the race: its put lands after close()'s sweep.
    engine.submit((None, "late", "u", SESSION, time.time_ns(), None))
    error, items = reports.items[-1]
    assert getattr(error, "reason", None) == "UNDELIVERED"
    assert [item.kind for item in items] == ["late"]
    stats = pug.stats()
    assert (stats.queued, stats.undelivered, stats.accepted) == (0, 1, 1)
    assert len(lb.recorder.events()) == 1


def test_flush_after_close_returns_at_once_with_nothing_pending(lb: Loopback) -> None:
    pug = Pug(KEY, lb.endpoint, batch=NO_WAIT)
    pug.track("u", "k")
    pug.close()
    started = time.monotonic()
    result = pug.flush(None)  # no timeout: must not wait for a worker that has ended
    assert time.monotonic() - started < 5
    assert result.completed
    assert result.pending == 0
