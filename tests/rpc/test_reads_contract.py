"""Every method of every service in the contract is reachable from the facade.

Each contract method maps to one facade call made with plain Python arguments (the table in
tests/rpc/contract_cases.py); the call goes to the loopback server, which must see that exact
method path with the request the facade built. The two ingestion methods (sdk.*) belong to the
``Pug`` ingestion facade and are checked there. Every method is reached over gRPC and Connect.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator

import pytest

from pug_grpc import PugAdmin
from pug_grpc._pug import Pug
from pug_grpc._rpc.activity import Activity
from pug_grpc._rpc.dashboards import Dashboards, SharedDashboards
from pug_grpc._rpc.insights import Insights
from pug_grpc._rpc.orgs import Customers, EmailProviders, Orgs
from pug_grpc._rpc.profiles import Profiles
from pug_grpc._rpc.projects import Projects
from tests.rpc.clients import KEY, reads, transport_of
from tests.rpc.contract_cases import (
    CASES,
    INGESTION,
    LEFT_TO_STUBS,
    SESSION_FIELDS,
    Clients,
    drain,
)
from tests.support.protos import CONTRACT
from tests.support.read_servers import EMAIL, PASSWORD, Running

TRANSPORTS = ("grpc", "connect")


def contract_paths() -> list[str]:
    if not CONTRACT.exists():
        pytest.skip("contract.json is absent (as on a user's machine)")
    data = json.loads(CONTRACT.read_text())
    return sorted(
        m["path"] for f in data["files"] for s in f.get("services", []) for m in s["methods"]
    )


@pytest.fixture
def clients(running: Running) -> Iterator[tuple[Clients, Running]]:
    running.reset()
    admin = PugAdmin(
        running.endpoint,
        project_id="proj-1",
        clock=running.clock,
        timeout=5.0,
        transport=transport_of(running),  # type: ignore[arg-type]
    )
    admin.sign_in_with_email(EMAIL, PASSWORD)
    running.state.received.clear()
    yield Clients(reads(running, timeout=5.0), admin), running
    admin.close()


def test_every_contract_method_is_accounted_for() -> None:
    paths = set(contract_paths())
    covered = set(CASES) | set(INGESTION) | set(LEFT_TO_STUBS)
    assert paths - covered == set(), "contract methods without a facade entry"
    assert covered - paths == set(), "facade entries for methods not in the contract"


@pytest.mark.parametrize("path", sorted(CASES))
def test_method_is_reachable_from_the_facade(path: str, clients: tuple[Clients, Running]) -> None:
    client, server = clients
    case = CASES[path]
    drain(case.call(client))
    calls = server.state.calls(path)
    assert [c.path for c in calls] == [path], server.state.paths()
    sent = calls[0].request
    if path in SESSION_FIELDS:
        assert sent.refresh_token  # the session's refresh token, not an argument
        sent = type(sent)()
    assert sent == case.expected
    family = path.lstrip("/").split(".", 1)[0]
    auth = calls[0].metadata.get("authorization", "")
    if family == "public":
        assert auth == "", "public calls carry no credential"
    elif family == "dashboard":
        assert auth.startswith("Bearer ")
    else:
        assert calls[0].metadata.get("x-api-key") == KEY


def test_ingestion_methods_live_on_the_ingestion_facade() -> None:
    for path, where in INGESTION.items():
        name = where.split()[0].removeprefix("Pug.")
        assert hasattr(Pug, name), f"{path}: Pug.{name} missing"


NAMESPACES = (
    Profiles,
    Activity,
    Insights,
    Orgs,
    Projects,
    Dashboards,
    EmailProviders,
    Customers,
    SharedDashboards,
    PugAdmin,
)

# Facade methods exercised by other test modules rather than by the table above.
ELSEWHERE = {
    "Profiles.list_pages": "test_reads_facade",
    "Activity.feed": "test_reads_facade",
    "Activity.event_explorer": "test_reads_facade",
    "Insights.segment_users": "test_reads_facade",
    "PugAdmin.close": "test_admin_session",
}


def test_every_public_facade_method_is_exercised() -> None:
    exercised = {case.facade for case in CASES.values()} | set(ELSEWHERE)
    public = set()
    for cls in NAMESPACES:
        for name, _member in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                public.add(f"{cls.__name__}.{name}")
    assert public - exercised == set()
