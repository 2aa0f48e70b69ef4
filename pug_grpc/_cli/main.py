"""The ``pug-grpc`` command line: a local server, the demo, and thin commands over the client.

Every command takes ``--endpoint`` / ``--api-key`` / ``--project-id`` (falling back to
``PUG_ENDPOINT`` / ``PUG_API_KEY`` / ``PUG_PROJECT_ID``), prints failures as one line on stderr
(the traceback only with ``--debug``) and exits non-zero when something was not delivered.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from google.protobuf import json_format
from google.protobuf.message import Message

__all__ = ["main"]

PROG = "pug-grpc"
DEFAULT_PORT = 50051
DEFAULT_PUBLIC_KEY = "pub_local_development_key"
DEFAULT_PRIVATE_KEY = "prv_local_development_key"
_EXIT_FAILED = 1
_EXIT_INTERRUPTED = 130

_DESCRIPTION = """\
Send events to Pug and read them back over native gRPC, run a local Pug server, or see it
all work with one command:

  pug-grpc demo                   # local server in-process, 30,000 events, report
  pug-grpc serve                  # local server on 127.0.0.1:50051 (SQLite file)
  pug-grpc track user-1 signup --prop plan=pro

Connection settings come from --endpoint/--api-key/--project-id or the environment
variables PUG_ENDPOINT, PUG_API_KEY and PUG_PROJECT_ID. An endpoint is https://host[:port]
(TLS) or http://127.0.0.1:port (plaintext, loopback only).
"""


class CliError(Exception):
    """A failure the user can fix; printed as one line."""


# -- argument parsing ---------------------------------------------------------------------


def _connection_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument(
        "--endpoint",
        metavar="URL",
        help="Pug endpoint, e.g. https://api.pug.sh or http://127.0.0.1:50051 (env PUG_ENDPOINT)",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key: pub_… for ingestion only, prv_… for ingestion and reads (env PUG_API_KEY)",
    )
    group.add_argument(
        "--project-id", metavar="ID", help="project id sent as x-project-id (env PUG_PROJECT_ID)"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="per-call deadline, and the longest wait for delivery (default 10)",
    )
    group.add_argument(
        "--debug", action="store_true", help="log at debug level and show tracebacks on errors"
    )
    return common


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _connection_options()
    parser = argparse.ArgumentParser(
        prog=PROG, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    from pug_grpc._version import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run a local Pug server for development",
        description="Run a local Pug server: the real wire contract on your machine, data in a "
        "SQLite file that survives restarts. Stop it with Ctrl-C.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks one)"
    )
    serve.add_argument(
        "--db",
        default="pug-local.db",
        metavar="FILE",
        help="SQLite database file (default ./pug-local.db); ':memory:' keeps nothing",
    )
    serve.add_argument("--public-key", default=DEFAULT_PUBLIC_KEY, help="accepted pub_ key")
    serve.add_argument("--private-key", default=DEFAULT_PRIVATE_KEY, help="accepted prv_ key")
    serve.add_argument("--user-email", default="dev@pug.local", help="the one user's email")
    serve.add_argument(
        "--user-password", default="pug-local-password", help="the one user's password"
    )
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="track a realistic workload and read it back (local server unless --endpoint)",
        description="Start a local Pug server in this process (unless an endpoint is configured), "
        "track tens of thousands of events for hundreds of users through the real client, "
        "identify and alias users, then read back a profile, an activity feed and a trend.",
    )
    demo.add_argument(
        "--events", type=_positive_int, default=30_000, help="events to track (30,000)"
    )
    demo.add_argument("--users", type=_positive_int, default=300, help="users (300)")
    demo.add_argument("--days", type=_positive_int, default=7, help="days of history (7)")
    demo.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    demo.set_defaults(handler=_demo)

    track = commands.add_parser(
        "track", parents=[common], help="send one event and wait for delivery"
    )
    track.add_argument("distinct_id", help="who did it (your user id, or an anon-… id)")
    track.add_argument("kind", help="what happened, e.g. signup or purchase")
    track.add_argument("--properties", type=_json_object, default={}, help="properties as JSON")
    track.add_argument(
        "--prop",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one property (repeatable); VALUE is parsed as JSON when it can be (42, true)",
    )
    track.add_argument("--timestamp", help="when (RFC 3339 or epoch seconds; default now)")
    track.add_argument("--session-id", help="session UUID (default: one per command)")
    track.set_defaults(handler=_track)

    identify = commands.add_parser(
        "identify", parents=[common], help="set traits on a profile and wait for delivery"
    )
    identify.add_argument("external_id", help="your id for the user")
    identify.add_argument("--traits", type=_json_object, default={}, help="traits as JSON")
    identify.add_argument(
        "--trait",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one trait (repeatable)",
    )
    identify.add_argument("--anonymous-id", help="an anon-… id whose profile merges into this one")
    identify.add_argument("--device-id", help="device id (at most 36 characters)")
    identify.set_defaults(handler=_identify)

    alias = commands.add_parser(
        "alias", parents=[common], help="merge an anonymous visitor into a known user"
    )
    alias.add_argument("anonymous_id", help="the anon-… id used before sign-in")
    alias.add_argument("external_id", help="the user's id")
    alias.set_defaults(handler=_alias)

    profiles = commands.add_parser("profiles", help="read profiles (needs a prv_ key)")
    profile_commands = profiles.add_subparsers(dest="action", metavar="ACTION", required=True)
    get = profile_commands.add_parser(
        "get", parents=[common], help="one profile as JSON, by external id (or --id)"
    )
    get.add_argument("external_id", help="the user's external id (or Pug's id with --id)")
    get.add_argument("--id", action="store_true", help="the argument is Pug's profile id")
    get.set_defaults(handler=_profiles_get)
    listing = profile_commands.add_parser("list", parents=[common], help="profiles as JSON lines")
    listing.add_argument("--limit", type=_positive_int, default=100, help="at most this many (100)")
    listing.add_argument(
        "--where",
        type=_key_value,
        action="append",
        default=[],
        metavar="TRAIT=VALUE",
        help="only profiles whose trait equals VALUE (repeatable, all must match)",
    )
    listing.set_defaults(handler=_profiles_list)

    activity = commands.add_parser("activity", help="read activity (needs a prv_ key)")
    activity_commands = activity.add_subparsers(dest="action", metavar="ACTION", required=True)
    feed = activity_commands.add_parser(
        "feed", parents=[common], help="a user's events, newest first, as JSON lines"
    )
    feed.add_argument("distinct_id", help="the user")
    feed.add_argument("--limit", type=_positive_int, default=20, help="at most this many (20)")
    feed.add_argument("--kind", help="only events of this kind")
    feed.set_defaults(handler=_activity_feed)

    insights = commands.add_parser("insights", help="run insights (needs a prv_ key)")
    insight_commands = insights.add_subparsers(dest="action", metavar="ACTION", required=True)
    trends = insight_commands.add_parser(
        "trends", parents=[common], help="event counts per time bucket, as a text chart"
    )
    trends.add_argument(
        "--kind", action="append", default=[], help="event kind (repeatable; default all)"
    )
    trends.add_argument("--days", type=_positive_int, default=7, help="how far back (7 days)")
    trends.add_argument(
        "--granularity",
        choices=("hour", "day", "week", "month"),
        default="day",
        help="bucket size (day)",
    )
    trends.add_argument("--timezone", default="", help="IANA time zone for the buckets (UTC)")
    trends.add_argument("--json", action="store_true", help="print the raw response as JSON")
    trends.set_defaults(handler=_insights_trends)

    load = commands.add_parser(
        "import",
        parents=[common],
        help="bulk-load historical events from JSON Lines or CSV",
        description="Import events from a JSON Lines file (one object per line with distinct_id, "
        "kind, timestamp and optional properties/session_id/event_id) or a CSV file (header "
        "with distinct_id, kind, timestamp; other columns become string properties, and a "
        "'properties' column may hold JSON). Each rejected row is reported with its line "
        "number; the exit status is non-zero if any row was rejected or not delivered.",
    )
    load.add_argument("file", type=Path, help="the .jsonl/.ndjson or .csv file ('-' for stdin)")
    load.add_argument("--format", choices=("jsonl", "csv"), help="override detection by extension")
    load.add_argument(
        "--chunk", type=_positive_int, default=5_000, help="rows between delivery checks (5,000)"
    )
    load.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    load.set_defaults(handler=_import)
    return parser


# -- shared helpers -------------------------------------------------------------------------


def _client(args: argparse.Namespace, **options: Any) -> Any:
    from pug_grpc._pug import Pug

    return Pug(
        api_key=args.api_key,
        endpoint=args.endpoint,
        project_id=args.project_id,
        timeout=args.timeout,
        **options,
    )


def _collector() -> tuple[Counter[str], Callable[[BaseException, Sequence[Message]], None]]:
    reasons: Counter[str] = Counter()
    lock = threading.Lock()

    def on_error(error: BaseException, items: Sequence[Message]) -> None:
        with lock:
            reasons[_one_line(error)] += max(1, len(items))

    return reasons, on_error


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text


def _deliver(args: argparse.Namespace, send: Callable[[Any], None], what: str, out: TextIO) -> int:
    """Send through a fresh client, wait for delivery and say how it went."""
    reasons, on_error = _collector()
    with _client(args, on_error=on_error) as pug:
        send(pug)
        result = pug.flush(timeout=args.timeout)
        if result.ok and not reasons:
            out.write(f"{what}: delivered\n")
            return 0
        if not result.completed:
            raise CliError(f"{what}: not delivered within {args.timeout:g} s")
        detail = "; ".join(f"{r}" for r in reasons) or _flush_problem(result)
        raise CliError(f"{what}: not delivered: {detail}")


def _flush_problem(result: Any) -> str:
    if result.dropped_by_reason:
        return "dropped by the server (" + ", ".join(result.dropped_by_reason) + ")"
    return "see the log (--debug)"


def _merged(pairs: list[tuple[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    return {**base, **dict(pairs)}


def _print_message(message: Message, out: TextIO) -> None:
    out.write(json_format.MessageToJson(message, indent=None, sort_keys=True) + "\n")


# -- commands -------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from pug_grpc._credentials import mask
    from pug_grpc.testing import LocalServer, ServerConfig

    config = ServerConfig(
        host=args.host,
        port=args.port,
        database=args.db,
        project_id=args.project_id or "proj_local",
        public_key=args.public_key,
        private_key=args.private_key,
        user_email=args.user_email,
        user_password=args.user_password,
        record=False,
    )
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def shown(key: str, default: str) -> str:
        return key if key == default else mask(key)

    server = LocalServer(config)
    try:
        server.start()
        out.write(
            f"Pug local server listening on {server.endpoint}\n"
            f"  database     {args.db}\n"
            f"  project id   {server.project_id}\n"
            f"  public key   {shown(server.public_key, DEFAULT_PUBLIC_KEY)}  (ingestion)\n"
            f"  private key  {shown(server.private_key, DEFAULT_PRIVATE_KEY)}"
            "  (ingestion and reads)\n"
            f"  user         {args.user_email} (AuthService.SignInWithEmail)\n"
            f"Try:  PUG_ENDPOINT={server.endpoint} PUG_API_KEY=<private key> "
            f"{PROG} track user-1 signup\n"
            "Press Ctrl-C to stop.\n"
        )
        out.flush()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
    out.write("Stopped.\n")
    return 0


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from pug_grpc._cli.demo import DemoPlan, run_demo
    from pug_grpc._names import ENV_ENDPOINT
    from pug_grpc.testing import LocalServer, ServerConfig

    endpoint = args.endpoint or os.environ.get(ENV_ENDPOINT) or None

    def make_server() -> LocalServer:
        return LocalServer(ServerConfig(record=False)).start()

    return run_demo(
        plan=DemoPlan(events=args.events, users=args.users, days=args.days),
        endpoint=endpoint,
        api_key=args.api_key,
        project_id=args.project_id,
        out=out,
        progress_stream=sys.stderr,
        show_progress=False if args.no_progress else None,
        make_server=make_server if endpoint is None else None,
    )


def _track(args: argparse.Namespace, out: TextIO) -> int:
    properties = _merged(args.prop, args.properties)
    timestamp: Any = None
    if args.timestamp:
        from pug_grpc._cli.importer import parse_timestamp

        try:
            timestamp = parse_timestamp(args.timestamp)
        except ValueError as exc:
            raise CliError(str(exc)) from None

    def send(pug: Any) -> None:
        pug.track(
            args.distinct_id,
            args.kind,
            properties,
            timestamp=timestamp,
            session_id=args.session_id,
        )

    return _deliver(args, send, f"{args.kind} for {args.distinct_id}", out)


def _identify(args: argparse.Namespace, out: TextIO) -> int:
    traits = _merged(args.trait, args.traits)

    def send(pug: Any) -> None:
        pug.identify(
            args.external_id, traits, anonymous_id=args.anonymous_id, device_id=args.device_id
        )

    return _deliver(args, send, f"identify {args.external_id}", out)


def _alias(args: argparse.Namespace, out: TextIO) -> int:
    def send(pug: Any) -> None:
        pug.alias(args.anonymous_id, args.external_id)

    return _deliver(args, send, f"alias {args.anonymous_id} -> {args.external_id}", out)


def _profiles_get(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as pug:
        if args.id:
            reply = pug.profiles.get(args.external_id, timeout=args.timeout)
        else:
            reply = pug.profiles.get_by_external_id(args.external_id, timeout=args.timeout)
        _print_message(reply.profile, out)
    return 0


def _profiles_list(args: argparse.Namespace, out: TextIO) -> int:
    filters = [
        {"property": key, "operator": "equals", "value": str(value)} for key, value in args.where
    ]
    with _client(args) as pug:
        for count, profile in enumerate(pug.profiles.list(filters=filters or None), start=1):
            _print_message(profile, out)
            if count >= args.limit:
                break
    return 0


def _activity_feed(args: argparse.Namespace, out: TextIO) -> int:
    events = [{"kind": args.kind}] if args.kind else None
    with _client(args) as pug:
        feed = pug.activity.feed(
            args.distinct_id, events=events, page_size=min(args.limit, 1000), timeout=args.timeout
        )
        for count, event in enumerate(feed, start=1):
            _print_message(event, out)
            if count >= args.limit:
                break
    return 0


_GRANULARITY_STEP = {
    "hour": dt.timedelta(hours=1),
    "day": dt.timedelta(days=1),
    "week": dt.timedelta(weeks=1),
    "month": dt.timedelta(days=31),
}


def _insights_trends(args: argparse.Namespace, out: TextIO) -> int:
    from pug_grpc.gen.common.v1 import filters_pb2
    from pug_grpc.gen.shared.insights.v1 import insights_pb2

    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    start = end - dt.timedelta(days=args.days)
    spec = insights_pb2.InsightQuerySpec(
        insight_type=insights_pb2.INSIGHT_TYPE_TRENDS,
        events=[
            insights_pb2.EventQuery(event=filters_pb2.EventFilter(kind=kind)) for kind in args.kind
        ],
    )
    granularity = insights_pb2.Granularity.Value("GRANULARITY_" + args.granularity.upper())
    with _client(args) as pug:
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
    from pug_grpc._cli.demo import print_chart

    label = "%m-%d %H:%M" if args.granularity == "hour" else "%Y-%m-%d"
    for series in reply.trends.series:
        out.write(f"{series.event_kind or 'all events'}\n")
        points = [(p.time.ToDatetime(tzinfo=dt.UTC), p.value) for p in series.points]
        print_chart(points, out, lambda moment: moment.strftime(label))
    if not reply.trends.series:
        out.write("no events in the time range\n")
    return 0


def _import(args: argparse.Namespace, out: TextIO) -> int:
    from pug_grpc._cli.importer import ImportRow, detect_format, read_rows
    from pug_grpc._cli.progress import Progress

    file_format = args.format or ("jsonl" if str(args.file) == "-" else None)
    file_format = detect_format(args.file, file_format)
    reasons: dict[str, str] = {}
    lines: dict[str, int] = {}
    lock = threading.Lock()

    def on_error(error: BaseException, items: Sequence[Message]) -> None:
        with lock:
            for item in items:
                event_id = getattr(item, "event_id", "")
                if event_id:
                    reasons[event_id] = _one_line(error)

    rejected = queued = delivered = dropped = 0
    undelivered: set[str] = set()
    started = time.perf_counter()
    stream: TextIO
    stream = sys.stdin if str(args.file) == "-" else args.file.open(encoding="utf-8", newline="")
    try:
        total = None if stream is sys.stdin else _count_lines(args.file)
        with (
            _client(args, on_error=on_error) as pug,
            Progress(
                total, "importing", stream=sys.stderr, enabled=False if args.no_progress else None
            ) as bar,
        ):

            def settle() -> None:
                nonlocal delivered, dropped
                result = pug.flush(timeout=max(args.timeout, 60.0))
                delivered += len(result.delivered)
                dropped += sum(result.dropped_by_reason.values())
                undelivered.update(result.dead_lettered)
                if not result.completed:
                    raise CliError("the server did not acknowledge the import in time")

            for row in read_rows(stream, file_format):
                bar.update(row.line)
                if not isinstance(row, ImportRow):
                    rejected += 1
                    sys.stderr.write(f"line {row.line}: rejected: {row.reason}\n")
                    continue
                lines[row.event_id] = row.line
                pug.track(
                    row.distinct_id,
                    row.kind,
                    row.properties,
                    timestamp=row.timestamp,
                    session_id=row.session_id,
                    event_id=row.event_id,
                )
                queued += 1
                if queued % args.chunk == 0:
                    settle()
            settle()
    finally:
        if stream is not sys.stdin:
            stream.close()
    with lock:
        failed = {event_id: reasons.get(event_id, "not delivered") for event_id in undelivered}
        failed.update({e: r for e, r in reasons.items() if e in lines})
    for event_id, reason in sorted(failed.items(), key=lambda item: lines.get(item[0], 0)):
        sys.stderr.write(f"line {lines.get(event_id, '?')}: not delivered: {reason}\n")
    elapsed = time.perf_counter() - started
    rate = queued / elapsed if elapsed > 0 else 0.0
    out.write(
        f"Imported {args.file}: {rejected + queued:,} rows, {delivered - dropped:,} events"
        f" stored, {rejected:,} rejected, {len(failed):,} undelivered, {dropped:,} dropped by"
        f" the server, in {elapsed:.2f} s ({rate:,.0f} events/s)\n"
    )
    return _EXIT_FAILED if rejected or failed or dropped else 0


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


# -- entry point ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns (and as a console script, exits with) the status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(
        # Failures are reported as one line by the command; the log adds detail with --debug.
        level=logging.DEBUG if debug else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace, TextIO], int] = args.handler
    try:
        return handler(args, sys.stdout)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return _EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            raise
        sys.stderr.write(f"{PROG}: error: {_one_line(exc)}\n")
        return _EXIT_FAILED
