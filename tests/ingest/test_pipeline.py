"""The scheduling rules of the ingestion pipeline, driven by hand (fake clock, manual sink)."""

from __future__ import annotations

import grpc
import pytest

from pug_grpc._ingest.batches import request_cost
from pug_grpc._ingest.settings import SERVER_BYTES_PER_EVENT, SERVER_MESSAGE_CAP, BatchSettings
from pug_grpc._retry import RetrySettings
from tests.support.pipeline import harness

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
INTERNAL = grpc.StatusCode.INTERNAL


# -- requests in flight and batch sizes --------------------------------------------------


def test_up_to_max_in_flight_requests_start_without_waiting_for_replies() -> None:
    h = harness(batch=BatchSettings(max_in_flight=4))
    h.track(1000)  # one full page (1,000 events)
    for _ in range(5):
        h.track(1000)
    h.step()
    assert len(h.sink.open()) == 4
    h.sink.open()[0].ok()
    h.step()
    assert len(h.sink.open()) == 4, "a reply frees a slot for the next request at once"
    h.check_accounts()


def test_batches_grow_with_the_backlog_up_to_the_contract_limit() -> None:
    h = harness(batch=BatchSettings(max_in_flight=1, max_size=100))
    h.track(100)
    h.step()
    assert [c.record.count for c in h.sink.calls] == [100]  # max_size: out at once
    h.track(2500)  # arrives while the only slot is busy
    h.step()
    assert len(h.sink.calls) == 1
    h.sink.calls[0].ok()
    for _ in range(3):
        h.step()
        h.sink.open()[0].ok()
    assert [c.record.count for c in h.sink.calls] == [100, 1000, 1000, 500]
    assert h.outcomes() == {"accepted": 2600}
    h.check_accounts()


def test_a_lone_event_waits_max_wait_and_no_longer() -> None:
    h = harness(batch=BatchSettings(max_wait=0.5))
    h.track(1)
    wake = h.step()
    assert h.sink.calls == []
    assert wake == pytest.approx(h.clock.now + 0.5)
    h.clock.advance(0.49)
    h.step()
    assert h.sink.calls == []
    h.clock.advance(0.01)
    h.step()
    assert [c.record.count for c in h.sink.calls] == [1]


def test_every_request_stays_within_the_byte_budget_counting_what_the_server_adds() -> None:
    h = harness(batch=BatchSettings(max_in_flight=64))
    h.track(3000, props={"text": "x" * 900})
    h.pipeline.seal()
    h.step()
    assert len(h.sink.calls) > 3
    for call in h.sink.calls:
        cost = request_cost(len(call.record.payload), call.record.count)
        assert cost <= BatchSettings().max_request_bytes < SERVER_MESSAGE_CAP
        assert len(call.record.payload) + call.record.count * SERVER_BYTES_PER_EVENT <= cost
    assert sum(c.record.count for c in h.sink.calls) == 3000


def test_max_request_bytes_above_one_mib_is_clamped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = BatchSettings(max_request_bytes=3 * 1024 * 1024)
    assert settings.max_request_bytes == SERVER_MESSAGE_CAP
    assert "1 MiB" in caplog.text


def test_a_repeated_event_id_goes_into_a_later_request() -> None:
    h = harness()
    same = "0190a3c2-1111-7000-8000-000000000001"
    other = "0190a3c2-1111-7000-8000-000000000002"
    h.track(3, ids=[same, other, same])
    h.pipeline.seal()
    h.step()
    ids = [[e.event_id for e in call.events] for call in h.sink.calls]
    assert ids == [[same, other], [same]]
    for call in h.sink.calls:
        call.ok()
    assert h.outcomes() == {"accepted": 3}


def test_one_event_larger_than_any_request_is_dead_lettered_at_once() -> None:
    h = harness(batch=BatchSettings(max_request_bytes=4096))
    h.track(1, props={"a": "x" * 1000, "b": "y" * 1000, "c": "z" * 1000, "d": "w" * 1000})
    h.track(1)
    h.pipeline.seal()
    h.step()
    assert h.reasons() == ["TOO_LARGE"]
    assert [c.record.count for c in h.sink.calls] == [1]
    assert h.outcomes() == {"dead_lettered": 1}


# -- outages: one probe at a time ------------------------------------------------------------


