"""Hostile input: arbitrary Python values into ``track``, ``identify``, ``alias`` and the
well-known API (typed classes and catalogued string kinds), against the validating local server.

Nothing may raise or block; every call is either queued or refused with a logged, reported
reason; and whatever is queued must pass the server's own protovalidate checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pug_grpc.gen.catalog import EVENT_CLASSES, SERVER_KINDS

from pug_grpc import BatchSettings, Pug
from pug_grpc._ingest.outcomes import INVALID_EVENT, INVALID_IDENTIFY, TOO_LARGE
from tests.support.reliability import (
    LeakGuard,
    client,
    pug_server,
)

pytestmark = pytest.mark.timeout(120)

CALL_LIMIT = 2.0
"""Seconds one call may take before it counts as blocking. A call normally takes microseconds;
work proportional to a multi-megabyte argument can take tens of milliseconds, and a waiting
call (on the network, a full queue, a lock held across I/O) would take far longer."""


# -- hostile objects ---------------------------------------------------------------------


class Unprintable:
    """An object whose ``str``, ``repr`` and ``format`` all raise."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ refused")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ refused")

    def __format__(self, spec: str) -> str:
        raise RuntimeError("__format__ refused")


class Explosive:
    """Every operation a library might try on a value raises (hashing too: never a dict key)."""

    def _refuse(self, *args: Any) -> Any:
        raise RuntimeError("refused")

    __str__ = __repr__ = __format__ = __bool__ = __len__ = __iter__ = _refuse
    __eq__ = __ne__ = __lt__ = __hash__ = __index__ = __int__ = __float__ = _refuse


class EvilStr(str):
    """A ``str`` (it passes ``isinstance``) whose ``str``/``repr``/``format`` raise."""

    __slots__ = ()

    def __str__(self) -> str:
        raise RuntimeError("__str__ refused")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ refused")

    def __format__(self, spec: str) -> str:
        raise RuntimeError("__format__ refused")


class EvilMapping(Mapping[Any, Any]):
    """Claims three items; iterating or indexing it raises."""

    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("__getitem__ refused")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("__iter__ refused")

    def __len__(self) -> int:
        return 3


class EvilTZ(dt.tzinfo):
    def utcoffset(self, d: dt.datetime | None) -> dt.timedelta:
        raise RuntimeError("utcoffset refused")

    def dst(self, d: dt.datetime | None) -> dt.timedelta | None:
        return None

    def tzname(self, d: dt.datetime | None) -> str | None:
        return None


class Color(enum.Enum):
    RED = "red"
    NESTED = ("a", 1)


def cyclic_list(item: Any) -> list[Any]:
    out = [item]
    out.append(out)
    return out


def cyclic_dict(item: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"item": item}
    out["self"] = out
    return out


ENORMOUS = "x" * 5_000_000  # larger than gRPC's default 4 MiB message limit on its own
LONG = "é" * 5_000
EVIL_STR = EvilStr("evil")
UNPRINTABLE = Unprintable()
EVIL_MAPPING = EvilMapping()
EVIL_DATETIME = dt.datetime(2024, 1, 1, tzinfo=EvilTZ())

# -- strategies --------------------------------------------------------------------------

fixed_zones = st.builds(
    dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23))
)
datetimes = st.datetimes(timezones=st.none() | fixed_zones)  # offsets up to ±23 h
huge_ints = st.sampled_from(
    [(1, 2, 63), (-1, 2, 63), (1, 2, 64), (1, 10, 4301), (-1, 10, 5000)]
).map(
    lambda s_b_e: s_b_e[0] * s_b_e[1] ** s_b_e[2]  # built lazily: too long to print in decimal
)
BIG = "y" * 100_000
ODD_TEXTS = {
    "big": BIG,
    "long": LONG,
    "surrogate": "\ud800",
    "empty": "",
    "space": " ",
    "reserved": "cookieless-x",
    "anon": "anon-",
    "dollar": "$x",
}


def odd_text(name: str) -> str:
    return ODD_TEXTS[name]


odd_texts = st.sampled_from(sorted(ODD_TEXTS)).map(odd_text)


def enormous() -> str:
    return ENORMOUS


def evil_str(text: str = "evil") -> EvilStr:
    return EvilStr(text)


def evil_datetime() -> dt.datetime:
    return EVIL_DATETIME


