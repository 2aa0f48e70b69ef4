"""Lint, format and strict typing run inside the suite: the one README test command covers them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.protos import ROOT

pytestmark = pytest.mark.slow
CHECKED = ["pug_grpc", "tests", "scripts"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_lint() -> None:
    result = _run("-m", "ruff", "check", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run("-m", "ruff", "format", "--check", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run(str(ROOT / "scripts" / "typecheck.py"))
    assert result.returncode == 0, result.stdout + result.stderr