def test_after_unavailable_only_one_request_probes() -> None:
    h = harness(batch=BatchSettings(max_in_flight=8), jitter=1.0)
    h.track(8000)
    h.step()
    assert len(h.sink.open()) == 8
    for call in h.sink.open():
        call.fail(UNAVAILABLE, "connection refused")
    h.track(3000)  # more arrive during the outage
    h.step()
    assert h.sink.open() == [], "nothing starts before the first backoff ends"
    h.clock.advance(0.5)
    h.step()
    assert len(h.sink.open()) == 1, "one probe"
    h.sink.open()[0].fail(UNAVAILABLE)
    h.clock.advance(1.0)
    h.step()
    assert len(h.sink.open()) == 1, "still one probe per backoff step"
    h.sink.open()[0].ok()
    h.step()
    assert len(h.sink.open()) == 8, "a reply ends the probing: every slot is used again"
    h.check_accounts()


def test_a_sixty_second_outage_loses_nothing_on_defaults() -> None:
    h = harness(jitter=1.0)  # the longest waits: the worst case for the budget
    h.track(20_000)
    h.step()
    requests_during_outage = 0
    while h.clock.now < 1000.0 + 60.0:
        for call in h.sink.open():
            call.fail(UNAVAILABLE, "connection refused")
            requests_during_outage += 1
        wake = h.step()
        if not h.sink.open():
            assert wake is not None
            h.clock.now = max(h.clock.now + 0.001, wake)
            h.step()
    while h.sink.open() or h.pipeline.in_flight or not h.pipeline.idle():
        for call in h.sink.open():
            call.ok()
        wake = h.step()
        if not h.sink.open() and wake is not None:
            h.clock.now = max(h.clock.now, wake)
            h.step()
    assert h.outcomes() == {"accepted": 20_000}
    # 8 requests fail at the start, then about one per backoff step (0.5, 1, 2, ... 30 s).
    assert requests_during_outage <= 8 + 10
    h.check_accounts()


def test_the_elapsed_budget_ends_retrying_not_an_attempt_count() -> None:
    h = harness(retry=RetrySettings(initial_backoff=0.1, max_backoff=0.1, max_elapsed=10.0))
    h.track(1)
    h.pipeline.seal()
    attempts = 0
    while True:
        h.step()
        open_calls = h.sink.open()
        if not open_calls:
            if h.outcomes():
                break
            h.clock.advance(0.1)
            continue
        attempts += 1
        open_calls[0].fail(INTERNAL, "failed to accept events")
    assert attempts >= 90, "about max_elapsed / backoff attempts, not 8"
    assert h.outcomes() == {"dead_lettered": 1}


def test_retry_none_means_no_retries() -> None:
    h = harness(retry=None)
    h.track(1)
    h.pipeline.seal()
    h.step()
    h.sink.open()[0].fail(UNAVAILABLE)
    h.step()
    assert h.outcomes() == {"dead_lettered": 1}
    assert len(h.sink.calls) == 1


# -- classification ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("details", "transient"),
    [
        ("failed to validate API key", True),
        ("failed to verify project access", True),
        ("invalid API key", False),
        ("x-api-key header not present", False),
    ],
)
def test_unauthenticated_is_transient_only_for_a_credential_check_fault(
    details: str, transient: bool
) -> None:
    h = harness()
    h.track(1)
    h.pipeline.seal()
    h.step()
    h.sink.open()[0].fail(grpc.StatusCode.UNAUTHENTICATED, details)
    h.clock.advance(1.0)
    h.step()
    if transient:
        assert len(h.sink.calls) == 2
        h.sink.open()[0].ok()
        assert h.outcomes() == {"accepted": 1}
    else:
        assert len(h.sink.calls) == 1
        assert h.outcomes() == {"dead_lettered": 1}
        assert h.reasons() == ["UNAUTHENTICATED"] or h.reasons() == [""]


def test_invalid_argument_splits_until_the_bad_event_is_alone() -> None:
    h = harness()
    h.track(8)
    h.pipeline.seal()
    bad = None
    while True:
        h.step()
        open_calls = h.sink.open()
        if not open_calls:
            break
        for call in open_calls:
            events = call.events
            if bad is None:
                bad = events[5].event_id
            if any(e.event_id == bad for e in events):
                call.fail(grpc.StatusCode.INVALID_ARGUMENT, "event[0]: kind")
            else:
                call.ok()
    assert h.outcomes() == {"accepted": 7, "dead_lettered": 1}
    assert [len(items) for _, items in h.reports] == [1]
    assert h.reports[0][1][0].event_id == bad


