"""Benchmark pug-grpc against PostHog and Segment on one workload; print a table, write JSON.

    python scripts/bench.py                 # 100,000 events, 3 runs per SDK and variant
    python scripts/bench.py --quick         # a few thousand events, 1 run: checks it all works

Each run starts a sink in its own process (our local server for pug-grpc, a minimal HTTP
endpoint for the peers' batch formats, both on 127.0.0.1 only) and the client in another
process, which tracks the events as fast as one thread can and then closes. Figures per run:
caller µs per call (p50/p99, measured while the worker is sending), end-to-end events/s (first
call to the last event stored by the sink), client CPU µs per tracked event, the client's peak
RSS and the events lost (tracked minus stored). The table shows the median of the runs.

Also measured for pug-grpc: gzip on/off and batch sizes 100/1,000, the memory per event queued
behind a stopped server, profiles.list and activity.feed read rates, and a cProfile of the burst.
Results go to ``bench-results/latest.json`` and ``bench-results/latest.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SINKS = HERE / "bench_sinks.py"
CLIENTS = HERE / "bench_clients.py"
CLIENT_TIMEOUT = 900.0
KIB_PER_MB = 1024


@dataclass(frozen=True)
class Variant:
    """One SDK configuration: how its client and its sink are started."""

    key: str
    label: str
    mode: str
    sink: str
    options: tuple[str, ...] = ()


PUG_DEFAULT = Variant("pug", "pug-grpc (defaults)", "pug", "grpc")
PUG_FULL_SERVER = Variant("pug-local-server", "pug-grpc → full local server", "pug", "pug")
PEERS = (
    Variant("posthog", "PostHog (defaults)", "posthog", "http"),
    Variant(
        "posthog-queue-1m", "PostHog, queue 1M", "posthog", "http", ("--queue-size", "1000000")
    ),
    Variant("segment", "Segment (defaults)", "segment", "http"),
    Variant(
        "segment-queue-1m", "Segment, queue 1M", "segment", "http", ("--queue-size", "1000000")
    ),
)
PUG_VARIANTS = (
    Variant("pug-gzip", "pug-grpc, gzip", "pug", "grpc", ("--gzip",)),
    Variant("pug-batch-1000", "pug-grpc, batch 1,000", "pug", "grpc", ("--batch-size", "1000")),
    Variant(
        "pug-batch-1000-gzip",
        "pug-grpc, batch 1,000, gzip",
        "pug",
        "grpc",
        ("--batch-size", "1000", "--gzip"),
    ),
)


def _env() -> dict[str, str]:
    """The children's environment: no proxy may route loopback traffic anywhere else."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class Sink:
    """A sink process; ``stats()`` asks it what it stored and when."""

    def __init__(self, kind: str, *options: str, log: IO[str] | None = None) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(SINKS), kind, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
            text=True,
            env=_env(),
        )
        self.port = int(json.loads(self._readline())["port"])

    def _readline(self) -> str:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the sink exited early (status {self._proc.wait()})")
        return line

    def stats(self) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write("stats\n")
        self._proc.stdin.flush()
        result: dict[str, Any] = json.loads(self._readline())
        return result

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write("quit\n")
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_client(mode: str, *options: str, log: IO[str] | None = None) -> dict[str, Any]:
    """Run one client process and return the JSON line it printed last."""
    done = subprocess.run(
        [sys.executable, str(CLIENTS), mode, *options],
        stdout=subprocess.PIPE,
        stderr=log if log is not None else subprocess.DEVNULL,
        text=True,
        env=_env(),
        timeout=CLIENT_TIMEOUT,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"bench client {mode} {' '.join(options)} failed ({done.returncode})")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def one_run(
    variant: Variant, events: int, sink_options: Sequence[str], log: IO[str]
) -> dict[str, Any]:
    """One burst of ``events`` against a fresh sink; the figures of the table for it."""
    extra = tuple(sink_options) if variant.sink == "pug" else ()
    with Sink(variant.sink, *extra, log=log) as sink:
        client = run_client(
            variant.mode,
            "--port",
            str(sink.port),
            "--events",
            str(events),
            "--variant",
            variant.key,
            *variant.options,
            log=log,
        )
        stored = sink.stats()
    span = stored["last"] - client["first"]
    return {
        **client,
        "variant": variant.key,
        "label": variant.label,
        "stored": stored["events"],
        "requests": stored["requests"],
        "lost": events - stored["events"],
        "events_per_s": stored["events"] / span if stored["events"] and span > 0 else 0.0,
        "cpu_us_per_event": client["cpu_s"] / events * 1e6,
        "peak_rss_mb": client["peak_rss_kib"] / KIB_PER_MB,
    }


