"""The ``pug-grpc`` command line: a local server, the demo, and thin commands over the client.

Every command takes ``--endpoint`` / ``--api-key`` / ``--project-id`` (falling back to
``PUG_ENDPOINT`` / ``PUG_API_KEY`` / ``PUG_PROJECT_ID``) before or after its name, shows
warnings unless ``--quiet``, prints failures as one line on stderr (the traceback and every
library's log only with ``--debug``) and exits non-zero when something was not delivered.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from pug_grpc._cli import commands
from pug_grpc._cli.commands import one_line
from pug_grpc._cli.console import PROG, Console, hide_native_logs
from pug_grpc._cli.parser import Handler, build_parser, parse

__all__ = ["main"]

_EXIT_FAILED = 1
_EXIT_INTERRUPTED = 130


def _serve(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    from pug_grpc._cli.serve import serve

    return serve(args, out, console)


def _demo(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    from pug_grpc._cli.demo import run_demo_command

    return run_demo_command(args, out, console)


def _import(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    from pug_grpc._cli.import_command import run_import

    return run_import(args, out, console)


HANDLERS: dict[str, Handler] = {
    "serve": _serve,
    "demo": _demo,
    "import": _import,
    "track": commands.track,
    "identify": commands.identify,
    "alias": commands.alias,
    "profiles_get": commands.profiles_get,
    "profiles_list": commands.profiles_list,
    "activity_feed": commands.activity_feed,
    "insights_trends": commands.insights_trends,
}


def _configure_logging(console: Console) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(console.log_handler())
    root.setLevel(logging.DEBUG if console.debug else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns (and as a console script, exits with) the status.

    Run as the program (``argv`` None), gRPC's own log lines are hidden unless ``--debug``.
    """
    args = parse(build_parser(HANDLERS), argv)
    if argv is None and not args.debug:
        hide_native_logs()
    console = Console(sys.stderr, quiet=args.quiet, debug=args.debug)
    _configure_logging(console)
    handler: Handler = args.handler
    try:
        return handler(args, sys.stdout, console)
    except KeyboardInterrupt:
        console.message(f"{PROG}: interrupted")
        return _EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        console.error(one_line(exc))
        return _EXIT_FAILED