def test_internal_twice_splits_a_request_that_could_pass_the_servers_cap() -> None:
    h = harness()
    h.track(1000)  # about 150 KB: with 1 KiB per event added, it could weigh 1 MiB
    h.pipeline.seal()
    h.step()
    for _ in range(2):
        (call,) = h.sink.open()
        assert call.record.count == 1000
        call.fail(INTERNAL, "failed to accept events")
        h.clock.advance(60)
        h.step()
    assert sorted(c.record.count for c in h.sink.open()) == [500, 500]


def test_internal_does_not_split_a_small_request() -> None:
    h = harness()
    h.track(50)
    h.pipeline.seal()
    for _ in range(3):
        h.step()
        (call,) = h.sink.open()
        assert call.record.count == 50
        call.fail(INTERNAL, "failed to accept events")
        h.clock.advance(60)


# -- replies ---------------------------------------------------------------------------------


def test_a_short_acknowledgement_is_reported_with_the_missing_count() -> None:
    h = harness()
    h.track(10)
    h.pipeline.seal()
    h.step()
    h.sink.open()[0].ok(accepted=6, dropped=1, salt_unavailable=1)
    assert h.outcomes() == {"accepted": 6, "dropped": 1, "unacknowledged": 3}
    assert h.reasons() == ["EVENTS_DROPPED", "UNACKNOWLEDGED"]
    assert h.reports[1][0].missing == 3  # type: ignore[attr-defined]


def test_an_empty_reply_counts_nothing_as_delivered() -> None:
    h = harness()
    h.track(5)
    h.pipeline.seal()
    h.step()
    h.sink.open()[0].ok(accepted=0)
    assert h.outcomes() == {"unacknowledged": 5}


def test_drops_without_reasons_are_reported_as_unspecified() -> None:
    h = harness()
    h.track(5)
    h.pipeline.seal()
    h.step()
    h.sink.open()[0].ok(accepted=3, dropped=2)
    assert h.ledger.totals.dropped_by_reason == {"unspecified": 2}


# -- memory ------------------------------------------------------------------------------------


def test_a_full_queue_drops_its_oldest_requests_counted_and_reported() -> None:
    h = harness(batch=BatchSettings(max_in_flight=1), max_bytes=200_000)
    h.track(1)
    h.pipeline.seal()
    h.step()  # the one slot is busy for good
    h.track(5000)
    assert h.reasons()
    assert set(h.reasons()) == {"QUEUE_OVERFLOW"}
    stored = h.pipeline.storage.size_bytes()
    assert stored <= 200_000 + len(h.sink.calls[0].record.payload)
    h.check_accounts()
    assert h.ledger.totals.overflowed > 0
    assert h.ledger.held + h.ledger.totals.overflowed + h.ledger.in_flight == 5001


def test_waiting_pages_are_compressed_behind_the_first_mebibytes() -> None:
    h = harness(batch=BatchSettings(max_in_flight=1))
    h.track(1)
    h.pipeline.seal()
    h.step()
    h.track(100_000)
    raw_bytes = 100_000 * 300
    assert h.pipeline.storage.size_bytes() < raw_bytes / 3
    h.step()
    h.check_accounts()


# -- the close deadline -----------------------------------------------------------------------


def test_at_the_deadline_in_flight_is_unconfirmed_and_waiting_is_undelivered() -> None:
    h = harness(batch=BatchSettings(max_in_flight=2))
    h.track(3000)
    h.step()
    assert len(h.sink.open()) == 2
    h.pipeline.abandon()
    assert h.outcomes() == {"unconfirmed": 2000, "undelivered": 1000}
    # One report per 1,000 items at most, so each item left is handed to on_error (a report
    # of 2,000 would carry only the first 1,000 of them).
    assert h.reasons() == ["UNCONFIRMED", "UNCONFIRMED", "UNDELIVERED"]
    assert [len(items) for _, items in h.reports] == [1000, 1000, 1000]
    sent = {e.event_id for c in h.sink.calls for e in c.events}
    unconfirmed = [i.event_id for e, items in h.reports[:2] for i in items]
    assert sorted(unconfirmed) == sorted(sent)
    reported = {i.event_id for _, items in h.reports for i in items}
    assert len(reported) == 3000
    assert all(c.cancelled for c in h.sink.calls)
    h.check_accounts()
