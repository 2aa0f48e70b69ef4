"""One measured run (a sink configured, a client process, the sink's count), and their medians."""

from __future__ import annotations

import ast
import dataclasses
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from bench_common import LOOPBACK
from bench_procs import ClientFailedError, Sink, run_client

KIB_PER_MB = 1024


@dataclass(frozen=True)
class Sdk:
    """One SDK configuration: its client mode, its sink and its options."""

    key: str
    label: str
    mode: str
    sink: str
    options: tuple[str, ...] = ()

    @property
    def is_pug(self) -> bool:
        return self.mode == "pug"


PUG = Sdk("pug", "pug-grpc (defaults)", "pug", "grpc")
POSTHOG = Sdk("posthog", "PostHog (defaults)", "posthog", "http")
SEGMENT = Sdk("segment", "Segment (defaults)", "segment", "http")


def _literal(raw: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw  # a bare word: a string


def pug_settings(pairs: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """``name=value`` pairs for ``BatchSettings``: those it has, and the names it lacks.

    Values are Python literals (``8``, ``2.5``, ``True``, ``None``); anything else is a string.
    The fields are read from the installed ``BatchSettings`` dataclass, so the same command
    line runs against any version of the engine.
    """
    from pug_grpc import BatchSettings

    known = {f.name for f in dataclasses.fields(BatchSettings)}
    settings: dict[str, Any] = {}
    ignored: list[str] = []
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--pug-setting takes name=value, not {pair!r}")
        if name in known:
            settings[name] = _literal(raw.strip())
        else:
            ignored.append(name)
    BatchSettings(**settings)  # refuse a bad value now, not in every client process
    return settings, ignored


def pug_with(
    settings: dict[str, Any],
    *,
    key: str = "pug-settings",
    label: str = "",
    extra: tuple[str, ...] = (),
) -> Sdk:
    """pug-grpc with these ``BatchSettings`` (the defaults row never uses this)."""
    shown = ", ".join(f"{k}={v!r}" for k, v in settings.items())
    options = ("--pug-settings", json.dumps(settings), *extra)
    return Sdk(key, label or f"pug-grpc ({shown})", "pug", "grpc", options)


@dataclass
class Bench:
    """What every run needs: the sinks (started on first use, kept), the log, the network."""

    log: IO[str]
    host: str = LOOPBACK
    sink_prefix: tuple[str, ...] = ()
    client_prefix: tuple[str, ...] = ()
    client_options: tuple[str, ...] = ()
    """Options every client of a run gets (e.g. ``--identify-every``)."""
    sinks: dict[str, Sink] = field(default_factory=dict)

    def sink(self, kind: str) -> Sink:
        if kind not in self.sinks:
            self.sinks[kind] = Sink(kind, host=self.host, prefix=self.sink_prefix, log=self.log)
        return self.sinks[kind]

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        self.sinks.clear()

    def run(
        self,
        sdk: Sdk,
        events: int,
        *,
        rate: float = 0.0,
        extra: Sequence[str] = (),
        **knobs: float | bool,
    ) -> dict[str, Any]:
        """One run of ``events`` calls (a burst, or paced at ``rate``) against a fresh count."""
        sink = self.sink(sdk.sink)
        sink.configure(**knobs)
        options = ["--host", sink.host, "--port", str(sink.port), "--events", str(events)]
        if rate:
            options += ["--rate", str(rate)]
        timeout = 90 + events / 200 + (events / rate if rate else 0)
        row: dict[str, Any] = {"sdk": sdk.key, "label": sdk.label, "events": events}
        try:
            client = run_client(
                sdk.mode,
                *options,
                *sdk.options,
                *self.client_options,
                *extra,
                timeout=timeout,
                prefix=self.client_prefix,
                log=self.log,
            )
        except ClientFailedError as error:
            print(f"    {error}", file=sys.stderr, flush=True)
            return {**row, "error": str(error), **_delivery(events, sink.stats(), None)}
        return {**client, **row, **_delivery(events, sink.stats(), client)}


def _delivery(events: int, stored: dict[str, Any], client: dict[str, Any] | None) -> dict[str, Any]:
    delivered = stored["events"] + stored["identifies"]
    out: dict[str, Any] = {
        "stored": delivered,
        "lost": events - delivered,
        "duplicates": stored["duplicates"],
        "requests": stored["requests"],
        "refused_requests": stored["refused_requests"],
        "refused_items": stored["refused_items"],
        "invalid_items": stored["invalid_items"],
        "sink_cpu_us_per_event": stored["cpu_s"] / delivered * 1e6 if delivered else 0.0,
    }
    if client is not None:
        span = stored["last"] - client["first"]
        out["events_per_s"] = delivered / span if delivered and span > 0 else 0.0
        out["cpu_us_per_event"] = client["cpu_s"] / events * 1e6
        out["peak_rss_mb"] = client["peak_rss_kib"] / KIB_PER_MB
        out["drain_s"] = client["closed"] - client["calls_done"]
    return out


SUMMARY_FIELDS = (
    "p50_us",
    "p99_us",
    "events_per_s",
    "cpu_us_per_event",
    "peak_rss_mb",
    "lost",
    "calls_per_s",
    "lag_max_ms",
    "drain_s",
    "sink_cpu_us_per_event",
    "duplicates",
    "refused_requests",
    "refused_items",
    "invalid_items",
)


def summarize(runs: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
    """The median of each figure over the runs of one configuration (and their range)."""
    first = runs[0]
    out: dict[str, Any] = {
        "sdk": first["sdk"],
        "label": first["label"],
        "events": first["events"],
        "runs": len(runs),
        **context,
    }
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        out["errors"] = errors
    for name in SUMMARY_FIELDS:
        values = [r[name] for r in runs if name in r]
        if values:
            out[name] = statistics.median(values)
            out[name + "_range"] = [min(values), max(values)]
    return out
