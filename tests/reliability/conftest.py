"""Fixtures of the reliability tests: every test runs under the leak guard."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.support.reliability import LeakGuard


@pytest.fixture(autouse=True)
def leak_guard() -> Iterator[LeakGuard]:
    """Every reliability test runs under this: DEBUG everywhere, nothing secret anywhere."""
    guard = LeakGuard()
    root = logging.getLogger()
    ours = logging.getLogger("pug_grpc")
    saved = (root.level, ours.level)
    root.setLevel(logging.DEBUG)
    ours.setLevel(logging.DEBUG)
    root.addHandler(guard)
    try:
        yield guard
    finally:
        root.removeHandler(guard)
        root.setLevel(saved[0])
        ours.setLevel(saved[1])
    leaks = guard.leaks()
    assert not leaks, f"secrets leaked: {leaks[:5]}"
    assert not guard.unformattable, f"log records that cannot be formatted: {guard.unformattable}"
