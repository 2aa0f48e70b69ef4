"""The thin commands over the client: track, identify, alias, profiles, activity, insights.

Each sends through (or reads with) a fresh :class:`pug_grpc.Pug` built from the shared options,
prints its result on stdout and returns the exit status; failures raise :class:`CliError`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf import json_format
from google.protobuf.message import Message

from pug_grpc._cli.console import Console

__all__ = [
    "CliError",
    "activity_feed",
    "alias",
    "client",
    "identify",
    "insights_trends",
    "one_line",
    "profiles_get",
    "profiles_list",
    "track",
]


class CliError(Exception):
    """A failure the user can fix; printed as one line."""


def one_line(error: BaseException) -> str:
    """The error's message on one line."""
    return " ".join(str(error).split()) or type(error).__name__


CONNECT_WITHIN_S = 3.0
"""How long a one-shot command keeps retrying a request before it says why it failed."""


def client(args: argparse.Namespace, **options: Any) -> Any:
    """A :class:`pug_grpc.Pug` configured by the shared options."""
    from pug_grpc._pug import Pug

    return Pug(
        api_key=args.api_key,
        endpoint=args.endpoint,
        project_id=args.project_id,
        timeout=args.timeout,
        allow_insecure=args.allow_insecure,
        transport=getattr(args, "transport", None) or "grpc",
        **options,
    )


def check_reachable(args: argparse.Namespace, pug: Any) -> None:
    """Fail within seconds, with the cause, when the endpoint cannot be reached at all.

    Sends one empty ``BatchCreate`` (nothing to store: any answer at all, a refusal included,
    means the server is there). Used before long commands, which otherwise retry for minutes.
    """
    import grpc

    from pug_grpc._diagnosis import diagnose
    from pug_grpc._errors import error_from_rpc

    if getattr(args, "transport", None) == "connect":
        return  # its failures come back at once, with their cause
    channel = pug._connections.channel()  # the CLI is part of the package
    probe = channel.unary_unary(
        "/sdk.events.v1.EventsService/BatchCreate",
        request_serializer=None,
        response_deserializer=None,
    )
    try:
        probe(b"", timeout=CONNECT_WITHIN_S)
    except grpc.RpcError as error:
        if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return  # the server answered
        found = diagnose(error, endpoint=args.endpoint)
        if found is not None:
            raise CliError(found.message) from None
        raise CliError(f"cannot reach {args.endpoint}: {one_line(error_from_rpc(error))}") from None


def _deliver(
    args: argparse.Namespace, console: Console, send: Callable[[Any], None], what: str, out: TextIO
) -> int:
    """Send through a fresh client, wait for delivery and say how it went."""
    reasons: Counter[str] = Counter()
    lock = threading.Lock()

    def on_error(error: BaseException, items: Sequence[Message]) -> None:
        with lock:
            reasons[one_line(error)] += max(1, len(items))

    from pug_grpc._retry import RetrySettings

    warned = console.warnings
    # A one-shot command fails within seconds with the cause (a refused connection, say),
    # instead of retrying for the engine's two minutes behind a bare timeout.
    retry = RetrySettings(initial_backoff=0.2, max_backoff=1.0, max_elapsed=CONNECT_WITHIN_S)
    with client(args, on_error=on_error, retry=retry) as pug:
        send(pug)
        result = pug.flush(timeout=args.timeout)
    if result.ok and not reasons:
        changed = console.warnings - warned
        # A dropped property or trait is a warning: the event went out, but not as given.
        note = f", with {changed} warning{'s' if changed > 1 else ''}" if changed else ""
        out.write(f"{what}: delivered{note}\n")
        return 0
    if not result.completed:
        raise CliError(f"{what}: not delivered within {args.timeout:g} s")
    detail = "; ".join(reasons) or _flush_problem(result)
    raise CliError(f"{what}: not delivered: {detail}")


def _flush_problem(result: Any) -> str:
    if result.dropped_by_reason:
        return "dropped by the server (" + ", ".join(result.dropped_by_reason) + ")"
    return "see the log (--debug)"


