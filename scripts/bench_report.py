"""The tables ``bench.py`` prints and writes to ``bench-results/latest.md``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench_targets import targets_table

Row = dict[str, Any]


def num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _us(value: float) -> str:
    return num(value, 1) if value < 100 else num(value)


def _get(row: Row, name: str, fmt: Callable[[float], str] = num) -> str:
    return fmt(row[name]) if name in row else "-"


def _get1(row: Row, name: str) -> str:
    """A figure with one decimal, or a dash when the run did not measure it."""
    return _get(row, name, lambda v: num(v, 1))


def _label(row: Row) -> str:
    return str(row["label"]) + (" **(error)**" if row.get("errors") else "")


def _calls(row: Row) -> str:
    if "p50_us" not in row:
        return "-"
    return f"{_us(row['p50_us'])} / {_us(row['p99_us'])}"


def ratio(better: float, worse: float) -> str:
    """``better / worse`` as ``12.3x`` (a rate over a rate), ``n/a`` when one is missing."""
    if better <= 0 or worse <= 0:
        return "n/a"
    return f"{better / worse:,.1f}x"


def calls_table(
    rows: Sequence[Row], *, first: str = "", first_of: Callable[[Row], str] = str
) -> list[str]:
    """The common table: delivered rate, lost, call latency, CPU, RSS (one row per run set)."""
    head = f"| {first} " if first else ""
    lines = [
        f"{head}| SDK | delivered events/s | lost (of tracked) | track() µs p50 / p99 "
        "| client CPU µs/event | peak RSS MB |",
        ("|---" if first else "") + "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cell = f"| {first_of(r)} " if first else ""
        lines.append(
            f"{cell}| {_label(r)} | {_get(r, 'events_per_s')} | {num(r['lost'])} "
            f"(of {num(r['events'])}) | {_calls(r)} | {_get1(r, 'cpu_us_per_event')} "
            f"| {_get1(r, 'peak_rss_mb')} |"
        )
    return lines


def _rate(rows: Sequence[Row], sdk: str) -> float:
    return next((r.get("events_per_s", 0.0) for r in rows if r["sdk"] == sdk), 0.0)


_PEERS = {"segment": "Segment", "posthog": "PostHog"}


def ratio_lines(rows: Sequence[Row]) -> str:
    """pug-grpc's delivered rate over each peer's (at its defaults), in one sentence."""
    ours = _rate(rows, "pug")
    parts = [
        f"{ratio(ours, _rate(rows, k))} {name}'s" for k, name in _PEERS.items() if _rate(rows, k)
    ]
    return f"pug-grpc (defaults) delivered {', '.join(parts)} rate." if parts and ours else ""


def _delayed(report: Row) -> list[str]:
    rows = report["delayed"]
    cfg = report["config"]

    def where(r: Row) -> str:
        if r["workload"] == "burst":
            work = f"burst of {num(r['events'])}"
        else:
            work = f"paced {num(r['rate'])}/s x {r['seconds']:g} s"
        return f"{r['delay_ms']:g} ms, {work}"

    out = [
        "### Delayed sinks",
        "",
        f"Each request answered {', '.join(f'{d:g}' for d in cfg['delays_ms'])} ms after it "
        "arrived, without holding up the other requests in flight.",
        "",
        *calls_table(rows, first="sink latency, workload", first_of=where),
        "",
        "| sink latency, workload | pug-grpc ÷ Segment | pug-grpc ÷ PostHog "
        "| paced: calls/s reached (worst lag) |",
        "|---|---|---|---|",
    ]
    for key in dict.fromkeys((r["delay_ms"], r["workload"]) for r in rows):
        group = [r for r in rows if (r["delay_ms"], r["workload"]) == key]
        pug = _rate(group, "pug")
        lag = ", ".join(
            f"{r['sdk']} {num(r.get('calls_per_s', 0))} ({num(r.get('lag_max_ms', 0), 1)} ms)"
            for r in group
            if r["workload"] == "paced"
        )
        out.append(
            f"| {where(group[0])} | {ratio(pug, _rate(group, 'segment'))} | "
            f"{ratio(pug, _rate(group, 'posthog'))} | {lag or '-'} |"
        )
    return out


def _validating(report: Row) -> list[str]:
    rows = report["validating"]
    out = [
        "### Validating server",
        "",
        "Every request checked with protovalidate before it is counted; the sink's CPU per "
        "stored event shows what that costs on each side.",
        "",
        "| SDK | delivered events/s | lost (of tracked) | refused as invalid "
        "| sink CPU µs/stored event | track() µs p50 / p99 | client CPU µs/event | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {_label(r)} | {_get(r, 'events_per_s')} | {num(r['lost'])} (of {num(r['events'])}) "
            f"| {num(r.get('invalid_items', 0))} | {_get1(r, 'sink_cpu_us_per_event')} "
            f"| {_calls(r)} | {_get1(r, 'cpu_us_per_event')} "
            f"| {_get1(r, 'peak_rss_mb')} |"
        )
    return out


def _outage(report: Row) -> list[str]:
    rows = report["outage"]
    o = report["config"]["outage"]
    out = [
        "### Outage",
        "",
        f"{num(o['events'])} events paced over {o['track_s']:g} s; the sink refuses every request "
        f"(gRPC `UNAVAILABLE`, HTTP 503) from {o['after_s']:g} s after its first request for "
        f"{o['for_s']:g} s.",
        "",
        "| SDK | lost (of tracked) | requests refused (events in them) | stored twice "
        "| drain after the last call s | delivered events/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {_label(r)} | {num(r['lost'])} (of {num(r['events'])}) | "
            f"{num(r.get('refused_requests', 0))} ({num(r.get('refused_items', 0))}) | "
            f"{num(r.get('duplicates', 0))} | {_get1(r, 'drain_s')} | "
            f"{_get(r, 'events_per_s')} |"
        )
    return out


def _memory(report: Row) -> list[str]:
    out = [
        "### Memory behind a stopped server",
        "",
        "| SDK | events queued (of tracked) | RSS growth MB | bytes per queued event |",
        "|---|---|---|---|",
    ]
    for r in report["memory"]:
        if "error" in r:
            out.append(f"| {r['label']} | error: {r['error']} | | |")
            continue
        out.append(
            f"| {r['label']} | {num(r['queued'])} (of {num(r['events'])}) | "
            f"{num(r['growth_mb'], 1)} | {num(r['bytes_per_queued_event'])} |"
        )
    return out


def _reads(reads: Row) -> list[str]:
    out = [
        "### Reads (pug-grpc, local server)",
        "",
        "| read | items | seconds | items/s | client CPU µs/item |",
        "|---|---|---|---|---|",
    ]
    for name, label in (
        ("profiles_list", "profiles.list (server pages of 100)"),
        ("feed", "activity.feed (default page size, 100)"),
        ("feed_page_1000", "activity.feed (page_size=1000)"),
    ):
        r = reads[name]
        out.append(
            f"| {label} | {num(r['items'])} | {r['seconds']:.3f} | {num(r['items_per_s'])} "
            f"| {r['client_cpu_us_per_item']:.1f} |"
        )
    return out


def _profile(prof: Row) -> list[str]:
    n = prof["events"]

    def table(rows: Sequence[Row]) -> list[str]:
        lines = ["| function | calls | own µs/event | cumulative µs/event |", "|---|---|---|---|"]
        for r in rows:
            lines.append(
                f"| `{r['function']}` | {num(r['calls'])} | {r['tottime_s'] / n * 1e6:.2f} | "
                f"{r['cumtime_s'] / n * 1e6:.2f} |"
            )
        return lines

    return [
        f"### cProfile of the default loopback burst ({num(n)} events, {prof['seconds']:.2f} s "
        "under the profiler; read the shares, not the absolute times)",
        "",
        "Caller thread:",
        "",
        *table(prof["caller"]),
        "",
        "pug-grpc's own threads:",
        "",
        *table(prof["worker"]),
    ]


def machine_line(m: Row) -> str:
    v = m["versions"]
    packages = ", ".join(f"{name} {version}" for name, version in v.items())
    load = ", ".join(f"{x:.2f}" for x in m["load_avg_at_start"])
    end = m.get("load_avg_at_end")
    at_end = f", at the end {', '.join(f'{x:.2f}' for x in end)}" if end else ""
    return (
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['platform']}; "
        f"{packages}; load average (1, 5, 15 min) at the start {load}{at_end}."
    )


def _script_section(title: str, result: Row) -> list[str]:
    """A section printed by a script of its own: its table as it printed it."""
    status = "" if result["returncode"] == 0 else f" (exit {result['returncode']})"
    return [
        title,
        "",
        f"`scripts/{result['command']}`{status}",
        "",
        "```",
        result["text"].rstrip(),
        "```",
        "",
    ]


def render(report: Row) -> str:
    """Every table of the run, in the order of the sections."""
    cfg = report["config"]
    out = [machine_line(report["machine"]), ""]
    if cfg["pug_settings"] or cfg["ignored_settings"]:
        out.append(
            f"pug-grpc settings row: {cfg['pug_settings'] or 'none'}; ignored (not a "
            f"BatchSettings field of this version): {', '.join(cfg['ignored_settings']) or 'none'}."
        )
        out.append("")
    if cfg.get("identify_every"):
        out += [f"Every {cfg['identify_every']}th call is an identify (traits: plan, seats).", ""]
    if cfg["quick"]:
        out += ["**Quick run: sizes too small for the figures to mean anything.**", ""]
    if report.get("loopback"):
        rows = report["loopback"]
        out += [
            f"### Loopback (0 ms), burst of {num(cfg['loopback_events'])}, median of "
            f"{cfg['loopback_runs']} run(s)",
            "",
            *calls_table(rows),
            "",
            ratio_lines(rows),
            "",
        ]
    if report.get("delayed"):
        out += [*_delayed(report), ""]
    if report.get("validating"):
        out += [*_validating(report), ""]
    if report.get("outage"):
        out += [*_outage(report), ""]
    if report.get("memory"):
        out += [*_memory(report), ""]
    if report.get("netem"):
        out += ["### Network-level latency (netns + veth + tc netem)", ""]
        out += [
            *calls_table(report["netem"], first="RTT", first_of=lambda r: f"{r['delay_ms']:g} ms"),
            "",
        ]
    elif report.get("netem_skipped"):
        out += [f"Network-level variant skipped: {report['netem_skipped']}", ""]
    if report.get("variants"):
        out += ["### pug-grpc variants (loopback burst)", "", *calls_table(report["variants"]), ""]
    if report.get("reads"):
        out += [*_reads(report["reads"]), ""]
    if report.get("profile"):
        out += [*_profile(report["profile"]), ""]
    if report.get("storage"):
        out += [*_script_section("### Storage: MemoryStorage and SqliteStorage", report["storage"])]
    if report.get("asyncio"):
        out += [*_script_section("### asyncio: the event loop's lateness", report["asyncio"])]
    out += ["### Targets, from this run's figures", "", *targets_table(report)]
    return "\n".join(out) + "\n"