# Hostile objects come from builds(): hypothesis prints strategies, and these cannot be printed.
evil_strs = st.builds(evil_str)
unprintables = st.builds(Unprintable) | st.builds(Explosive)
evil_mappings = st.builds(EvilMapping)
evil_datetimes = st.builds(evil_datetime)

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.fractions(),
    st.complex_numbers(),
    st.text(max_size=30),
    odd_texts,
    st.binary(max_size=16),
    st.builds(bytearray, st.binary(max_size=8)),
    datetimes,
    evil_datetimes,
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.sampled_from(list(Color)),
    unprintables,
    evil_strs,
    st.builds(object),
    st.just(Ellipsis),
)
keys: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["$ip", "$lib", "$x", "", "\ud800", "seq"]),
    odd_texts,
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.tuples(st.integers()),
    st.uuids(),
    evil_strs,
    st.builds(Unprintable),  # hashable, unlike Explosive
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(keys, inner, max_size=4),
        st.frozensets(st.integers() | st.text(max_size=5), max_size=4),
        st.builds(cyclic_list, inner),
        st.builds(cyclic_dict, inner),
    ),
    max_leaves=6,
)
mappings: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.dictionaries(keys, values, max_size=6),
    st.dictionaries(keys, values, max_size=6),
    evil_mappings,
    st.lists(values, max_size=3),
    st.text(max_size=5),
    st.integers(),
)
good_ids = st.builds("user-{}".format, st.integers(0, 500)) | st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20
).filter(lambda s: not s.startswith("cookieless-"))
hostile_ids: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.builds(enormous),  # an event too large for any request
    st.text(max_size=20),
    odd_texts,
    st.integers(),
    huge_ints,
    st.uuids(),
    st.binary(max_size=8),
    st.floats(),
    evil_strs,
    unprintables,
    st.lists(st.integers(), max_size=2),
)
ids = st.one_of(good_ids, good_ids, good_ids, hostile_ids)


def _uuid_like(uuids: st.SearchStrategy[uuid.UUID]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.none(),
        uuids,
        uuids.map(str),
        uuids.map(lambda u: str(u).upper()),
        st.text(max_size=40),
        st.sampled_from(["", "not-a-uuid"]),
        uuids.map(lambda u: f"{u}\n"),
        uuids.map(lambda u: "{" + str(u) + "}"),
        st.integers(),
        st.builds(evil_str, uuids.map(str)),
        unprintables,
    )


uuid_like = _uuid_like(st.uuids())
# Event ids are fresh: Pug refuses a whole batch that repeats an event_id (INVALID_ARGUMENT),
# and st.uuids() repeats values on purpose; a repeated id is a case of its own.
event_id_like = _uuid_like(st.builds(uuid.uuid4))
timestamps: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.none(),
    datetimes,
    evil_datetimes,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    huge_ints,
    st.sampled_from([1.7e12, -1e11, 253_402_300_800, 1e300]),
    st.dates(),
    st.text(max_size=25),
    st.booleans(),
    unprintables,
)
kinds: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(["page_view", "signup.completed", "a-b_c.d", "x" * 300]),
    st.sampled_from(sorted(SERVER_KINDS)),
    st.text(max_size=20),
    odd_texts,
    st.none(),
    st.integers(),
    evil_strs,
    st.builds(evil_str, st.just("product_viewed")),
    unprintables,
)


def _field_values(annotation: str) -> st.SearchStrategy[Any]:
    """Plausible values for a typed catalog field (often valid), or anything at all."""
    if "timedelta" in annotation:
        plausible: st.SearchStrategy[Any] = st.timedeltas() | st.floats() | st.integers()
    elif annotation.startswith("str"):
        plausible = st.text(max_size=12) | st.sampled_from(["USD", "usd", "EURO", ""])
    elif annotation.startswith("int"):
        plausible = st.integers(-(2**33), 2**33) | huge_ints
    elif annotation.startswith("float"):
        plausible = st.floats(allow_nan=True, allow_infinity=True) | st.integers()
    else:
        plausible = st.booleans()
    return plausible | plausible | values


def _typed_event(cls: type[Any]) -> st.SearchStrategy[Any]:
    fields = {}
    for f in dataclasses.fields(cls):
        strategy = _field_values(str(f.type))
        required = f.default is dataclasses.MISSING
        fields[f.name] = strategy if required else st.none() | strategy
    return st.builds(cls, **fields)


typed_events = st.sampled_from(sorted(EVENT_CLASSES.values(), key=lambda c: c.KIND)).flatmap(
    _typed_event
)


