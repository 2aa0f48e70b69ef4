"""The well-known event catalog: generated registry, typed classes, conversion and rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from pug_grpc.gen.catalog import EVENT_CLASSES, OTHER_PLATFORM_KINDS, SERVER_KINDS
from pug_grpc.gen.common.events.v1 import options_pb2

from pug_grpc import events
from pug_grpc._ingest.well_known import (
    CatalogError,
    is_well_known,
    properties_of_event,
    properties_of_kind,
)
from tests.support.protos import CONTRACT, ROOT, mypy_env

_DURATION = "google.protobuf.Duration"


def _rules(field: Any) -> Any:
    from pug_grpc.gen.buf.validate import validate_pb2

    return field.GetOptions().Extensions[validate_pb2.field]


def valid_value(field: Any) -> Any:
    """A value that satisfies the field's catalog rules (used for every server kind)."""
    rules = _rules(field)
    if field.message_type is not None and field.message_type.full_name == _DURATION:
        return dt.timedelta(seconds=1.5)
    if field.type == FieldDescriptor.TYPE_STRING:
        return "USD" if rules.string.pattern == "^[A-Z]{3}$" else f"{field.name}-1"
    if field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
        low = rules.int32.gte if field.type == FieldDescriptor.TYPE_INT32 else rules.int64.gte
        return max(low, 3) if not rules.int32.HasField("lte") else rules.int32.lte
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return 2.5
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    raise AssertionError(field.full_name)


def valid_instance(cls: type[events.WellKnownEvent]) -> events.WellKnownEvent:
    values = {
        (f.name + "_" if f.name == "class" else f.name): valid_value(f)
        for f in cls.PROPERTIES.DESCRIPTOR.fields
    }
    return cls(**values)


def expected_case(field: Any) -> str:
    """The PropertyValue case the contract README gives for a catalog field's type."""
    if field.message_type is not None:
        return "string_value"  # durations travel as their canonical "1.5s" text
    return {
        FieldDescriptor.TYPE_STRING: "string_value",
        FieldDescriptor.TYPE_INT32: "int_value",
        FieldDescriptor.TYPE_INT64: "int_value",
        FieldDescriptor.TYPE_DOUBLE: "double_value",
        FieldDescriptor.TYPE_BOOL: "bool_value",
    }[field.type]


def test_registry_has_the_114_server_kinds() -> None:
    assert len(SERVER_KINDS) == 114
    assert set(EVENT_CLASSES) == set(SERVER_KINDS)
    assert not set(SERVER_KINDS) & OTHER_PLATFORM_KINDS
    assert len(SERVER_KINDS) + len(OTHER_PLATFORM_KINDS) == 127
    for kind, cls in EVENT_CLASSES.items():
        assert kind == cls.KIND
        assert cls.PROPERTIES is SERVER_KINDS[kind]
        assert cls.__name__ in events.__all__


@pytest.mark.skipif(not CONTRACT.exists(), reason="contract.json not present")
def test_registry_matches_the_contract_tags() -> None:
    import json

    data = json.loads(CONTRACT.read_text())
    server, other = set(), set()
    for file in data["files"]:
        for message in file.get("messages", []):
            options = message.get("options", {})
            if "[common.events.v1.kind]" not in options:
                continue
            platforms = options.get("[common.events.v1.platforms]", [])
            kind = options["[common.events.v1.kind]"]
            (server if not platforms or "PLATFORM_SERVER" in platforms else other).add(kind)
    assert set(SERVER_KINDS) == server
    assert other == OTHER_PLATFORM_KINDS


def test_other_platform_kinds_are_custom_events(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="pug_grpc")
    assert not is_well_known("page_view")
    assert "other platforms" in caplog.text
    assert not is_well_known("my_custom_kind")
    assert is_well_known("product_viewed")


@pytest.mark.parametrize("kind", sorted(EVENT_CLASSES))
def test_every_server_kind_converts_with_the_contract_value_cases(kind: str) -> None:
    cls = EVENT_CLASSES[kind]
    props = properties_of_event(valid_instance(cls))
    fields = cls.PROPERTIES.DESCRIPTOR.fields_by_name
    assert set(props) == set(fields)
    for name, value in props.items():
        case = expected_case(fields[name])
        python_type = {
            "string_value": str,
            "int_value": int,
            "double_value": float,
            "bool_value": bool,
        }[case]
        assert type(value) is python_type, (name, value)


def test_product_viewed_example() -> None:
    event = events.ProductViewed(product_id="sku-1", price=29.99, currency="USD")
    assert properties_of_event(event) == {"product_id": "sku-1", "price": 29.99, "currency": "USD"}


def test_string_form_matches_typed_form() -> None:
    typed = properties_of_event(events.ProductViewed(product_id="sku-1", price=29, currency="USD"))
    known, extra = properties_of_kind(
        "product_viewed", {"product_id": "sku-1", "price": 29, "currency": "USD", "ab": "b"}
    )
    assert known == typed
    assert extra == {"ab": "b"}
    assert type(known["price"]) is float  # an int into a double field is widened