def _merged(pairs: list[tuple[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    return {**base, **dict(pairs)}


def _print_message(message: Message, out: TextIO) -> None:
    out.write(json_format.MessageToJson(message, indent=None, sort_keys=True) + "\n")


def track(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    """``pug-grpc track DISTINCT_ID KIND``."""
    properties = _merged(args.prop, args.properties)
    timestamp: Any = None
    if args.timestamp:
        from pug_grpc._cli.importer import parse_timestamp

        try:
            timestamp = parse_timestamp(args.timestamp)
        except ValueError as exc:
            raise CliError(f"--timestamp: {exc}") from None

    def send(pug: Any) -> None:
        pug.track(
            args.distinct_id, args.kind, properties, timestamp=timestamp, session_id=args.session_id
        )

    return _deliver(args, console, send, f"{args.kind} for {args.distinct_id}", out)


def identify(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    """``pug-grpc identify EXTERNAL_ID``."""
    traits = _merged(args.trait, args.traits)

    def send(pug: Any) -> None:
        pug.identify(
            args.external_id, traits, anonymous_id=args.anonymous_id, device_id=args.device_id
        )

    return _deliver(args, console, send, f"identify {args.external_id}", out)


def alias(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    """``pug-grpc alias ANONYMOUS_ID EXTERNAL_ID``."""

    def send(pug: Any) -> None:
        pug.alias(args.anonymous_id, args.external_id)

    return _deliver(args, console, send, f"alias {args.anonymous_id} -> {args.external_id}", out)


def profiles_get(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    """``pug-grpc profiles get ID``: one profile as JSON."""
    with client(args) as pug:
        if args.id:
            reply = pug.profiles.get(args.external_id, timeout=args.timeout)
        else:
            reply = pug.profiles.get_by_external_id(args.external_id, timeout=args.timeout)
        _print_message(reply.profile, out)
    return 0


def profiles_list(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    """``pug-grpc profiles list``: profiles as JSON lines."""
    filters = [
        {"property": key, "operator": "equals", "value": str(value)} for key, value in args.where
    ]
    with client(args) as pug:
        for count, profile in enumerate(pug.profiles.list(filters=filters or None), start=1):
            _print_message(profile, out)
            if count >= args.limit:
                break
    return 0


def activity_feed(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    """``pug-grpc activity feed DISTINCT_ID``: events, newest first, as JSON lines."""
    events = [{"kind": args.kind}] if args.kind else None
    with client(args) as pug:
        feed = pug.activity.feed(
            args.distinct_id, events=events, page_size=min(args.limit, 1000), timeout=args.timeout
        )
        for count, event in enumerate(feed, start=1):
            _print_message(event, out)
            if count >= args.limit:
                break
    return 0


def _zone(name: str) -> dt.tzinfo:
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(
            f"--timezone: unknown time zone {name!r} (an IANA name such as Europe/Oslo)"
        ) from None


def insights_trends(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    """``pug-grpc insights trends``: counts per bucket as a text chart (or ``--json``)."""
    from pug_grpc._cli.demo import print_chart
    from pug_grpc.gen.common.v1 import filters_pb2
    from pug_grpc.gen.shared.insights.v1 import insights_pb2

    zone = _zone(args.timezone)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    start = end - dt.timedelta(days=args.days)
    spec = insights_pb2.InsightQuerySpec(
        insight_type=insights_pb2.INSIGHT_TYPE_TRENDS,
        events=[
            insights_pb2.EventQuery(event=filters_pb2.EventFilter(kind=kind)) for kind in args.kind
        ],
    )
    granularity = insights_pb2.Granularity.Value("GRANULARITY_" + args.granularity.upper())
    with client(args) as pug:
        reply = pug.insights.query(
            spec,
            time_range=(start, end),
            granularity=granularity,
            timezone=args.timezone or None,
            timeout=args.timeout,
        )
    if args.json:
        _print_message(reply, out)
        return 0
    label = "%m-%d %H:%M %Z" if args.granularity == "hour" else "%Y-%m-%d"
    for series in reply.trends.series:
        out.write(f"{series.event_kind or 'all events'}\n")
        # Buckets start at midnight (or the hour) in the requested zone: label them there.
        points = [
            (p.time.ToDatetime(tzinfo=dt.UTC).astimezone(zone), p.value) for p in series.points
        ]
        print_chart(points, out, lambda moment: moment.strftime(label))
    if not reply.trends.series:
        out.write("no events in the time range\n")
    return 0
