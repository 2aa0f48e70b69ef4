"""A string kind naming a catalogued event that breaks its rules is sent as given, by default."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pug_grpc.gen.catalog import SERVER_KINDS

from pug_grpc import BatchSettings, Pug
from pug_grpc.events import ProductViewed
from pug_grpc.testing import LocalServer, local_server

NO_WAIT = BatchSettings(max_wait=0.01)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


class Reports:
    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def __call__(self, error: BaseException, items: Any) -> None:
        self.errors.append(error)


def client(server: LocalServer, reports: Reports, **options: Any) -> Pug:
    server.reset()
    return Pug(server.private_key, server.endpoint, batch=NO_WAIT, on_error=reports, **options)


def custom(event: Any) -> dict[str, Any]:
    return {k: getattr(v, str(v.WhichOneof("value"))) for k, v in event.custom_properties.items()}


def test_events_breaking_catalog_rules_are_sent_as_given_warned_once_per_kind_and_rule(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pug_grpc")
    reports = Reports()
    with client(server, reports) as pug:
        for n in range(3):
            pug.track("mover", "search", {"results": n, "source": "old-sdk"})  # no query
        pug.track("mover", "add_to_cart", {"sku": "A-1"})  # no product_id
        pug.track("mover", "add_to_cart", {"product_id": "p", "quantity": 1.5})  # not an int
        pug.track("mover", "product_viewed", {"product_id": "p", "price": 2.5})  # valid
        assert pug.flush(10).ok
        stats = pug.stats()
    assert not reports.errors
    assert stats.rejected == 0
    assert stats.accepted == 6
    assert stats.catalog_mismatches == 5
    assert stats.catalog_mismatches_by_rule == {
        "search: required": 3,
        "add_to_cart: required": 1,
        "add_to_cart: type": 1,
    }
    events = server.events
    assert [e.kind for e in events] == ["search"] * 3 + ["add_to_cart"] * 2 + ["product_viewed"]
    assert custom(events[0]) == {"results": 0, "source": "old-sdk"}
    assert custom(events[3]) == {"sku": "A-1"}
    assert custom(events[4]) == {"product_id": "p", "quantity": 1.5}
    warnings = [r.getMessage() for r in caplog.records if "sent as given" in r.getMessage()]
    assert len(warnings) == 3
    assert any("'search'" in w for w in warnings)


def test_typed_events_keep_their_checks(server: LocalServer) -> None:
    reports = Reports()
    with client(server, reports) as pug:
        pug.track("typed", ProductViewed(product_id="sku-1", price=-1.0))
        assert pug.flush(10).ok
        assert pug.stats().rejected == 1
        assert pug.stats().catalog_mismatches == 0
    assert server.events == []
    assert "double.gt" in str(reports.errors[0])


def test_strict_catalog_refuses_as_before(server: LocalServer) -> None:
    reports = Reports()
    with client(server, reports, strict_catalog=True) as pug:
        pug.track("strict", "search", {"results": 3})
        assert pug.flush(10).ok
        assert pug.stats().rejected == 1
    assert server.events == []
    assert "required" in str(reports.errors[0])


def test_personal_fields_are_withheld_even_when_the_rules_are_broken(server: LocalServer) -> None:
    reports = Reports()
    with client(server, reports, send_pii=False) as pug:
        # file_uploaded without its required file_id, with the file's name (personal data)
        pug.track("pii", "file_uploaded", {"file_name": "cv-alice.pdf", "role": "admin"})
        assert pug.flush(10).ok
        assert pug.stats().catalog_mismatches == 1
    (event,) = server.events
    assert "file_name" not in event.custom_properties
    assert custom(event)["role"] == "admin"


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(sorted(SERVER_KINDS)),
    properties=st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=5),
)
def test_any_properties_for_any_catalog_kind_are_delivered(
    server: LocalServer, kind: str, properties: dict[str, Any]
) -> None:
    reports = Reports()
    with client(server, reports) as pug:
        pug.track("fuzz", kind, properties)
        assert pug.flush(10).ok
        assert pug.stats().rejected == 0, reports.errors
    (event,) = server.events
    assert event.kind == kind
