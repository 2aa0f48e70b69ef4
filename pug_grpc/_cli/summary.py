"""The summary ``pug-grpc import`` prints: every outcome counted, and each count split by reason.

It is fed counts only (:class:`ImportCounts`), so it does not care where they come from: the
rows the importer rejected, the client's ``on_error`` reports, its ``flush()`` results.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ImportCounts", "reason_key", "render_summary"]

_SHOWN_REASONS = 8
_QUOTED_RE = re.compile(r"'[^']*'|\"[^\"]*\"")


@dataclass(frozen=True, kw_only=True)
class ImportCounts:
    """What became of the rows of one import; each mapping counts rows (or events) per reason."""

    rows: int
    stored: int
    seconds: float
    rejected: Mapping[str, int] = field(default_factory=dict)
    undelivered: Mapping[str, int] = field(default_factory=dict)
    dropped: Mapping[str, int] = field(default_factory=dict)
    catalog: Mapping[str, int] = field(default_factory=dict)
    """Rows sent although their kind's catalog rules were broken, per ``"kind: rule"``."""

    @property
    def ok(self) -> bool:
        """Every row was stored."""
        return not (self.rejected or self.undelivered or self.dropped)


def reason_key(reason: str) -> str:
    """``reason`` without the quoted values in it, so that alike reasons count together."""
    return _QUOTED_RE.sub("…", reason)


def _breakdown(title: str, counts: Mapping[str, int]) -> list[str]:
    ordered = Counter(counts).most_common()
    lines = [f"  {title}:"]
    lines += [f"    {count:>9,}  {reason}" for reason, count in ordered[:_SHOWN_REASONS]]
    rest = ordered[_SHOWN_REASONS:]
    if rest:
        lines.append(f"    {sum(c for _, c in rest):>9,}  ({len(rest):,} other reasons)")
    return lines


def render_summary(source: str, counts: ImportCounts) -> str:
    """The summary: one line of totals, then the reasons behind each non-zero count."""
    rate = counts.rows / counts.seconds if counts.seconds > 0 else 0.0
    lines = [
        f"Imported {source}: {counts.rows:,} rows, {counts.stored:,} events stored,"
        f" {sum(counts.rejected.values()):,} rejected,"
        f" {sum(counts.undelivered.values()):,} undelivered,"
        f" {sum(counts.dropped.values()):,} dropped by the server,"
        f" in {counts.seconds:.2f} s ({rate:,.0f} rows/s)"
    ]
    for title, by_reason in (
        ("rejected", counts.rejected),
        ("undelivered", counts.undelivered),
        ("dropped by the server", counts.dropped),
        ("sent as given, breaking their catalog kind's rules", counts.catalog),
    ):
        if by_reason:
            lines += _breakdown(title, by_reason)
    return "\n".join(lines) + "\n"
