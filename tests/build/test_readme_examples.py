"""Every Python example in the README and docs/ type-checks against the package (mypy)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.protos import ROOT, mypy_env

pytestmark = pytest.mark.slow


def _examples() -> list[str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [
        code
        for page in pages
        for code in re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL)
    ]


def test_readme_has_examples() -> None:
    assert len(_examples()) >= 6


def test_readme_examples_type_check(tmp_path: Path) -> None:
    files = []
    for index, code in enumerate(_examples()):
        path = tmp_path / f"readme_example_{index:02d}.py"
        path.write_text(code)
        files.append(path.name)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env=mypy_env(extra_path=[ROOT]),
    )
    assert result.returncode == 0, result.stdout + result.stderr
