"""Bounded work per call: values that share sub-containers are not expanded exponentially."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pug_grpc import Pug
from pug_grpc._ingest.properties import (
    MAX_PROPERTY_NODES,
    MAX_TRAIT_NODES,
    normalize_properties,
    to_struct,
)


def self_sharing(depth: int) -> list[Any]:
    """``d = [d, d]`` nested ``depth`` deep: ``depth + 1`` objects, 2**depth leaves."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value, value]
    return value


def test_a_self_sharing_trait_is_dropped_with_a_warning_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """identify() ran 73 s and took 11 GB on a 24-object value."""
    started = time.process_time()
    struct = to_struct({"shared": self_sharing(23), "plan": "pro"})
    assert time.process_time() - started < 2.0, "bounded work, not 2**23 parts"
    assert dict(struct) == {"plan": "pro"}
    assert "trait 'shared' dropped" in caplog.text
    assert str(MAX_TRAIT_NODES) in caplog.text


def test_a_self_sharing_property_is_dropped_with_a_warning_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = time.process_time()
    assert normalize_properties({"shared": self_sharing(23), "n": 1}) == {"n": 1}
    assert time.process_time() - started < 2.0
    assert "property 'shared' dropped" in caplog.text
    assert str(MAX_PROPERTY_NODES) in caplog.text


def test_values_within_the_budget_are_kept_whole() -> None:
    nested = {"a": [1, 2, {"b": [3, 4]}]}
    assert normalize_properties({"nested": nested}) == {"nested": '{"a":[1,2,{"b":[3,4]}]}'}
    assert to_struct({"nested": nested})["nested"]["a"][2]["b"][1] == 4


def test_identify_with_a_self_sharing_trait_returns_at_once_and_sends_the_rest() -> None:
    with Pug(send=False) as pug:
        started = time.monotonic()
        pug.identify("user-1", {"shared": self_sharing(30), "plan": "pro"})
        assert time.monotonic() - started < 2.0
        result = pug.flush(10)
    assert (result.identified, result.ok) == (1, True)