def _string_form(kind: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    names = [f.name for f in SERVER_KINDS[kind].DESCRIPTOR.fields] or ["extra"]
    return st.tuples(
        st.just(kind), st.dictionaries(st.sampled_from(names) | keys, values, max_size=6)
    )


catalogued = st.sampled_from(sorted(SERVER_KINDS)).flatmap(_string_form)

good_kinds = st.sampled_from(["page_view", "signup.completed", "a-b_c.d", "x" * 300]) | (
    st.from_regex(r"[a-zA-Z0-9_.\-]{1,24}", fullmatch=True).filter(lambda k: k not in SERVER_KINDS)
)
plausible_options = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.none() | datetimes | st.floats(min_value=0, max_value=4e9),
        "session_id": st.none() | st.uuids() | st.uuids().map(str),
        "event_id": st.none() | st.builds(uuid.uuid4) | st.builds(uuid.uuid4).map(str),
        "extra": st.none() | st.dictionaries(keys, values, max_size=3),
    },
)
hostile_options = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": timestamps,
        "session_id": uuid_like,
        "event_id": event_id_like,
        "extra": mappings,
    },
)
property_dicts = st.dictionaries(keys, values, max_size=5)
anonymous_ids = st.builds("anon-{}".format, st.uuids())

usable_track = st.tuples(
    st.just("track"), st.tuples(good_ids, good_kinds, property_dicts), plausible_options
)
Call = tuple[str, tuple[Any, ...], dict[str, Any]]
hostile_calls: st.SearchStrategy[Call] = st.one_of(
    st.tuples(st.just("track"), st.tuples(ids, kinds, mappings), hostile_options),
    st.tuples(st.just("track"), st.tuples(good_ids, typed_events), plausible_options),
    st.tuples(st.just("track"), st.tuples(ids, catalogued), hostile_options).map(
        lambda c: (c[0], (c[1][0], c[1][1][0], c[1][1][1]), c[2])
    ),
    st.tuples(
        st.just("identify"),
        st.tuples(good_ids, property_dicts),
        st.fixed_dictionaries({}, optional={"anonymous_id": anonymous_ids}),
    ),
    st.tuples(
        st.just("identify"),
        st.tuples(ids, mappings),
        st.fixed_dictionaries(
            {},
            optional={
                "anonymous_id": st.none() | anonymous_ids | hostile_ids,
                "device_id": st.none() | st.text(max_size=40) | hostile_ids,
            },
        ),
    ),
    st.tuples(st.just("alias"), st.tuples(anonymous_ids | hostile_ids, ids), st.just({})),
)


def interleave(lists: tuple[list[Call], list[Call]]) -> list[Call]:
    usable, hostile = lists
    out = [call for pair in zip(usable, hostile, strict=False) for call in pair]
    shortest = min(len(usable), len(hostile))
    return out + usable[shortest:] + hostile[shortest:]


# Each example: usable tracks (identities fine, properties hostile: they must reach the server
# and pass its validation) interleaved with calls hostile throughout (they must be refused).
call_batches = st.tuples(
    st.lists(usable_track, min_size=10, max_size=30),
    st.lists(hostile_calls, min_size=5, max_size=20),
).map(interleave)


# -- the property ------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.calls = 0
        self.slowest = 0.0


def test_hostile_input_never_raises_blocks_or_reaches_the_server_invalid(
    leak_guard: LeakGuard,
) -> None:
    reports = leak_guard.reports(keep=1)
    tally = Tally()
    with pug_server() as server:
        pug = client(
            server, batch=BatchSettings(max_size=500, max_wait=0.2, max_queue_size=100_000),
            on_error=reports,
        )  # fmt: skip

        @settings(
            max_examples=250,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            # No shrinking: with inputs this large it could outlast the test's time bound.
            # A failure still reports the example that failed.
            phases=[Phase.generate],
            report_multiple_bugs=False,
        )
        @given(call_batches)
        def run(batch: list[Call]) -> None:
            for name, args, kwargs in batch:
                method = getattr(pug, name)
                start = time.perf_counter()
                method(*args, **kwargs)  # must not raise
                took = time.perf_counter() - start
                tally.calls += 1
                tally.slowest = max(tally.slowest, took)
                assert took < CALL_LIMIT, f"{name}() took {took:.3f} s"

        run()
        result = pug.flush(timeout=60)
        check_outcome(pug, server, reports, leak_guard, tally, completed=result.completed)
        pug.close()