def _rule_of(kind: str, **values: Any) -> str:
    with pytest.raises(CatalogError) as caught:
        properties_of_kind(kind, values)
    assert kind in str(caught.value)
    return caught.value.rule


def test_each_rule_type_is_named_when_broken() -> None:
    assert _rule_of("product_viewed") == "required"
    assert _rule_of("product_viewed", product_id="p", price=0.0) == "double.gt"
    assert _rule_of("product_viewed", product_id="p", currency="usd") == "string.pattern"
    assert _rule_of("add_to_cart", product_id="p", quantity=-1) == "int32.gte"
    nps = next(k for k, c in SERVER_KINDS.items() if "score" in c.DESCRIPTOR.fields_by_name)
    score = SERVER_KINDS[nps].DESCRIPTOR.fields_by_name["score"]
    required = {
        f.name: valid_value(f)
        for f in SERVER_KINDS[nps].DESCRIPTOR.fields
        if _rules(f).required and f.name != "score"
    }
    assert _rule_of(nps, **required, score=_rules(score).int32.lte + 1) == "int32.gte_lte"
    int64_kind, int64_field = next(
        (k, f)
        for k, c in SERVER_KINDS.items()
        for f in c.DESCRIPTOR.fields
        if f.type == FieldDescriptor.TYPE_INT64 and _rules(f).int64.HasField("gte")
    )
    assert _rule_of(int64_kind, **_required(int64_kind), **{int64_field.name: -1}) == "int64.gte"
    dur_kind, dur_field = next(
        (k, f)
        for k, c in SERVER_KINDS.items()
        for f in c.DESCRIPTOR.fields
        if f.message_type is not None and _rules(f).duration.HasField("gte")
    )
    minus = dt.timedelta(seconds=-1)
    assert _rule_of(dur_kind, **_required(dur_kind), **{dur_field.name: minus}) == "duration.gte"


def _required(kind: str) -> dict[str, Any]:
    return {
        f.name: valid_value(f) for f in SERVER_KINDS[kind].DESCRIPTOR.fields if _rules(f).required
    }


def test_type_errors_are_rejected_not_guessed() -> None:
    assert _rule_of("add_to_cart", product_id="p", quantity=1.5) == "type"
    assert _rule_of("add_to_cart", product_id="p", quantity=True) == "type"
    assert _rule_of("add_to_cart", product_id=7) == "type"
    assert _rule_of("add_to_cart", product_id="p", price=float("nan")) == "double.finite"
    assert _rule_of("add_to_cart", product_id="p", quantity=2**40) == "range"


def test_durations_accept_timedelta_or_seconds_and_send_canonical_text() -> None:
    kind, field = next(
        (k, f)
        for k, c in SERVER_KINDS.items()
        for f in c.DESCRIPTOR.fields
        if f.message_type is not None and f.message_type.full_name == _DURATION
    )
    base = _required(kind)
    for given, text in [
        (dt.timedelta(seconds=1.5), "1.5s"),
        (1.5, "1.5s"),
        (90, "90s"),
        (dt.timedelta(minutes=2, microseconds=250_000), "120.25s"),
        (0, "0s"),
    ]:
        known, _ = properties_of_kind(kind, {**base, field.name: given})
        assert known[field.name] == text
    assert _rule_of(kind, **base, **{field.name: "1.5s"}) == "type"


def test_pii_fields_are_dropped_only_when_configured() -> None:
    kind, field = next(
        (k, f)
        for k, c in SERVER_KINDS.items()
        for f in c.DESCRIPTOR.fields
        if f.GetOptions().Extensions[options_pb2.pii]
    )
    values = {**_required(kind), field.name: valid_value(field)}
    sent, _ = properties_of_kind(kind, values)
    assert field.name in sent
    withheld, _ = properties_of_kind(kind, values, send_pii=False)
    assert field.name not in withheld
    assert set(sent) - set(withheld) == {field.name}
    assert field.name in EVENT_CLASSES[kind].PII_FIELDS


def test_class_keyword_field_is_renamed() -> None:
    # 'click' is a web-only kind; its message still shows how a keyword field would be named.
    assert "click" in OTHER_PLATFORM_KINDS
    for cls in EVENT_CLASSES.values():
        for f in dataclasses.fields(cls):
            assert (
                not f.name.endswith("_") or f.name[:-1] in cls.PROPERTIES.DESCRIPTOR.fields_by_name
            )


SAMPLE = """
from pug_grpc.events import ProductViewed

ok = ProductViewed(product_id="sku-1", price=29.99, currency="USD")
wrong_name = ProductViewed(product_id="sku-1", prize=29.99)
wrong_type = ProductViewed(product_id="sku-1", price="cheap")
"""


@pytest.mark.slow
def test_mypy_reports_wrong_property_names_and_types(tmp_path: Path) -> None:
    (tmp_path / "sample.py").write_text(textwrap.dedent(SAMPLE))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "sample.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env=mypy_env(extra_path=[ROOT]),
    )
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert 'sample.py:5: error: Unexpected keyword argument "prize"' in out
    assert (
        'sample.py:6: error: Argument "price" to "ProductViewed" has incompatible type "str"' in out
    )
    assert "sample.py:4" not in out
