"""The ingestion engine's performance targets, checked against the run's figures (pug defaults)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """One target: what it asks, what the run measured, and whether that meets it."""

    name: str
    measured: str
    passed: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "**FAIL**", None: "not measured"}[self.passed]


def _find(rows: Iterable[Row], sdk: str, **where: Any) -> Row | None:
    for row in rows:
        if row["sdk"] == sdk and all(row.get(k) == v for k, v in where.items()):
            return row
    return None


def _figure(row: Row | None, name: str) -> float | None:
    """A figure of a run set that completed without errors, or None."""
    if row is None or name not in row or row.get("errors"):
        return None
    value: float = row[name]
    return value


def _lost(name: str, row: Row | None) -> Target:
    lost = _figure(row, "lost")
    if row is None or lost is None:
        return Target(name, "-", None)
    return Target(name, f"{lost:,} lost of {row['events']:,}", lost == 0)


def _rate_times(name: str, ours: Row | None, peer: Row | None, factor: float) -> Target:
    mine, theirs = _figure(ours, "events_per_s"), _figure(peer, "events_per_s")
    if mine is None or theirs is None:
        return Target(name, "-", None)
    times = mine / theirs if theirs else float("inf")
    return Target(name, f"{times:,.1f}x ({mine:,.0f} vs {theirs:,.0f} events/s)", times >= factor)


def _at_most(name: str, row: Row | None, field: str, limit: float, unit: str) -> Target:
    value = _figure(row, field)
    if value is None:
        return Target(name, "-", None)
    return Target(name, f"{value:,.1f} {unit}", value <= limit)


def _at_least(name: str, row: Row | None, field: str, limit: float, unit: str) -> Target:
    value = _figure(row, field)
    if value is None:
        return Target(name, "-", None)
    return Target(name, f"{value:,.0f} {unit}", value >= limit)


def _memory(report: Row) -> Target:
    name = "100,000 events queued behind a stopped server (defaults): all held, ≤ 40 MB more RSS"
    row = _find(report.get("memory", ()), "pug")
    if row is None or "error" in row:
        return Target(name, "-", None)
    overflowed = row.get("client_stats", {}).get("overflowed")
    held = overflowed == 0 if overflowed is not None else row["queued"] >= row["events"]
    measured = f"{row['queued']:,} queued of {row['events']:,}"
    if overflowed:
        measured += f" ({overflowed:,} overflowed)"
    measured += f", +{row['growth_mb']:,.1f} MB"
    return Target(name, measured, held and row["growth_mb"] <= 40)


def evaluate(report: Row) -> list[Target]:
    """Every target, in the issue's order."""
    delayed: Sequence[Row] = report.get("delayed", ())
    loop: Sequence[Row] = report.get("loopback", ())

    def at(delay: float, workload: str) -> Callable[[str], Row | None]:
        return lambda sdk: _find(delayed, sdk, delay_ms=delay, workload=workload)

    burst20, paced20, burst50 = at(20, "burst"), at(20, "paced"), at(50, "burst")
    paced = paced20("pug")
    paced_name = "20 ms, paced at 10,000 events/s for several seconds: 0 lost"
    if paced is not None and paced.get("rate") != 10_000:
        paced_name = f"20 ms, paced at {paced['rate']:,.0f} events/s (not 10,000): 0 lost"
    pug_loop = _find(loop, "pug")
    return [
        _lost("20 ms, 20,000-event burst: 0 lost", burst20("pug")),
        _rate_times(
            "20 ms burst: ≥ 10x Segment's delivered rate", burst20("pug"), burst20("segment"), 10
        ),
        _rate_times(
            "20 ms burst: ≥ 10x PostHog's delivered rate", burst20("pug"), burst20("posthog"), 10
        ),
        _lost(paced_name, paced),
        _at_least(
            "50 ms burst: ≥ 20,000 events/s", burst50("pug"), "events_per_s", 20_000, "events/s"
        ),
        _lost("loopback, 100,000-event burst: 0 lost", pug_loop),
        _rate_times("loopback: ≥ 6x Segment's rate", pug_loop, _find(loop, "segment"), 6),
        _at_most("loopback: track() p50 ≤ 1.5 µs", pug_loop, "p50_us", 1.5, "µs"),
        _at_most("loopback: track() p99 ≤ 50 µs", pug_loop, "p99_us", 50, "µs"),
        _at_most("loopback: client CPU ≤ 8 µs/event", pug_loop, "cpu_us_per_event", 8, "µs"),
        _lost(
            "validating server, 20,000-event burst: 0 lost",
            _find(report.get("validating", ()), "pug"),
        ),
        _memory(report),
        _lost(
            "3 s outage, 20,000 events: 0 lost (from 'a 10-second outage at 10,000 events/s')",
            _find(report.get("outage", ()), "pug"),
        ),
    ]


def targets_table(report: Row) -> list[str]:
    lines = ["| target (pug-grpc defaults) | measured | |", "|---|---|---|"]
    for target in evaluate(report):
        lines.append(f"| {target.name} | {target.measured} | {target.verdict} |")
    return lines