def check_outcome(
    pug: Pug, server: Any, reports: Any, guard: LeakGuard, tally: Tally, *, completed: bool
) -> None:
    stats = pug.stats()
    print(
        f"{tally.calls} hostile calls (slowest {tally.slowest * 1e3:.1f} ms): "
        f"{stats.sent} events and {stats.identified} identifies delivered, "
        f"{stats.rejected} refused, {stats.dead_lettered} dead-lettered"
    )
    assert completed
    # The local server validates every request with protovalidate: not one was refused.
    codes = {c.code for c in server.calls}
    assert grpc.StatusCode.INVALID_ARGUMENT not in codes
    assert codes <= {grpc.StatusCode.OK}, codes
    assert stats.sent >= 3_000, "too few events got through to prove anything"
    assert stats.identified >= 100
    assert len(server.events) == stats.sent == stats.accepted
    assert len(server.identifies) == stats.identified
    # Every call was either queued or refused; everything queued was delivered (or, for an
    # event too large for any request, dead-lettered with that reason).
    assert stats.enqueued + stats.rejected == tally.calls
    assert stats.sent + stats.identified + stats.dead_lettered == stats.enqueued
    assert (stats.overflowed, stats.queue_depth) == (0, 0)
    # Every refusal was reported with a reason, and logged.
    refusals = [r for r in reports.all if r.reason in (INVALID_EVENT, INVALID_IDENTIFY)]
    assert len(refusals) == stats.rejected > 100
    for report in refusals:
        text = str(report.error)
        assert ": " in text.split("invalid ", 1)[-1], f"no reason given: {text!r}"
        assert len(report.items) == 1
    others = {r.reason for r in reports.all} - {INVALID_EVENT, INVALID_IDENTIFY}
    assert others <= {TOO_LARGE}, others
    assert reports.item_counts[TOO_LARGE] == stats.dead_lettered
    logged = [
        r
        for r in guard.records
        if r.name == "pug_grpc.engine"  # the engine counts and logs each refusal
        and r.levelno >= logging.WARNING
        and r.getMessage().startswith("dropped")
    ]
    assert len(logged) == stats.rejected


def test_the_worst_objects_are_refused_with_a_reason_or_their_bad_parts_dropped(
    leak_guard: LeakGuard,
) -> None:
    """The worst of the generated inputs, always run (hypothesis may not draw them every time)."""
    reports = leak_guard.reports()
    with pug_server() as server:
        pug: Any = client(server, on_error=reports)  # Any: these calls break the signatures
        refused: list[Callable[[], None]] = [
            lambda: pug.track(EVIL_STR, "k"),
            lambda: pug.track(Explosive(), Explosive(), Explosive()),
            lambda: pug.track("u", EVIL_STR),
            lambda: pug.track("u", EvilStr("product_viewed")),
            lambda: pug.track("u", "k", event_id=EvilStr(str(uuid.uuid4()))),
            lambda: pug.track("u", "k", event_id=Explosive()),
            lambda: pug.track("u", "k", EVIL_MAPPING),
            lambda: pug.track("u", "product_viewed", EVIL_MAPPING),
            lambda: pug.track("u", "k", timestamp=EVIL_DATETIME),
            lambda: pug.track(10**5000, "k"),
            lambda: pug.identify("u", EVIL_MAPPING),
            lambda: pug.identify(UNPRINTABLE),
            lambda: pug.identify(Explosive(), Explosive(), anonymous_id=Explosive()),
            lambda: pug.alias(EVIL_STR, "u"),
            lambda: pug.alias(Explosive(), Explosive()),
        ]
        for n, call in enumerate(refused):
            before = len(reports.all)
            call()
            assert len(reports.all) == before + 1, f"call {n} was not reported"
            assert reports.all[-1].reason in (INVALID_EVENT, INVALID_IDENTIFY)
        # A str subclass is its text; values that cannot be read are dropped, the rest is sent.
        pug.track("u", "k", {EVIL_STR: 1, "seq": 1, "n": 10**5000, "x": EVIL_STR, "b": Explosive()})
        pug.track("u", "product_viewed", {"product_id": "p", "note": EVIL_STR, "b": Explosive()})
        pug.identify("u", {EVIL_STR: 1, "plan": "pro", "x": [EVIL_STR], "b": Explosive()})
        result = pug.flush(timeout=10)
        assert result.ok, result
        stats = pug.stats()
        assert (stats.rejected, stats.sent, stats.identified) == (len(refused), 2, 1)
        # Keyed by kind: two requests in flight at once may arrive in either order.
        by_kind = {e.kind: e for e in server.events}
        assert len(by_kind) == len(server.events) == 2
        first, second = by_kind["k"], by_kind["product_viewed"]
        assert dict(first.custom_properties).keys() == {"evil", "seq", "x"}
        assert first.custom_properties["x"].string_value == "evil"
        assert second.custom_properties["note"].string_value == "evil"
        assert "b" not in second.custom_properties
        traits = server.identifies[0].traits
        assert set(traits.fields) == {"evil", "plan", "x"}
        # An event too large for any request is dead-lettered at once, not retried.
        pug.track(ENORMOUS, "k")
        result = pug.flush(timeout=10)
        assert result.dead_lettered == 1
        assert reports.all[-1].reason == TOO_LARGE
        assert [c.code for c in server.calls] == [grpc.StatusCode.OK] * len(server.calls)
        assert pug.stats().retried == 0
        pug.close()
