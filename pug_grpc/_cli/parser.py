"""The ``pug-grpc`` argument parser.

The connection and output options (``--endpoint``, ``--quiet``, ...) are accepted before the
command, after it, or both (the last one wins): every parser level has them with suppressed
defaults, and :func:`parse` fills in the defaults of those nobody gave.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pug_grpc._cli.console import PROG

__all__ = ["DEFAULT_PORT", "DEFAULT_PRIVATE_KEY", "DEFAULT_PUBLIC_KEY", "build_parser", "parse"]

DEFAULT_PORT = 50051
DEFAULT_PUBLIC_KEY = "pub_local_development_key"
DEFAULT_PRIVATE_KEY = "prv_local_development_key"
_DEFAULTS: dict[str, Any] = {
    "endpoint": None,
    "api_key": None,
    "project_id": None,
    "timeout": 10.0,
    "allow_insecure": False,
    "quiet": False,
    "debug": False,
}

_DESCRIPTION = """\
Send events to Pug and read them back over native gRPC, run a local Pug server, or see it
all work with one command:

  pug-grpc demo                   # local server in-process, 30,000 events, report
  pug-grpc serve                  # local server on 127.0.0.1:50051 (SQLite file)
  pug-grpc track user-1 signup --prop plan=pro

Connection settings come from --endpoint/--api-key/--project-id or the environment
variables PUG_ENDPOINT, PUG_API_KEY and PUG_PROJECT_ID. An endpoint is https://host[:port]
(TLS) or http://127.0.0.1:port (plaintext, loopback only unless --allow-insecure). These
options, --quiet and --debug go before or after the command.
"""

Handler = Callable[..., int]
_N = TypeVar("_N", int, float)


def _shared_options() -> argparse.ArgumentParser:
    shared = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = shared.add_argument_group("connection")
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
        type=_positive_float,
        metavar="SECONDS",
        help="per-call deadline, and the longest wait for delivery (default 10)",
    )
    group.add_argument(
        "--transport",
        choices=("grpc", "connect"),
        help="grpc (HTTP/2, the default) or connect (the Connect protocol, also over HTTP/1.1:"
        " reaches Pug's own port; needs pip install 'pug-grpc[connect]')",
    )
    group.add_argument(
        "--allow-insecure",
        action="store_true",
        help="allow a plaintext http:// endpoint on a host that is not this machine",
    )
    output = shared.add_argument_group("output")
    output.add_argument("--quiet", "-q", action="store_true", help="do not show warnings")
    output.add_argument(
        "--debug",
        action="store_true",
        help="log at debug level (gRPC's own log included) and show tracebacks on errors",
    )
    return shared


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


def _number(
    kind: str, convert: Callable[[str], _N], valid: Callable[[_N], bool], rule: str
) -> Callable[[str], _N]:
    """An argparse type: ``convert`` the text, then check it, with messages that say how."""

    def parse(text: str) -> _N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(rule)
        return value

    return parse


_positive_int = _number("a whole number", int, lambda v: v >= 1, "must be at least 1")
_positive_float = _number(
    "a number of seconds", float, lambda v: 0 < v < math.inf, "must be a positive number of seconds"
)
_port = _number(
    "a port number", int, lambda v: 0 <= v <= 65535, "must be between 0 and 65535 (0 picks one)"
)


def _pairs(parser: argparse.ArgumentParser, flag: str, metavar: str, help_text: str) -> None:
    """A repeatable ``KEY=VALUE`` option, gathered into a list of pairs."""
    parser.add_argument(
        flag, type=_key_value, action="append", default=[], metavar=metavar, help=help_text
    )


class _Builder:
    """Adds commands that all accept the shared options."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.shared = _shared_options()
        self.handlers = handlers

    def group(
        self, commands: Any, name: str, help_text: str, **options: Any
    ) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[self.shared], help=help_text, **options)  # type: ignore[no-any-return]

    def command(
        self, commands: Any, name: str, handler: str, help_text: str, **options: Any
    ) -> argparse.ArgumentParser:
        parser = self.group(commands, name, help_text, **options)
        parser.set_defaults(handler=self.handlers[handler])
        return parser


def _serve(build: _Builder, commands: Any) -> None:
    serve = build.command(
        commands,
        "serve",
        "serve",
        "run a local Pug server for development",
        description="Run a local Pug server: the real wire contract on your machine, data in a "
        "SQLite file that survives restarts. Stop it with Ctrl-C.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; ::1 works)"
    )
    serve.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 picks one)",
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


