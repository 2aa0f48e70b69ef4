"""Well-known events tracked end to end through the local server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from pug_grpc.gen.catalog import EVENT_CLASSES, SERVER_KINDS
from pug_grpc.gen.common.events.v1 import options_pb2

from pug_grpc import Pug
from pug_grpc.events import ProductViewed
from pug_grpc.testing import LocalServer, local_server
from tests.ingest.test_well_known import expected_case, valid_instance, valid_value


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


class Reports:
    def __init__(self) -> None:
        self.errors: list[tuple[BaseException, list[Any]]] = []

    def __call__(self, error: BaseException, items: Any) -> None:
        self.errors.append((error, list(items)))


def _client(server: LocalServer, reports: Reports, **options: Any) -> Pug:
    return Pug(server.private_key, server.endpoint, on_error=reports, **options)


def _received(server: LocalServer, distinct_id: str) -> list[Any]:
    return [e for e in server.events if e.distinct_id == distinct_id]


def test_every_server_kind_arrives_with_the_expected_value_cases(server: LocalServer) -> None:
    reports = Reports()
    with _client(server, reports) as pug:
        for cls in EVENT_CLASSES.values():
            pug.track("catalog-user", valid_instance(cls), extra={"campaign": "spring"})
        result = pug.flush(timeout=30)
    assert result.ok, reports.errors
    assert not reports.errors
    received = {e.kind: e for e in _received(server, "catalog-user")}
    assert set(received) == set(SERVER_KINDS)
    for kind, event in received.items():
        fields = SERVER_KINDS[kind].DESCRIPTOR.fields_by_name
        props = event.custom_properties
        assert props["campaign"].string_value == "spring"
        assert set(props) == set(fields) | {"campaign"}, kind
        for name, field in fields.items():
            assert props[name].WhichOneof("value") == expected_case(field), (kind, name)


def test_in_strict_mode_typed_and_string_forms_have_the_same_outcome(server: LocalServer) -> None:
    reports = Reports()
    with _client(server, reports, strict_catalog=True) as pug:
        pug.track("forms-user", ProductViewed(product_id="sku-1", price=29.99, currency="USD"))
        pug.track(
            "forms-user",
            "product_viewed",
            {"product_id": "sku-1", "price": 29.99, "currency": "USD"},
        )
        pug.track("forms-user", ProductViewed(product_id="sku-1", price=-1.0))
        pug.track("forms-user", "product_viewed", {"product_id": "sku-1", "price": -1.0})
        assert pug.flush(timeout=10).ok
    typed, string = _received(server, "forms-user")
    assert typed.custom_properties == string.custom_properties
    assert len(reports.errors) == 2
    for error, events in reports.errors:
        assert "double.gt" in str(error)
        assert "product_viewed" in str(error)
        assert events[0].kind == "product_viewed"
    assert pug.stats().rejected == 2


def test_in_strict_mode_invalid_well_known_events_are_dropped_and_reported_never_raised(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    reports = Reports()
    with _client(server, reports, strict_catalog=True) as pug:
        pug.track("bad-user", "product_viewed", {"price": 3.0})  # required product_id missing
        pug.track("bad-user", "add_to_cart", {"product_id": "p", "quantity": 1.5})
        pug.track("bad-user", "product_viewed", {"product_id": "p", "currency": "usd"})
        assert pug.flush(timeout=10).ok
    assert _received(server, "bad-user") == []
    rules = [str(e) for e, _ in reports.errors]
    assert "required" in rules[0]
    assert "quantity expects an integer" in rules[1]
    assert "string.pattern" in rules[2]
    assert "invalid event" in caplog.text


def test_durations_are_sent_as_canonical_text(server: LocalServer) -> None:
    kind = next(
        k
        for k, c in SERVER_KINDS.items()
        if any(f.message_type is not None for f in c.DESCRIPTOR.fields)
    )
    message = SERVER_KINDS[kind]
    field = next(f for f in message.DESCRIPTOR.fields if f.message_type is not None)
    base = {f.name: valid_value(f) for f in message.DESCRIPTOR.fields if f.message_type is None}
    reports = Reports()
    with _client(server, reports) as pug:
        pug.track("duration-user", kind, {**base, field.name: dt.timedelta(seconds=1.5)})
        pug.track("duration-user", kind, {**base, field.name: 90})
        assert pug.flush(timeout=10).ok
    texts = [
        e.custom_properties[field.name].string_value for e in _received(server, "duration-user")
    ]
    assert texts == ["1.5s", "90s"]


def test_pii_fields_are_withheld_when_the_client_says_so(server: LocalServer) -> None:
    kind, field = next(
        (k, f)
        for k, c in SERVER_KINDS.items()
        for f in c.DESCRIPTOR.fields
        if f.GetOptions().Extensions[options_pb2.pii]
    )
    event = valid_instance(EVENT_CLASSES[kind])
    reports = Reports()
    with _client(server, reports) as pug:
        pug.track("pii-sent", event)
        assert pug.flush(timeout=10).ok
    with _client(server, reports, send_pii=False) as pug:
        pug.track("pii-withheld", event)
        assert pug.flush(timeout=10).ok
    (sent,) = _received(server, "pii-sent")
    (withheld,) = _received(server, "pii-withheld")
    assert field.name in sent.custom_properties
    assert field.name not in withheld.custom_properties
    assert set(sent.custom_properties) - set(withheld.custom_properties) == set(
        EVENT_CLASSES[kind].PII_FIELDS
    )


def test_other_platform_kinds_are_plain_custom_events(server: LocalServer) -> None:
    reports = Reports()
    with _client(server, reports) as pug:
        pug.track("web-user", "page_view", {"anything": 1})
        assert pug.flush(timeout=10).ok
    (event,) = _received(server, "web-user")
    assert event.custom_properties["anything"].int_value == 1
