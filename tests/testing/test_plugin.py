"""The pytest plugin as a user gets it: installed, loaded by itself, no conftest.py needed.

Each test writes a throwaway user project in a temporary folder and runs pytest on it in a
child interpreter (this project's python, where pug-grpc is installed): the fixtures must come
from the ``pytest11`` entry point alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

PLUGIN = "pug_grpc.testing.pytest_plugin"

USER_TESTS = """
import pytest

from pug_grpc.testing import ServerConfig


@pytest.fixture
def pug_server_config():
    return ServerConfig(project_id="proj_user", user_email="me@example.com")


@pytest.fixture
def pug_options():
    return {"sync_mode": True}


def test_tracked_events_reach_the_server(pug, pug_server):
    pug.track("user-1", "signup", {"plan": "pro"})
    pug.identify("user-1", {"name": "Ada"})
    assert pug.flush(timeout=10).completed
    [event] = pug_server.events
    assert (event.kind, event.custom_properties["plan"].string_value) == ("signup", "pro")
    assert pug_server.project_id == "proj_user"


def test_the_client_reads_what_it_sent(pug, pug_server):
    pug.identify("user-2", {"plan": "team"})
    assert pug.flush(timeout=10).completed
    assert pug.profiles.get_by_external_id("user-2").profile.properties["plan"] == "team"


def test_the_admin_is_signed_in_on_the_servers_project(pug_admin, pug_server):
    assert pug_admin.project_id == "proj_user"
    pug_server.store.identify("proj_user", "user-3", {"seats": 3}, now_us=1)
    found = pug_admin.profiles.get_by_external_id("user-3").profile
    assert found.properties["seats"] == 3
    assert pug_server.calls_to("SignInWithEmail")[0].request.email == "me@example.com"


def test_each_test_gets_a_fresh_server(pug_server):
    assert pug_server.events == []
    assert pug_server.stored_row_count() == 0
"""


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PUG_"))}
    env.pop("PYTHONPATH", None)  # pug-grpc must come from the installation, not this checkout
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS), encoding="utf-8")
    return tmp_path


def test_a_user_project_without_conftest_gets_the_fixtures(user_project: Path) -> None:
    assert not list(user_project.rglob("conftest.py"))
    result = _run(user_project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_the_opt_out_removes_the_fixtures(user_project: Path) -> None:
    result = _run(user_project, "-p", f"no:{PLUGIN}")
    assert result.returncode != 0
    assert "fixture 'pug' not found" in result.stdout
    assert "fixture 'pug_server' not found" in result.stdout


def test_an_older_conftest_line_does_not_register_the_plugin_twice(user_project: Path) -> None:
    (user_project / "conftest.py").write_text(f"pytest_plugins = [{PLUGIN!r}]\n", encoding="utf-8")
    result = _run(user_project, "-k", "fresh_server")
    assert result.returncode == 0, result.stdout + result.stderr
    autoload_off = _run(user_project, "-k", "fresh_server", "--disable-plugin-autoload")
    assert autoload_off.returncode == 0, autoload_off.stdout + autoload_off.stderr
