"""The sections of ``bench.py``: what each one runs, for which SDKs, at which sizes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from bench_netem import NetemLink, NetemUnavailableError
from bench_procs import ClientFailedError, Sink, run_client
from bench_runs import Bench, Sdk, pug_with, summarize

SECTIONS = (
    "loopback",
    "delayed",
    "validating",
    "outage",
    "memory",
    "variants",
    "reads",
    "profile",
    "storage",
    "asyncio",
)
ROW_SECTIONS = ("loopback", "delayed", "validating", "outage", "memory", "netem", "variants")
"""The sections whose rows the report holds as lists (``reads`` and ``profile`` are one each)."""


@dataclasses.dataclass
class Sizes:
    """How big each section is (``--quick`` shrinks them; each has its option)."""

    loopback_events: int = 100_000
    loopback_runs: int = 3
    runs: int = 1
    burst_events: int = 20_000
    paced_rate: float = 10_000.0
    paced_seconds: float = 5.0
    validating_events: int = 20_000
    outage_events: int = 20_000
    outage_track_s: float = 4.0
    outage_after_s: float = 0.5
    outage_for_s: float = 3.0
    memory_events: int = 100_000
    reads_seeded: int = 10_000
    storage_events: int = 20_000
    storage_outage_s: float = 30.0
    async_profiles: int = 10_000
    async_events: int = 100_000


QUICK = Sizes(
    loopback_events=2_000,
    loopback_runs=1,
    burst_events=1_000,
    paced_seconds=0.2,
    validating_events=1_000,
    outage_events=1_000,
    outage_track_s=1.0,
    outage_after_s=0.2,
    outage_for_s=0.5,
    memory_events=2_000,
    reads_seeded=500,
    storage_events=1_000,
    storage_outage_s=1.0,
    async_profiles=500,
    async_events=2_000,
)


def say(message: str) -> None:
    """Progress, on stderr (stdout carries the tables)."""
    print(f"  {message} ...", file=sys.stderr, flush=True)


def _show(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in settings.items())


def raised_queue(events: int) -> dict[str, Any]:
    """Queue bounds (those this version of ``BatchSettings`` has) raised so ``events`` fit."""
    from pug_grpc import BatchSettings

    names = {f.name for f in dataclasses.fields(BatchSettings)}
    wanted = {"max_queue_size": events + 1000, "max_queue_bytes": 1 << 30}
    return {k: v for k, v in wanted.items() if k in names}


class Plan:
    """The SDKs to compare and the sizes; each method runs one section into the report."""

    def __init__(
        self, bench: Bench, sdks: Sequence[Sdk], sizes: Sizes, report: dict[str, Any]
    ) -> None:
        self.bench = bench
        self.sdks = list(sdks)
        self.sizes = sizes
        self.report = report

    def repeat(
        self, what: str, sdk: Sdk, runs: int, events: int, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """``runs`` runs of one configuration; every one goes into the report's ``runs``."""
        results = []
        for n in range(runs):
            say(f"{what}: {sdk.label}, run {n + 1}/{runs}")
            started = time.monotonic()
            result = self.bench.run(sdk, events, **kwargs)
            wall = time.monotonic() - started
            self.report["runs"].append({**result, "section": what, "wall_s": wall})
            results.append(result)
        return results

    def loopback(self, extra_sdks: Sequence[Sdk]) -> None:
        s = self.sizes
        for sdk in [*self.sdks, *extra_sdks]:
            runs = self.repeat("loopback", sdk, s.loopback_runs, s.loopback_events)
            self.report["loopback"].append(summarize(runs))

    def delayed(self, delays_ms: Sequence[float]) -> None:
        s = self.sizes
        paced_events = int(s.paced_rate * s.paced_seconds)
        for delay in delays_ms:
            for workload in ("burst", "paced"):
                what = f"{delay:g} ms {workload}"
                for sdk in self.sdks:
                    if workload == "burst":
                        runs = self.repeat(what, sdk, s.runs, s.burst_events, delay=delay / 1000)
                    else:
                        runs = self.repeat(
                            what, sdk, s.runs, paced_events, rate=s.paced_rate, delay=delay / 1000
                        )
                    context = {
                        "delay_ms": delay,
                        "workload": workload,
                        "rate": s.paced_rate,
                        "seconds": s.paced_seconds,
                    }
                    self.report["delayed"].append(summarize(runs, **context))

    def validating(self) -> None:
        s = self.sizes
        for sdk in self.sdks:
            runs = self.repeat("validating", sdk, s.runs, s.validating_events, validate=True)
            self.report["validating"].append(summarize(runs))

    def outage(self) -> None:
        s = self.sizes
        rate = s.outage_events / s.outage_track_s
        for sdk in self.sdks:
            runs = self.repeat(
                "outage",
                sdk,
                s.runs,
                s.outage_events,
                rate=rate,
                outage_after=s.outage_after_s,
                outage_for=s.outage_for_s,
            )
            self.report["outage"].append(summarize(runs))

    def memory(self) -> None:
        """Each SDK queues the events behind a stopped server; pug also with a raised bound."""
        events = self.sizes.memory_events
        raised = raised_queue(events) if any(sdk.is_pug for sdk in self.sdks) else {}
        rows: list[tuple[Sdk, str, tuple[str, ...]]] = []
        for sdk in self.sdks:
            if sdk.is_pug:
                rows.append((sdk, sdk.label, ()))
                if sdk.key == "pug" and raised:
                    label = f"pug-grpc, queue raised ({_show(raised)})"
                    rows.append((pug_with(raised, key="pug-raised"), label, ()))
            else:
                label = sdk.label.replace("(defaults)", f"(max_queue_size={events + 1000:,})")
                rows.append((sdk, label, ("--queue-size", str(events + 1000))))
        for sdk, label, extra in rows:
            say(f"memory: {label}")
            options = ["--memory", "--events", str(events), *sdk.options, *extra]
            try:
                out = run_client(sdk.mode, *options, timeout=180, log=self.bench.log)
            except ClientFailedError as error:
                out = {"error": str(error), "events": events}
            self.report["memory"].append({**out, "sdk": sdk.key, "label": label})

    def variants(self) -> None:
        s = self.sizes
        batch, gzip = {"max_size": 1000}, ("--gzip",)
        for sdk in (
            Sdk("pug-gzip", "pug-grpc, gzip", "pug", "grpc", gzip),
            pug_with(batch, key="pug-batch-1000", label="pug-grpc, max_size=1000"),
            pug_with(
                batch, key="pug-batch-1000-gzip", label="pug-grpc, max_size=1000, gzip", extra=gzip
            ),
        ):
            runs = self.repeat("variants", sdk, s.loopback_runs, s.loopback_events)
            self.report["variants"].append(summarize(runs))

    def reads(self) -> None:
        say("reads")
        seeded = str(self.sizes.reads_seeded)
        log = self.bench.log
        with Sink("reads", "--profiles", seeded, "--events", seeded, log=log) as sink:
            self.report["reads"] = run_client(
                "reads", "--port", str(sink.port), timeout=300, log=log
            )

    def profile(self) -> None:
        say("profile")
        sink = self.bench.sink("grpc")
        sink.configure()
        events = str(self.sizes.loopback_events)
        self.report["profile"] = run_client(
            "profile", "--port", str(sink.port), "--events", events, timeout=600, log=self.bench.log
        )

    def storage(self) -> None:
        """MemoryStorage and SqliteStorage on the same workload, then an outage with the spool."""
        say("storage")
        s = self.sizes
        self.report["storage"] = _script(
            "bench_storage.py",
            "--events",
            str(s.storage_events),
            "--outage",
            str(s.storage_outage_s),
            "--rate",
            "5000",
            log=self.bench.log,
        )

    def asyncio(self) -> None:
        """The event loop's lateness while AsyncPug lists profiles and tracks events."""
        say("asyncio")
        s = self.sizes
        self.report["asyncio"] = _script(
            "bench_async.py",
            "--profiles",
            str(s.async_profiles),
            "--events",
            str(s.async_events),
            log=self.bench.log,
        )

    def netem(self, delays_ms: Sequence[float], log: IO[str]) -> None:
        """The delayed burst again, with the latency on the packets (netns + veth + netem)."""
        link = NetemLink()
        try:
            link.open(probe=any(d > 0 for d in delays_ms))
        except NetemUnavailableError as error:
            self.report["netem_skipped"] = str(error)
            say(f"netem skipped: {error}")
            return
        bench = Bench(
            log,
            host=link.sink_host,
            sink_prefix=link.sink_prefix,
            client_prefix=link.client_prefix,
            client_options=self.bench.client_options,
        )
        inside = Plan(bench, self.sdks, self.sizes, self.report)
        try:
            for delay in delays_ms:
                link.delay(delay / 1000)
                for sdk in self.sdks:
                    runs = inside.repeat(
                        f"netem {delay:g} ms", sdk, self.sizes.runs, self.sizes.burst_events
                    )
                    self.report["netem"].append(summarize(runs, delay_ms=delay, workload="burst"))
        finally:
            bench.close()
            link.close()


def _script(name: str, *args: str, log: IO[str]) -> dict[str, Any]:
    """Run a benchmark script of its own (its own process), keeping the table it prints."""
    script = Path(__file__).with_name(name)
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    log.write(f"--- {name} {' '.join(args)}\n{done.stderr}")
    return {
        "command": f"{name} {' '.join(args)}",
        "returncode": done.returncode,
        "text": done.stdout,
    }
