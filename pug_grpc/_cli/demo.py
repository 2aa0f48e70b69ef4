"""``pug-grpc demo``: a realistic workload through the real client, then a short report.

Unless an endpoint is configured, a local Pug server runs in this process; either way every
event travels through :class:`pug_grpc.Pug` over real gRPC and is read back through the read API.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from google.protobuf.message import Message

from pug_grpc._cli.console import Console
from pug_grpc._cli.progress import Progress
from pug_grpc._ingest.settings import BatchSettings
from pug_grpc._pug import Pug
from pug_grpc.gen.shared.insights.v1 import insights_pb2

__all__ = ["DemoPlan", "print_chart", "run_demo", "run_demo_command"]

_PLANS = ("free", "starter", "pro", "enterprise")
_COUNTRIES = ("NO", "DE", "FR", "US", "BR", "JP", "IN", "GB")
_FEATURES = ("exports", "alerts", "sso", "api", "themes", "sharing")
_DASHBOARDS = ("overview", "revenue", "retention", "funnels", "errors")
_QUERIES = ("pricing", "invoice", "api key", "export csv", "dark mode")
_PRODUCTS = (("sku-basic", 9.0), ("sku-team", 29.0), ("sku-scale", 99.0), ("sku-addon", 4.5))
_BAR = 40


@dataclass(frozen=True, kw_only=True)
class DemoPlan:
    """How much work the demo does; the defaults are what the README's command runs."""

    events: int = 30_000
    users: int = 300
    days: int = 7
    seed: int = 2024


def _properties(kind: str, rng: random.Random) -> dict[str, Any]:
    product, price = rng.choice(_PRODUCTS)
    if kind == "dashboard_opened":
        return {"dashboard": rng.choice(_DASHBOARDS), "load_ms": rng.randint(80, 2400)}
    if kind == "search":
        return {"query": rng.choice(_QUERIES), "results": rng.randint(0, 40)}
    if kind == "feature_used":
        return {"feature_id": rng.choice(_FEATURES)}
    if kind == "product_viewed":
        return {"product_id": product, "price": price, "currency": "USD"}
    if kind == "add_to_cart":
        return {"product_id": product, "price": price, "currency": "USD", "quantity": 1}
    if kind in ("checkout_started", "purchase"):
        quantity = rng.randint(1, 3)
        props: dict[str, Any] = {"amount": price * quantity, "currency": "USD"}
        if kind == "purchase":
            props.update(
                product_id=product, quantity=quantity, order_id=f"ord-{rng.randrange(10**8)}"
            )
        return props
    return {"format": rng.choice(("csv", "pdf", "xlsx")), "rows": rng.randint(1, 50_000)}


_KINDS = (
    ("dashboard_opened", 25),  # custom
    ("feature_used", 20),
    ("search", 15),
    ("product_viewed", 14),
    ("report_exported", 9),  # custom
    ("add_to_cart", 8),
    ("checkout_started", 5),
    ("purchase", 4),
)


@dataclass
class _User:
    external_id: str
    anonymous_id: str | None
    traits: dict[str, Any]
    events: int


@dataclass
class _Tally:
    tracked: int = 0
    sessions: int = 0
    anonymous: int = 0
    identified: int = 0
    errors: int = 0
    error_reasons: Counter[str] | None = None


def _users(plan: DemoPlan, rng: random.Random) -> list[_User]:
    weights = [rng.lognormvariate(0.0, 0.9) for _ in range(plan.users)]
    total = sum(weights)
    counts = [max(1, int(plan.events * w / total)) for w in weights]
    heaviest = counts.index(max(counts))
    counts[heaviest] = max(1, counts[heaviest] + plan.events - sum(counts))  # absorbs rounding
    users = []
    for index, count in enumerate(counts):
        anonymous = f"anon-{uuid.UUID(int=rng.getrandbits(128))}" if rng.random() < 0.3 else None
        traits = {
            "plan": rng.choice(_PLANS),
            "country": rng.choice(_COUNTRIES),
            "company": f"Company {index % 97:02d}",
            "seats": rng.randint(1, 250),
        }
        users.append(_User(f"user-{index:04d}", anonymous, traits, count))
    return users


