"""Run mypy on the package with ``gen/`` seen as ``pug_grpc.gen``.

Usage: ``python scripts/typecheck.py [mypy arguments]`` (default: the files in pyproject.toml).

The generated code lives at the top of the repository and installs as ``pug_grpc.gen``
through a package-dir mapping, which mypy cannot follow in a checkout. This script copies
the generated stubs into ``build/typing/pug_grpc/gen`` and puts that folder on ``MYPYPATH``,
so mypy sees one ``pug_grpc`` package made of the handwritten code and the generated stubs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT / "gen"
TYPING_ROOT = ROOT / "build" / "typing"


def stub_root() -> Path:
    """``build/typing``, holding ``pug_grpc/gen`` copied from ``gen/`` (refreshed each run)."""
    target = TYPING_ROOT / "pug_grpc" / "gen"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(GEN, target, ignore=shutil.ignore_patterns("__pycache__"))
    return TYPING_ROOT


def mypy_env(extra_path: Sequence[Path] = ()) -> dict[str, str]:
    """The environment for a mypy run that sees ``pug_grpc.gen`` (and ``extra_path``)."""
    paths = [str(stub_root()), *map(str, extra_path)]
    return {**os.environ, "MYPYPATH": os.pathsep.join(paths)}


def main(argv: Sequence[str]) -> int:
    command = [sys.executable, "-m", "mypy", *argv]
    return subprocess.run(command, cwd=ROOT, env=mypy_env(), check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
