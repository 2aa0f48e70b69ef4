"""Test the supported dependency range at its ends, each in a virtual environment of its own.

Usage: ``python scripts/range_test.py {lowest,highest} [pytest arguments]``

- ``lowest``: every runtime dependency at the floor that pyproject.toml declares.
- ``highest``: the newest releases that pyproject.toml allows.

Each environment lives in ``build/range-NAME`` and holds the package (editable) with the
``test`` extra only: no generators and no linters, so the tests that need them are left out.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
import venv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_FLOOR_RE = re.compile(r"^([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)")

# Generated code, validation, the wire (reads, ingestion, the local server, the spool), the CLI
# and the guarantees under faults: everything but the packaging and tooling checks.
SUITE = (
    "tests/ingest",
    "tests/rpc",
    "tests/testing",
    "tests/cli",
    "tests/reliability",
    "tests/storage",
    "tests/build/test_generated.py",
    "tests/build/test_contract.py",
)
# These need the development tools (grpcio-tools, mypy), which the range environments lack.
NEEDS_DEV_TOOLS = (
    "tests/build/test_generated.py::test_regenerating_reproduces_gen_byte_for_byte",
    "tests/ingest/test_well_known.py::test_mypy_reports_wrong_property_names_and_types",
)
# 65-90 s of hypothesis examples against a 120 s limit on a busy two-core machine: run once, in
# the main suite (tests/ingest's property and validation tests cover both ends here).
LEFT_TO_THE_MAIN_SUITE = (
    "tests/reliability/test_hostile.py::test_hostile_input_never_raises_blocks_or_reaches_the_server_invalid",
)


@dataclass(frozen=True)
class Environment:
    """What one range environment pins and which tests it runs."""

    pins: Mapping[str, str] = field(default_factory=dict)
    upgrade: bool = False


def floors(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """``{name: floor}`` for every runtime dependency of pyproject.toml that has a ``>=``."""
    project = tomllib.loads(pyproject.read_text())["project"]
    found = {}
    for requirement in project["dependencies"]:
        match = _FLOOR_RE.match(requirement)
        if match is None:
            raise SystemExit(f"{requirement!r} has no floor: the lowest environment needs one")
        found[match.group(1)] = match.group(2)
    return found


ENVIRONMENTS = {
    "lowest": Environment(pins=floors()),
    "highest": Environment(upgrade=True),
}


def _run(*command: str | Path) -> None:
    print("+", " ".join(map(str, command)), flush=True)
    subprocess.run([str(part) for part in command], cwd=ROOT, check=True)


def prepare(name: str, environment: Environment) -> Path:
    """Create ``build/range-NAME`` afresh and install the package and its test extra into it."""
    folder = ROOT / "build" / f"range-{name}"
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    python = folder / "bin" / "python"
    constraints = folder / "constraints.txt"
    constraints.write_text("".join(f"{k}=={v}\n" for k, v in sorted(environment.pins.items())))
    install = [python, "-m", "pip", "install", "-q", "-c", constraints, "-e", ".[test]"]
    _run(*install, *(["--upgrade", "--upgrade-strategy", "eager"] if environment.upgrade else []))
    return python


def report(python: Path, names: Sequence[str]) -> None:
    """Print the installed version of each runtime dependency (the environment's point)."""
    script = (
        "import importlib.metadata as m, sys\n"
        "for name in sys.argv[1:]:\n"
        "    print(f'  {name} {m.version(name)}')\n"
    )
    _run(python, "-c", script, *names)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("environment", choices=sorted(ENVIRONMENTS))
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    environment = ENVIRONMENTS[args.environment]
    python = prepare(args.environment, environment)
    report(python, sorted(floors()))
    deselect = [f"--deselect={test}" for test in (*NEEDS_DEV_TOOLS, *LEFT_TO_THE_MAIN_SUITE)]
    command = [str(python), "-m", "pytest", "-q", *SUITE, *deselect, *args.pytest_args]
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