def _timeline(count: int, days: int, now: dt.datetime, rng: random.Random) -> list[dt.datetime]:
    """Event times over the last ``days`` days, busier in working hours and growing."""
    span = days * 86_400
    times = []
    for _ in range(count):
        offset = span * rng.random() ** 0.7  # later days are busier: the product is growing
        moment = now - dt.timedelta(seconds=span - offset)
        if not 8 <= moment.hour < 20 and rng.random() < 0.6:
            daytime = moment.replace(hour=rng.randint(8, 19))
            moment = daytime if daytime <= now else moment
        times.append(moment)
    return sorted(times)


def _wait_for_room(pug: Pug, limit: int) -> None:
    """Backpressure: let the worker drain before the queue gets close to its bound."""
    while pug.stats().queue_depth > limit:
        time.sleep(0.002)


def _drive(pug: Pug, plan: DemoPlan, tally: _Tally, progress: Progress, room: int) -> None:
    rng = random.Random(plan.seed)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    kinds = [k for k, _ in _KINDS]
    weights = [w for _, w in _KINDS]
    for user in _users(plan, rng):
        moments = _timeline(user.events, plan.days, now, rng)
        identify_at = len(moments) // 3 if user.anonymous_id else 0
        session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        tally.sessions += 1
        previous: dt.datetime | None = None
        if user.anonymous_id is None:
            pug.identify(user.external_id, user.traits)
            tally.identified += 1
        for position, moment in enumerate(moments):
            if previous is not None and (moment - previous).total_seconds() > 1_800:
                session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                tally.sessions += 1
            previous = moment
            anonymous = user.anonymous_id is not None and position < identify_at
            distinct_id = str(user.anonymous_id) if anonymous else user.external_id
            if user.anonymous_id is not None and position == identify_at:
                pug.alias(user.anonymous_id, user.external_id)
                pug.identify(user.external_id, user.traits)
                tally.anonymous += 1
                tally.identified += 1
            kind = rng.choices(kinds, weights)[0]
            pug.track(
                distinct_id,
                kind,
                _properties(kind, rng),
                timestamp=moment,
                session_id=session,
            )
            tally.tracked += 1
            progress.advance()
            if tally.tracked % 500 == 0:
                _wait_for_room(pug, room)


def print_chart(
    points: Sequence[tuple[dt.datetime, float]], out: TextIO, label: Callable[[dt.datetime], str]
) -> None:
    """Horizontal bars, one line per point, scaled to the largest value."""
    peak = max((v for _, v in points), default=0.0) or 1.0
    for moment, value in points:
        bar = "█" * max(1 if value else 0, round(_BAR * value / peak))
        out.write(f"    {label(moment)}  {bar:<{_BAR}}  {value:>8,.0f}\n")


