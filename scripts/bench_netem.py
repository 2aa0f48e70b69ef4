"""Network-level latency for ``bench.py --netem``: two network namespaces joined by a veth pair.

The sink runs in one namespace, the client in the other, and ``tc netem`` delays every packet
by half the round trip on each end of the pair, so TCP and HTTP/2 see a real path (handshakes,
slow start, window growth), not a sink that sleeps. Nothing on the host changes: no address,
no route, no qdisc, and never the host's ``lo`` (other work on the machine shares it). Needs
root, ``ip`` and the ``sch_netem`` kernel module; without them it says why and is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess

_CLIENT_ADDRESS = "10.213.77.1"
_SINK_ADDRESS = "10.213.77.2"


class NetemUnavailableError(RuntimeError):
    """This machine cannot build the namespaces or delay packets (the reason is the message)."""


def _ip(*words: str) -> None:
    done = subprocess.run(["ip", *words], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetemUnavailableError(
            f"`ip {' '.join(words)}`: {done.stderr.strip() or done.returncode}"
        )


class NetemLink:
    """Two namespaces and the veth pair between them; ``delay()`` sets the round trip."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100_000}"
        self.client_ns = f"pugbench-c{tag}"
        self.sink_ns = f"pugbench-s{tag}"
        self._client_dev = f"pbc{tag}"
        self._sink_dev = f"pbs{tag}"
        self.sink_host = _SINK_ADDRESS
        self._created: list[str] = []

    @property
    def client_prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.client_ns)

    @property
    def sink_prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.sink_ns)

    def _in(self, namespace: str, *words: str) -> None:
        _ip("netns", "exec", namespace, "ip", *words)

    def _tc(self, namespace: str, *words: str) -> subprocess.CompletedProcess[str]:
        command = ["ip", "netns", "exec", namespace, "tc", "qdisc", *words]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    def open(self, *, probe: bool = True) -> NetemLink:
        """Build the namespaces and (``probe``) check that netem works; undo it all on failure."""
        if os.geteuid() != 0:
            raise NetemUnavailableError("needs root")
        for tool in ("ip", "tc"):
            if shutil.which(tool) is None:
                raise NetemUnavailableError(f"`{tool}` is not installed")
        try:
            for namespace in (self.client_ns, self.sink_ns):
                _ip("netns", "add", namespace)
                self._created.append(namespace)
            _ip(
                "link", "add", self._client_dev, "netns", self.client_ns,
                "type", "veth", "peer", "name", self._sink_dev, "netns", self.sink_ns,
            )  # fmt: skip
            for namespace, device, address in (
                (self.client_ns, self._client_dev, _CLIENT_ADDRESS),
                (self.sink_ns, self._sink_dev, _SINK_ADDRESS),
            ):
                self._in(namespace, "addr", "add", f"{address}/30", "dev", device)
                self._in(namespace, "link", "set", device, "up")
            if probe:
                self.delay(0.001)  # proves that netem is there before any run relies on it
                self.delay(0)
        except NetemUnavailableError:
            self.close()
            raise
        return self

    def delay(self, round_trip_s: float) -> None:
        """Delay each packet by half of ``round_trip_s`` on each end (0: no qdisc at all)."""
        ends = ((self.client_ns, self._client_dev), (self.sink_ns, self._sink_dev))
        for namespace, device in ends:
            if round_trip_s > 0:
                one_way = f"{round_trip_s * 1000 / 2:g}ms"
                done = self._tc(
                    namespace, "replace", "dev", device, "root",
                    "netem", "delay", one_way, "limit", "100000",
                )  # fmt: skip
                if done.returncode != 0:
                    raise NetemUnavailableError(
                        f"tc netem: {done.stderr.strip() or done.returncode}"
                    )
            else:
                self._tc(namespace, "del", "dev", device, "root")  # none yet: nothing to undo

    def close(self) -> None:
        """Delete the namespaces (the veth pair goes with them)."""
        for namespace in reversed(self._created):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
        self._created.clear()

    def __enter__(self) -> NetemLink:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
