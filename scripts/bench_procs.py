"""The parent's side of the processes ``bench.py`` starts: sinks, clients and the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from bench_common import LOOPBACK

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SINKS = HERE / "bench_sinks.py"
CLIENTS = HERE / "bench_clients.py"


def child_env() -> dict[str, str]:
    """The children's environment: no proxy may route loopback traffic anywhere else."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    path = [str(ROOT), str(HERE), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    return env


class Sink:
    """A sink process serving many runs: ``configure`` before each, ``stats`` after it."""

    def __init__(
        self,
        kind: str,
        *options: str,
        host: str = LOOPBACK,
        prefix: Sequence[str] = (),
        log: IO[str] | None = None,
    ) -> None:
        self.kind = kind
        self.host = host
        self._proc = subprocess.Popen(
            [*prefix, sys.executable, str(SINKS), kind, "--host", host, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
            text=True,
            env=child_env(),
        )
        self.port = int(self._ask(None)["port"])

    def _ask(self, command: str | None) -> dict[str, Any]:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        if command is not None:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.kind} sink exited (status {self._proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if answer.get("ok") is False:
            raise RuntimeError(f"the {self.kind} sink refused {command!r}: {answer['error']}")
        return answer

    def configure(self, **knobs: float | bool) -> None:
        """A new run: counters to zero, then these knobs (every other one back to its default)."""
        values = {"delay": 0.0, "outage_after": 0.0, "outage_for": 0.0, "validate": False}
        values.update(knobs)
        words = [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in values.items()]
        self._ask("set " + " ".join(words))
        self._ask("reset")  # after "set": the sink's CPU count starts once it is ready

    def stats(self) -> dict[str, Any]:
        return self._ask("stats")

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


class ClientFailedError(RuntimeError):
    """A client process failed or ran out of time; the run is reported as an error."""


def run_client(
    sdk: str,
    *options: str,
    timeout: float,
    prefix: Sequence[str] = (),
    log: IO[str] | None = None,
) -> dict[str, Any]:
    """Run one client process and return the JSON line it printed last."""
    command = [*prefix, sys.executable, str(CLIENTS), sdk, *options]
    try:
        done = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
            text=True,
            env=child_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ClientFailedError(f"{sdk} client still running after {timeout:.0f} s") from error
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ClientFailedError(f"{sdk} client {' '.join(options)} failed ({done.returncode})")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """Where the run happened: CPU, cores, Python, the packages measured."""
    versions = {}
    for dist in (
        "pug-grpc",
        "grpcio",
        "protobuf",
        "protovalidate",
        "posthog",
        "segment-analytics-python",
        "requests",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": list(os.getloadavg()),
        "versions": versions,
    }