def _trend(pug: Pug, plan: DemoPlan, out: TextIO) -> None:
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    start = (end - dt.timedelta(days=plan.days - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    reply = pug.insights.query(
        insights_pb2.InsightQuerySpec(insight_type=insights_pb2.INSIGHT_TYPE_TRENDS),
        time_range=(start, end),
        granularity=insights_pb2.GRANULARITY_DAY,
    )
    totals: dict[dt.datetime, float] = {}
    by_kind: Counter[str] = Counter()
    for series in reply.trends.series:
        for point in series.points:
            moment = point.time.ToDatetime(tzinfo=dt.UTC)
            totals[moment] = totals.get(moment, 0.0) + point.value
            by_kind[series.event_kind] += int(point.value)
    out.write(
        f"\n  Trend: events per day (InsightsService.Query, {len(reply.trends.series)} kinds)\n"
    )
    print_chart(sorted(totals.items()), out, lambda m: m.strftime("%a %m-%d"))
    top = ", ".join(f"{kind} {count:,}" for kind, count in by_kind.most_common(4))
    out.write(f"    top kinds: {top}\n")


def _read_back(pug: Pug, external_id: str, out: TextIO) -> None:
    profile = pug.profiles.get_by_external_id(external_id).profile
    traits = dict(profile.properties.items())
    shown = " ".join(f"{k}={traits[k]}" for k in ("plan", "country", "company") if k in traits)
    activity = profile.activity
    out.write(
        f"\n  Profile {external_id} (ProfilesService.GetByExternalId): {shown}\n"
        f"    {activity.total_events:,} events in {activity.sessions:,} sessions, first seen "
        f"{activity.first_seen.ToDatetime():%Y-%m-%d %H:%M}, last seen "
        f"{activity.last_seen.ToDatetime():%Y-%m-%d %H:%M} UTC\n"
    )
    page = pug.activity.feed_page(external_id, page_size=5)
    out.write("  Latest activity (ActivityService.GetActivityFeed):\n")
    for event in page.events:
        props = dict(event.custom_properties.items())
        detail = ", ".join(f"{k}={_short(v)}" for k, v in list(props.items())[:3])
        out.write(
            f"    {event.occur_time.ToDatetime():%m-%d %H:%M:%S}  {event.kind:<17} {detail}\n"
        )


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def run_demo(
    *,
    plan: DemoPlan,
    endpoint: str | None,
    api_key: str | None,
    project_id: str | None,
    out: TextIO,
    console: Console,
    show_progress: bool | None,
    make_server: Callable[[], Any] | None,
) -> int:
    """Run the workload and print the report; returns the exit status."""
    server = None
    where = endpoint or ""
    if endpoint is None:
        if make_server is None:
            raise ValueError("no endpoint configured and no local server available")
        server = make_server()
        endpoint, api_key, where = (
            server.endpoint,
            server.private_key,
            f"{server.endpoint} (in-process)",
        )
    tally = _Tally(error_reasons=Counter())
    lock = threading.Lock()

    def on_error(error: BaseException, items: Sequence[Message]) -> None:
        with lock:
            tally.errors += max(1, len(items))
            assert tally.error_reasons is not None
            tally.error_reasons[str(getattr(error, "reason", "") or type(error).__name__)] += 1

    out.write(f"Pug demo against {where}\n")
    out.write(f"  {plan.events:,} events for {plan.users:,} users over {plan.days} days\n")
    out.flush()
    batch = BatchSettings(max_size=500, max_wait=0.2)
    try:
        with Pug(
            api_key=api_key,
            endpoint=endpoint,
            project_id=project_id,
            batch=batch,
            on_error=on_error,
        ) as pug:
            started = time.perf_counter()
            with Progress(plan.events, "tracking", console=console, enabled=show_progress) as bar:
                _drive(pug, plan, tally, bar, room=batch.max_queue_size // 2)
            result = pug.flush(timeout=120)
            elapsed = time.perf_counter() - started
            stats = pug.stats()
            out.write(
                f"\n  Sent {stats.sent:,} events, {stats.accepted:,} accepted, {stats.dropped:,}"
                f" dropped, {stats.rejected:,} rejected, {stats.dead_lettered:,} undelivered\n"
                f"  {tally.identified:,} identify calls, {tally.anonymous:,} anonymous visitors"
                f" aliased to their accounts, {tally.sessions:,} sessions\n"
                f"  Throughput: {tally.tracked / elapsed:,.0f} events/s end to end"
                f" ({elapsed:.2f} s from first track to last acknowledgement,"
                f" {stats.batches:,} batches)\n"
            )
            busiest = max(_users(plan, random.Random(plan.seed)), key=lambda u: u.events)
            _read_back(pug, busiest.external_id, out)
            _trend(pug, plan, out)
            ok = (
                result.ok
                and stats.accepted == tally.tracked
                and tally.errors == 0
                and stats.identified >= tally.identified
            )
            if not ok:
                reasons = dict(tally.error_reasons or {})
                out.write(f"\n  Not everything was delivered: {reasons or 'see the log'}\n")
            out.write("\nDone.\n" if ok else "\nDone, with problems.\n")
            return 0 if ok else 1
    finally:
        if server is not None:
            server.close()


def run_demo_command(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    """``pug-grpc demo``: against the configured endpoint, else a server in this process."""
    from pug_grpc.testing import LocalServer, ServerConfig

    endpoint = args.endpoint or os.environ.get("PUG_ENDPOINT") or None

    def make_server() -> LocalServer:
        return LocalServer(ServerConfig(record=False)).start()

    return run_demo(
        plan=DemoPlan(events=args.events, users=args.users, days=args.days),
        endpoint=endpoint,
        api_key=args.api_key,
        project_id=args.project_id,
        out=out,
        console=console,
        show_progress=False if args.no_progress else None,
        make_server=make_server if endpoint is None else None,
    )
