"""Benchmark pug-grpc against PostHog and Segment, side by side in one run; print the tables.

    python scripts/bench.py                      # every section (7 to 10 minutes on 2 cores)
    python scripts/bench.py --quick              # tiny sizes: checks that it all works
    python scripts/bench.py --pug-setting max_in_flight=8 --pug-setting max_size=500

Sections: loopback (a 100,000-event burst), delayed sinks (0/20/50 ms per request, a burst and
paced calls), a validating server (protovalidate on every request), an outage (the sink refuses
everything for 3 s), memory behind a stopped server, pug-grpc variants (gzip, batch 1,000),
reads and a cProfile; ``--netem`` adds the delays at the network level. Every sink and client
runs in its own process on 127.0.0.1 (see bench_sinks.py and bench_clients.py); the sinks
count what they stored themselves. ``--pug-setting name=value`` adds a pug-grpc row with
``BatchSettings(name=value, ...)`` next to the defaults row (names the installed version lacks
are ignored, and said so). Results: ``bench-results/latest.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench_procs import ROOT, machine
from bench_report import render
from bench_runs import POSTHOG, PUG, SEGMENT, Bench, Sdk, pug_settings, pug_with
from bench_sections import QUICK, ROW_SECTIONS, SECTIONS, Plan, Sizes
from bench_targets import evaluate


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _words(text: str) -> set[str]:
    return {w.strip() for w in text.split(",") if w.strip()}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (a smoke test)")
    parser.add_argument("--sdks", default="pug,posthog,segment", help="comma-separated")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated")
    parser.add_argument("--skip", default="", help="sections to leave out, comma-separated")
    parser.add_argument(
        "--pug-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add a pug-grpc row with BatchSettings(NAME=VALUE, ...); repeatable",
    )
    parser.add_argument("--delays", help="delayed sinks, ms per request (0,20,50; --quick: 20)")
    parser.add_argument(
        "--peers-queue-1m", action="store_true", help="loopback: add the peers with a 1M queue"
    )
    parser.add_argument(
        "--identify-every", type=int, default=0, help="every Nth call is an identify (0: none)"
    )
    parser.add_argument("--netem", action="store_true", help="also delay packets with tc netem")
    parser.add_argument("--netem-delays", default="20,50", help="round trips, ms")
    for f in dataclasses.fields(Sizes):
        parser.add_argument(
            "--" + f.name.replace("_", "-"), type=type(f.default), help=f"({f.default:,})"
        )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="output folder")
    return parser.parse_args(argv)


def _sdks(args: argparse.Namespace, settings: dict[str, Any]) -> list[Sdk]:
    by_name = {"pug": PUG, "posthog": POSTHOG, "segment": SEGMENT}
    names = _words(args.sdks)
    if names - set(by_name):
        raise SystemExit(f"unknown SDK: {', '.join(sorted(names - set(by_name)))}")
    sdks = [sdk for name, sdk in by_name.items() if name in names]
    if settings and "pug" in names:
        sdks.insert(1, pug_with(settings))
    return sdks


def _peers_raised(sdks: Sequence[Sdk]) -> list[Sdk]:
    """The peers again with a queue of a million (their defaults overflow at 10,000)."""
    return [
        Sdk(
            f"{p.key}-queue-1m",
            p.label.replace("(defaults)", "queue 1M"),
            p.mode,
            p.sink,
            ("--queue-size", "1000000"),
        )
        for p in sdks
        if not p.is_pug
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Sizes)}
    sizes = dataclasses.replace(
        QUICK if args.quick else Sizes(), **{k: v for k, v in given.items() if v}
    )
    sections = _words(args.sections) - _words(args.skip)
    if sections - set(SECTIONS):
        raise SystemExit(f"unknown section: {', '.join(sorted(sections - set(SECTIONS)))}")
    settings, ignored = pug_settings(args.pug_setting)
    sdks = _sdks(args, settings)
    has_pug = any(sdk.is_pug for sdk in sdks)
    raised = _peers_raised(sdks) if args.peers_queue_1m else []
    delays = _floats(args.delays or ("20" if args.quick else "0,20,50"))
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            **dataclasses.asdict(sizes),
            "quick": args.quick,
            "sdks": [sdk.key for sdk in sdks],
            "sections": sorted(sections),
            "delays_ms": delays,
            "identify_every": args.identify_every,
            "pug_settings": settings,
            "ignored_settings": ignored,
            "outage": {
                "events": sizes.outage_events,
                "track_s": sizes.outage_track_s,
                "after_s": sizes.outage_after_s,
                "for_s": sizes.outage_for_s,
            },
        },
        "runs": [],
        **{key: [] for key in ROW_SECTIONS},
    }
    with open(args.out / "latest.log", "w") as log:
        bench = Bench(log, client_options=("--identify-every", str(args.identify_every)))
        plan = Plan(bench, sdks, sizes, report)
        steps: dict[str, Callable[[], None]] = {
            "loopback": lambda: plan.loopback(raised),
            "delayed": lambda: plan.delayed(delays),
            "validating": plan.validating,
            "outage": plan.outage,
            "memory": plan.memory,
        }
        if has_pug:
            steps.update(
                variants=plan.variants,
                reads=plan.reads,
                profile=plan.profile,
                storage=plan.storage,
                asyncio=plan.asyncio,
            )
        try:
            for name, step in steps.items():
                if name in sections:
                    step()
        finally:
            bench.close()
        if args.netem:
            plan.netem(_floats(args.netem_delays), log)
    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report["machine"]["load_avg_at_end"] = list(os.getloadavg())
    report["targets"] = [dataclasses.asdict(t) for t in evaluate(report)]
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
