"""Property filters (``common.v1.PropertyFilter``) evaluated against stored events and profiles."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from pug_grpc.gen.common.v1 import filter_schema_pb2, filters_pb2
from pug_grpc.testing._rows import EventRow, TypedValue, as_text
from pug_grpc.testing._status import ServerError

__all__ = ["Lookup", "event_lookup", "matches_all", "matches_groups", "profile_lookup"]

Lookup = Callable[[filters_pb2.PropertyFilter], "TypedValue | None"]
_Op = filters_pb2.FilterOperator


def _from_plain(value: Any) -> TypedValue | None:
    if value is None or isinstance(value, dict | list):
        return None if value is None else ("s", str(value))
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, float):
        return ("d", value)
    return ("s", str(value))


def profile_lookup(properties: dict[str, Any]) -> Lookup:
    """Look filters up in profile properties; dotted names walk nested objects."""

    def lookup(f: filters_pb2.PropertyFilter) -> TypedValue | None:
        node: Any = properties
        for part in f.property.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return _from_plain(node)

    return lookup


def event_lookup(row: EventRow, profile: dict[str, Any] | None = None) -> Lookup:
    """Look filters up by source: auto (``$`` keys), custom, or the owner's profile."""

    def lookup(f: filters_pb2.PropertyFilter) -> TypedValue | None:
        source = f.source
        if source == filter_schema_pb2.PROPERTY_SOURCE_PROFILE:
            return profile_lookup(profile or {})(f)
        if source == filter_schema_pb2.PROPERTY_SOURCE_UNSPECIFIED:
            is_auto = f.property.startswith("$")
        else:
            is_auto = source == filter_schema_pb2.PROPERTY_SOURCE_AUTO
        return (row.auto_props if is_auto else row.custom_props).get(f.property)

    return lookup


def _number(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ServerError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"filter value {text!r} is not a number",
            "INVALID_ARGUMENT",
        ) from None
    if math.isnan(number):
        raise ServerError(
            grpc.StatusCode.INVALID_ARGUMENT, "filter value is NaN", "INVALID_ARGUMENT"
        )
    return number


def _as_number(value: TypedValue) -> float | None:
    case, raw = value
    if case in ("i", "d"):
        return float(raw)
    if case == "s":
        try:
            return float(raw)
        except ValueError:
            return None
    return None


def _equal(value: TypedValue, wanted: str) -> bool:
    if value[0] in ("i", "d"):
        try:
            return float(value[1]) == float(wanted)
        except ValueError:
            return False
    return as_text(value) == wanted


def matches(f: filters_pb2.PropertyFilter, lookup: Lookup) -> bool:
    """Whether one filter holds; absent properties satisfy only the negative operators."""
    value = lookup(f)
    op = f.operator
    if op == _Op.FILTER_OPERATOR_IS_SET:
        return value is not None
    if op == _Op.FILTER_OPERATOR_IS_NOT_SET:
        return value is None
    negative = op in (
        _Op.FILTER_OPERATOR_NOT_EQUALS,
        _Op.FILTER_OPERATOR_NOT_CONTAINS,
        _Op.FILTER_OPERATOR_NOT_IN,
        _Op.FILTER_OPERATOR_NOT_BETWEEN,
    )
    if value is None:
        return negative
    if op in (_Op.FILTER_OPERATOR_EQUALS, _Op.FILTER_OPERATOR_NOT_EQUALS):
        return _equal(value, f.value) != negative
    if op in (_Op.FILTER_OPERATOR_CONTAINS, _Op.FILTER_OPERATOR_NOT_CONTAINS):
        return (f.value.casefold() in as_text(value).casefold()) != negative
    if op in (_Op.FILTER_OPERATOR_IN, _Op.FILTER_OPERATOR_NOT_IN):
        return any(_equal(value, v) for v in f.values) != negative
    if op in (_Op.FILTER_OPERATOR_BETWEEN, _Op.FILTER_OPERATOR_NOT_BETWEEN):
        low, high = _number(f.values[0]), _number(f.values[1])
        number = _as_number(value)
        return (number is not None and low <= number <= high) != negative
    wanted = _number(f.value)
    number = _as_number(value)
    if number is None:
        return False
    if op == _Op.FILTER_OPERATOR_LT:
        return number < wanted
    if op == _Op.FILTER_OPERATOR_LTE:
        return number <= wanted
    if op == _Op.FILTER_OPERATOR_GT:
        return number > wanted
    if op == _Op.FILTER_OPERATOR_GTE:
        return number >= wanted
    raise ServerError(
        grpc.StatusCode.INVALID_ARGUMENT, f"unsupported filter operator {op}", "INVALID_ARGUMENT"
    )


def matches_all(filters: Sequence[filters_pb2.PropertyFilter], lookup: Lookup) -> bool:
    """Whether every filter holds."""
    return all(matches(f, lookup) for f in filters)


def matches_groups(groups: Sequence[Any], operator: int, lookup: Lookup) -> bool:
    """Filter groups (each with its own AND/OR) joined by ``operator`` (AND by default)."""
    if not groups:
        return True

    def group_holds(group: Any) -> bool:
        results = (matches(f, lookup) for f in group.filters)
        return any(results) if group.operator == filters_pb2.LOGICAL_OPERATOR_OR else all(results)

    if operator == filters_pb2.LOGICAL_OPERATOR_OR:
        return any(group_holds(g) for g in groups)
    return all(group_holds(g) for g in groups)
