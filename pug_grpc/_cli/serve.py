"""``pug-grpc serve``: a local Pug server until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import shlex
import signal
import threading
from typing import TextIO

from pug_grpc._cli.commands import CliError
from pug_grpc._cli.console import PROG, Console
from pug_grpc._cli.terms import busy_port_hint

__all__ = ["listen_host", "serve"]


def listen_host(host: str) -> str:
    """``host`` as it goes before ``:port``: an IPv6 address in brackets (``[::1]``)."""
    bare = host.strip()
    if ":" in bare and not bare.startswith("["):
        return f"[{bare}]"
    return bare


def serve(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    """Run the server in this process; prints where it listens and the keys it accepts."""
    from pug_grpc.testing import LocalServer, ServerConfig

    host = listen_host(args.host)
    config = ServerConfig(
        host=host,
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
    server = LocalServer(config)
    try:
        try:
            server.start()
        except (OSError, RuntimeError):
            raise CliError(busy_port_hint(host, args.port)) from None
        # A development server on the developer's machine: its keys are printed in full, so
        # they can be pasted into the next command.
        out.write(
            f"Pug local server listening on {server.endpoint}\n"
            f"  database     {args.db}\n"
            f"  project id   {server.project_id}\n"
            f"  public key   {server.public_key}  (ingestion)\n"
            f"  private key  {server.private_key}  (ingestion and reads)\n"
            f"  user         {args.user_email} (AuthService.SignInWithEmail)\n"
            f"Try:  PUG_ENDPOINT={server.endpoint} PUG_API_KEY={shlex.quote(server.private_key)} "
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
