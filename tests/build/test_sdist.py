"""The sdist is complete: unpacked and installed from itself, its whole suite collects cleanly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import venv
from collections import Counter
from pathlib import Path

import pytest

from tests.support.protos import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def _collected(output: str) -> Counter[str]:
    """How many tests each function has, but the contract's (parametrized only where the
    contract file is); parameters are left out, since some are random."""
    assert re.search(r"\d+ tests? collected", output), output[-2000:]
    ids = [line.split("[")[0] for line in output.splitlines() if "::" in line]
    return Counter(i for i in ids if not i.startswith("tests/build/test_contract.py"))


def test_the_unpacked_sdist_collects_its_tests(tmp_path: Path) -> None:
    built = _run(
        sys.executable,
        "-m",
        "build",
        "--sdist",
        "--no-isolation",
        "--outdir",
        tmp_path,
        ROOT,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (sdist,) = tmp_path.glob("pug_grpc-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (tree,) = (tmp_path / "unpacked").iterdir()
    for needed in (
        "tox.ini",
        "setup.py",
        "proto",
        "scripts/generate.py",
        "gen/__init__.py",
        "docs/cli.md",
        "tests/support/server.py",
        "tests/rpc/conftest.py",
    ):
        assert (tree / needed).exists(), f"the sdist lacks {needed}"

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # Editable, so that the tests (run from the tree) and the package are the same files.
    install = _run(python, "-m", "pip", "install", "-q", "-e", f"{tree}[test]", cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr

    collected = _run(
        python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", cwd=tree
    )
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr
    assert "error" not in collected.stdout.lower().split("collected")[-1]
    here = _run(
        sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", cwd=ROOT
    )
    assert _collected(collected.stdout) == _collected(here.stdout)
