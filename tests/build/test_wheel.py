"""The built wheel installs on its own and carries typed, namespaced generated code."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

from tests.support.protos import ROOT, generated_modules

pytestmark = pytest.mark.slow

SAMPLE = textwrap.dedent(
    """
    from pug_grpc import Pug
    from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
    from google.protobuf import timestamp_pb2
    import grpc

    def send(pug: Pug) -> None:
        pug.track("user-1", "signup", {"plan": "pro"})
        stamp: timestamp_pb2.Timestamp = events_pb2.Event().occur_time
        print(stamp.seconds)

    def build(kind: str) -> events_pb2.BatchCreateRequest:
        event = events_pb2.Event(event_id="x", kind=kind)
        return events_pb2.BatchCreateRequest(events=[event])

    def stub(channel: grpc.Channel) -> events_pb2_grpc.EventsServiceStub:
        return events_pb2_grpc.EventsServiceStub(channel)

    accepted: int = events_pb2.BatchCreateResponse().accepted
    """
)
WRONG = (
    "from pug_grpc.gen.sdk.events.v1 import events_pb2\nx: str = events_pb2.Event().cookieless\n"
)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    result = _run(
        sys.executable,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--outdir",
        str(dist),
        str(ROOT),
        cwd=dist,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = dist.glob("pug_grpc-*.whl")
    return built


def test_wheel_contents_are_namespaced_and_typed(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {
        "pug_grpc",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }
    assert "pug_grpc/py.typed" in names
    assert "pug_grpc/gen/sdk/events/v1/events_pb2.pyi" in names
    assert "pug_grpc/gen/sdk/events/v1/events_pb2_grpc.pyi" in names
    assert "pug_grpc/gen/buf/validate/validate_pb2.py" in names


def test_wheel_installs_imports_and_type_checks(wheel: Path, tmp_path: Path) -> None:
    """One install command (the typing extra) is all a user's ``mypy --strict`` needs."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = _run(str(python), "-m", "pip", "install", "-q", f"{wheel}[typing]", cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr

    modules = generated_modules()
    script = f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
    script += "import pug_grpc, pathlib\nprint(pathlib.Path(pug_grpc.__file__).parent)\n"
    imported = _run(str(python), "-c", script, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert str(env_dir) in imported.stdout, "imported the checkout, not the installed wheel"

    (tmp_path / "sample.py").write_text(SAMPLE)
    (tmp_path / "wrong.py").write_text(WRONG)
    mypy = [
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--no-incremental",
        "--python-executable",
        str(python),
    ]
    ok = _run(*mypy, "sample.py", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = _run(*mypy, "wrong.py", cwd=tmp_path)
    assert wrong.returncode == 1, wrong.stdout
    assert (
        'Incompatible types in assignment (expression has type "bool", variable has type "str")'
        in wrong.stdout
    )