def _demo(build: _Builder, commands: Any) -> None:
    demo = build.command(
        commands,
        "demo",
        "demo",
        "track a realistic workload and read it back (local server unless --endpoint)",
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


def _ingestion(build: _Builder, commands: Any) -> None:
    track = build.command(commands, "track", "track", "send one event and wait for delivery")
    track.add_argument("distinct_id", help="who did it (your user id, or an anon-… id)")
    track.add_argument("kind", help="what happened, e.g. signup or purchase")
    track.add_argument("--properties", type=_json_object, default={}, help="properties as JSON")
    _pairs(
        track,
        "--prop",
        "KEY=VALUE",
        "one property (repeatable); VALUE is parsed as JSON when it can be (42, true)",
    )
    track.add_argument("--timestamp", help="when (RFC 3339 or epoch seconds; default now)")
    track.add_argument("--session-id", help="session UUID (default: one per command)")

    identify = build.command(
        commands, "identify", "identify", "set traits on a profile and wait for delivery"
    )
    identify.add_argument("external_id", help="your id for the user")
    identify.add_argument("--traits", type=_json_object, default={}, help="traits as JSON")
    _pairs(identify, "--trait", "KEY=VALUE", "one trait (repeatable)")
    identify.add_argument("--anonymous-id", help="an anon-… id whose profile merges into this one")
    identify.add_argument("--device-id", help="device id (at most 36 characters)")

    alias = build.command(
        commands, "alias", "alias", "merge an anonymous visitor into a known user"
    )
    alias.add_argument("anonymous_id", help="the anon-… id used before sign-in")
    alias.add_argument("external_id", help="the user's id")


def _reads(build: _Builder, commands: Any) -> None:
    profiles = build.group(commands, "profiles", "read profiles (needs a prv_ key)")
    actions = profiles.add_subparsers(dest="action", metavar="ACTION", required=True)
    get = build.command(
        actions, "get", "profiles_get", "one profile as JSON, by external id (or --id)"
    )
    get.add_argument("external_id", help="the user's external id (or Pug's id with --id)")
    get.add_argument("--id", action="store_true", help="the argument is Pug's profile id")
    listing = build.command(actions, "list", "profiles_list", "profiles as JSON lines")
    listing.add_argument("--limit", type=_positive_int, default=100, help="at most this many (100)")
    _pairs(
        listing,
        "--where",
        "TRAIT=VALUE",
        "only profiles whose trait equals VALUE (repeatable, all must match)",
    )

    activity = build.group(commands, "activity", "read activity (needs a prv_ key)")
    actions = activity.add_subparsers(dest="action", metavar="ACTION", required=True)
    feed = build.command(
        actions, "feed", "activity_feed", "a user's events, newest first, as JSON lines"
    )
    feed.add_argument("distinct_id", help="the user")
    feed.add_argument("--limit", type=_positive_int, default=20, help="at most this many (20)")
    feed.add_argument("--kind", help="only events of this kind")

    insights = build.group(commands, "insights", "run insights (needs a prv_ key)")
    actions = insights.add_subparsers(dest="action", metavar="ACTION", required=True)
    trends = build.command(
        actions, "trends", "insights_trends", "event counts per time bucket, as a text chart"
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
    trends.add_argument(
        "--timezone",
        default="",
        metavar="ZONE",
        help="IANA time zone of the labels, e.g. Europe/Oslo (UTC); Pug buckets by the "
        "project's own reporting time zone, whatever this says",
    )
    trends.add_argument("--json", action="store_true", help="print the raw response as JSON")


def _import(build: _Builder, commands: Any) -> None:
    load = build.command(
        commands,
        "import",
        "import",
        "bulk-load historical events from JSON Lines or CSV",
        description="Import events from a JSON Lines file (one object per line with distinct_id, "
        "kind, timestamp and optional properties/session_id/event_id) or a CSV file (header "
        "with distinct_id, kind, timestamp; other columns become string properties, and a "
        "'properties' column may hold JSON). Each rejected row is reported with its line "
        "number, and a summary counts every outcome by reason; the exit status is non-zero if "
        "any row was rejected or not stored.",
    )
    load.add_argument("file", type=Path, help="the .jsonl/.ndjson or .csv file ('-' for stdin)")
    load.add_argument("--format", choices=("jsonl", "csv"), help="override detection by extension")
    load.add_argument(
        "--chunk", type=_positive_int, default=5_000, help="rows between delivery checks (5,000)"
    )
    load.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    load.add_argument(
        "--strict-catalog",
        action="store_true",
        help="reject rows whose kind names a catalogued event but break its rules (by default "
        "they are sent as given and counted per reason in the summary)",
    )


def build_parser(handlers: dict[str, Handler]) -> argparse.ArgumentParser:
    """The whole parser; ``handlers`` maps each command's name to the function that runs it."""
    build = _Builder(handlers)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[build.shared],
    )
    from pug_grpc._version import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_serve, _demo, _ingestion, _reads, _import):
        add(build, commands)
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv`` and fill in the shared options that were given nowhere."""
    args = parser.parse_args(argv)
    for name, value in _DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args