SUMMARY_FIELDS = ("p50_us", "p99_us", "events_per_s", "cpu_us_per_event", "peak_rss_mb", "lost")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the runs of one variant (and the spread, for the JSON)."""
    first = runs[0]
    out: dict[str, Any] = {"variant": first["variant"], "label": first["label"], "runs": len(runs)}
    for name in SUMMARY_FIELDS:
        values = [r[name] for r in runs]
        out[name] = statistics.median(values)
        out[name + "_range"] = [min(values), max(values)]
    return out


# -- formatting ----------------------------------------------------------------------------
def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _us(value: float) -> str:
    return _num(value, 1) if value < 100 else _num(value)


def results_table(rows: Sequence[dict[str, Any]], events: int) -> list[str]:
    lines = [
        "| SDK | caller µs p50 / p99 | end-to-end events/s (stored) | client CPU µs/event "
        f"| peak RSS MB | events lost of {_num(events)} |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {_us(r['p50_us'])} / {_us(r['p99_us'])} | "
            f"{_num(r['events_per_s'])} | {_num(r['cpu_us_per_event'], 1)} | "
            f"{_num(r['peak_rss_mb'], 1)} | {_num(r['lost'])} |"
        )
    return lines


def _ratio(better: float, worse: float) -> str:
    if better <= 0 or worse <= 0:
        return "n/a"
    return f"{worse / better:,.1f}x"


def ratio_table(ours: dict[str, Any], peers: Sequence[dict[str, Any]]) -> list[str]:
    """How many times better pug-grpc is on each figure (below 1x means worse)."""
    lines = [
        f"| {ours['label']} vs | caller p50 | caller p99 | events/s | CPU/event | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for p in peers:
        lines.append(
            f"| {p['label']} | {_ratio(ours['p50_us'], p['p50_us'])} | "
            f"{_ratio(ours['p99_us'], p['p99_us'])} | "
            f"{_ratio(p['events_per_s'], ours['events_per_s'])} | "
            f"{_ratio(ours['cpu_us_per_event'], p['cpu_us_per_event'])} | "
            f"{_ratio(ours['peak_rss_mb'], p['peak_rss_mb'])} |"
        )
    return lines


def profile_table(rows: Sequence[dict[str, Any]], events: int) -> list[str]:
    lines = ["| function | calls | own time µs/event | cumulative µs/event |", "|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| `{r['function']}` | {_num(r['calls'])} | {r['tottime_s'] / events * 1e6:.2f} | "
            f"{r['cumtime_s'] / events * 1e6:.2f} |"
        )
    return lines


def sample_with_py_spy(port: int, events: int, out: Path, log: IO[str]) -> dict[str, Any] | None:
    """Sample the pug-grpc burst with py-spy (every thread, 1 kHz): own samples per function.

    A sampling profile does not slow Python calls down the way cProfile does, so its shares are
    closer to where the wall time goes. Returns None when py-spy cannot attach here.
    """
    raw = out / "py-spy.txt"
    command = ["py-spy", "record", "--threads", "--rate", "1000", "--format", "raw"]
    command += ["--output", str(raw), "--", sys.executable, str(CLIENTS), "pug"]
    command += ["--port", str(port), "--events", str(events)]
    done = subprocess.run(
        command, stdout=log, stderr=log, env=_env(), timeout=CLIENT_TIMEOUT, check=False
    )
    if done.returncode != 0 or not raw.exists():
        return None
    own: dict[str, dict[str, int]] = {"caller": {}, "worker": {}}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if frames[0].endswith("pug-grpc-worker"):
            thread = "worker"
        elif any(f.startswith("_burst (") for f in frames):
            thread = "caller"  # the tracking loop only: not the imports or the set-up
        else:
            continue
        leaf = re.sub(r":\d+\)$", ")", frames[-1])  # per function, not per line
        own[thread][leaf] = own[thread].get(leaf, 0) + int(count)
    result: dict[str, Any] = {}
    for thread, counts in own.items():
        total = sum(counts.values()) or 1
        top = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:12]
        result[thread] = {
            "samples": total,
            "top": [{"function": f, "share": n / total} for f, n in top],
        }
    return result


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for dist in ("pug-grpc", "grpcio", "protobuf", "posthog", "segment-analytics-python"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": list(os.getloadavg()),
        "versions": versions,
    }


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def render(report: dict[str, Any]) -> str:
    cfg = report["config"]
    m = report["machine"]
    out = [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['platform']}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_avg_at_start'])}.",
        f"Workload: {_num(cfg['events'])} events (`{cfg['kind']}`, 8 properties), one thread, "
        f"median of {cfg['runs']} run(s). Sinks on 127.0.0.1, each in its own process: a minimal "
        "gRPC EventsService that parses and counts (pug-grpc), a minimal HTTP endpoint that "
        "parses and counts (peers)"
        + (
            f"; the full local server (SQLite, protovalidate {_on(cfg['server_validate'])}) for "
            "the row marked so."
            if cfg["full_server"]
            else "."
        ),
        "",
        *results_table(report["summary"], cfg["events"]),
    ]
    ours = next((r for r in report["summary"] if r["variant"] == PUG_DEFAULT.key), None)
    peers = [r for r in report["summary"] if not r["variant"].startswith("pug")]
    if ours is not None and peers:
        out += ["", "Ratios (how many times better pug-grpc is; below 1x means worse):", ""]
        out += ratio_table(ours, peers)
    if report.get("pug_variants"):
        out += ["", "pug-grpc gzip and batch size:", ""]
        out += results_table(report["pug_variants"], cfg["events"])
    mem = report.get("memory")
    if mem:
        out += [
            "",
            f"Memory per queued event: {_num(mem['bytes_per_event'])} bytes "
            f"({_num(mem['events'])} events queued behind a stopped server; RSS "
            f"{_num(mem['rss_before_kib'] / KIB_PER_MB, 1)} → "
            f"{_num(mem['rss_after_kib'] / KIB_PER_MB, 1)} MB).",
        ]
    reads = report.get("reads")
    if reads:
        out += [
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
                f"| {label} | {_num(r['items'])} | {r['seconds']:.3f} | {_num(r['items_per_s'])} "
                f"| {r['client_cpu_us_per_item']:.1f} |"
            )
    prof = report.get("profile")
    if prof:
        n = prof["events"]
        out += [
            "",
            f"cProfile of the pug-grpc burst ({_num(n)} events, {prof['seconds']:.2f} s under "
            f"the profiler, {_num(prof['sent'])} sent, {_num(prof['overflowed'])} overflowed), "
            "caller thread:",
            "",
            *profile_table(prof["caller"], n),
            "",
            "worker thread:",
            "",
            *profile_table(prof["worker"], n),
        ]
    spy = report.get("py_spy")
    if spy:
        out += [
            "",
            "py-spy samples of the burst (wall time, own frames; a thread waiting for the "
            "interpreter lock or a reply is counted where it waits):",
            "",
        ]
        out += ["| thread | function | share |", "|---|---|---|"]
        for thread in ("caller", "worker"):
            for row in spy[thread]["top"]:
                out.append(f"| {thread} | `{row['function']}` | {row['share'] * 100:.1f}% |")
    return "\n".join(out) + "\n"


# -- main ----------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, help="events per run (100,000; --quick: 2,000)")
    parser.add_argument("--runs", type=int, help="runs per SDK and variant (3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="tiny counts, one run (a smoke test)")
    parser.add_argument(
        "--sdks", default="pug,posthog,segment", help="comma-separated: pug, posthog, segment"
    )
    parser.add_argument("--no-queue-raised", action="store_true", help="skip the peers' 1M queue")
    parser.add_argument("--no-variants", action="store_true", help="skip gzip / batch 1,000")
    parser.add_argument("--no-memory", action="store_true", help="skip memory per queued event")
    parser.add_argument("--no-reads", action="store_true", help="skip the read figures")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument(
        "--full-server",
        action="store_true",
        help="add a pug-grpc row against the full local server (it stores every event in "
        "SQLite, about 60 µs/event on the server: it measures the server more than the client)",
    )
    parser.add_argument(
        "--server-validate",
        action="store_true",
        help="with --full-server: protovalidate on in the server (about 20 µs/event more)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="output folder")
    args = parser.parse_args(argv)
    events = args.events or (2_000 if args.quick else 100_000)
    runs = args.runs or (1 if args.quick else 3)
    sdks = {s.strip() for s in args.sdks.split(",") if s.strip()}
    unknown = sdks - {"pug", "posthog", "segment"}
    if unknown:
        parser.error(f"unknown SDK(s): {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    sink_options = ("--validate",) if args.server_validate else ()

    variants: list[Variant] = [PUG_DEFAULT] if "pug" in sdks else []
    if "pug" in sdks and args.full_server:
        variants.append(PUG_FULL_SERVER)
    for peer in PEERS:
        if peer.mode in sdks and not (args.no_queue_raised and "queue" in peer.key):
            variants.append(peer)
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "events": events,
            "runs": runs,
            "kind": "checkout.completed",
            "server_validate": args.server_validate,
            "full_server": args.full_server,
            "sdks": sorted(sdks),
        },
        "runs": [],
        "summary": [],
        "pug_variants": [],
    }
    with open(args.out / "latest.log", "w") as log:

        def measure(variant: Variant) -> dict[str, Any]:
            results = []
            for n in range(runs):
                print(f"  {variant.label}: run {n + 1}/{runs} ...", file=sys.stderr, flush=True)
                result = one_run(variant, events, sink_options, log)
                report["runs"].append(result)
                results.append(result)
            return summarize(results)

        for variant in variants:
            report["summary"].append(measure(variant))
        if "pug" in sdks and not args.no_variants:
            default = next(r for r in report["summary"] if r["variant"] == PUG_DEFAULT.key)
            report["pug_variants"] = [{**default, "label": "pug-grpc, batch 100 (default)"}]
            report["pug_variants"] += [measure(v) for v in PUG_VARIANTS]
        if "pug" in sdks and not args.no_memory:
            print("  memory per queued event ...", file=sys.stderr, flush=True)
            queued = 2_000 if args.quick else 50_000
            report["memory"] = run_client("memory", "--events", str(queued), log=log)
        if "pug" in sdks and not args.no_reads:
            print("  reads ...", file=sys.stderr, flush=True)
            seeded = "500" if args.quick else "10000"
            with Sink("reads", "--profiles", seeded, "--events", seeded, log=log) as sink:
                report["reads"] = run_client("reads", "--port", str(sink.port), log=log)
        if "pug" in sdks and not args.no_profile:
            print("  profile ...", file=sys.stderr, flush=True)
            with Sink("grpc", log=log) as sink:
                report["profile"] = run_client(
                    "profile", "--port", str(sink.port), "--events", str(events), log=log
                )
        if "pug" in sdks and not args.no_profile and shutil.which("py-spy"):
            print("  py-spy ...", file=sys.stderr, flush=True)
            with Sink("grpc", log=log) as sink:
                report["py_spy"] = sample_with_py_spy(sink.port, events, args.out, log)
    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    text = render(report)
    (args.out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "latest.md").write_text(text)
    print(text)
    print(f"written: {args.out / 'latest.json'}, {args.out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    status = main()
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    raise SystemExit(status)
