"""gen/ is importable, up to date, serves over gRPC, and carries rules protovalidate reads."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import protovalidate
import pytest
from google.protobuf import descriptor

from tests.support.protos import GEN_DIR, ROOT, generated_modules, proto_files

GENERIC_TOP_LEVEL = ("buf", "common", "dashboard", "public", "sdk", "shared")


def test_every_generated_module_imports() -> None:
    names = generated_modules()
    assert len(names) > len(proto_files())
    for name in names:
        importlib.import_module(name)


def test_importing_the_generated_code_warns_nothing() -> None:
    """Quiet under every supported protobuf (6.30 and 6.31 warn about older gencode)."""
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, *generated_modules()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_generated_code_imports_only_through_the_namespace() -> None:
    sources = [*GEN_DIR.rglob("*.py"), *GEN_DIR.rglob("*.pyi")]
    assert sources
    for path in sources:
        for line in path.read_text().splitlines():
            stripped = line.strip()
            for root in GENERIC_TOP_LEVEL:
                assert not stripped.startswith((f"from {root}.", f"import {root}.")), (path, line)


def test_regenerating_reproduces_gen_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    expected = {p.relative_to(GEN_DIR): p.read_bytes() for p in GEN_DIR.rglob("*") if p.is_file()}
    actual = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    expected = {k: v for k, v in expected.items() if "__pycache__" not in k.parts}
    assert sorted(map(str, actual)) == sorted(map(str, expected)), "gen/ has stale or missing files"
    stale = [str(k) for k in expected if expected[k] != actual[k]]
    assert not stale, f"gen/ differs from proto/: run python scripts/generate.py ({stale[:5]})"


def _services() -> list[tuple[str, descriptor.ServiceDescriptor]]:
    found = []
    for proto_file in proto_files():
        module = importlib.import_module(
            "pug_grpc.gen." + proto_file.removesuffix(".proto").replace("/", ".") + "_pb2"
        )
        for service in module.DESCRIPTOR.services_by_name.values():
            found.append((module.__name__ + "_grpc", service))
    return found


def _pick_method(service: descriptor.ServiceDescriptor) -> descriptor.MethodDescriptor:
    streaming = [m for m in service.methods if m.server_streaming]
    return streaming[0] if streaming else service.methods[0]


def _message_class(message: descriptor.Descriptor) -> Any:
    module = importlib.import_module(
        "pug_grpc.gen." + message.file.name.removesuffix(".proto").replace("/", ".") + "_pb2"
    )
    return getattr(module, message.name)


def test_there_are_twelve_services() -> None:
    assert len(_services()) == 12


@pytest.mark.parametrize(
    ("module_name", "service"), _services(), ids=[s.full_name for _, s in _services()]
)
def test_stub_reaches_servicer_over_loopback(
    module_name: str, service: descriptor.ServiceDescriptor
) -> None:
    grpc_module = importlib.import_module(module_name)
    method = _pick_method(service)
    response_type = _message_class(method.output_type)
    request_type = _message_class(method.input_type)
    seen: list[Any] = []

    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        seen.append(request)
        return response_type()

    def streaming(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        seen.append(request)
        yield response_type()
        yield response_type()

    base = getattr(grpc_module, f"{service.name}Servicer")
    servicer = type(
        "Smoke", (base,), {method.name: streaming if method.server_streaming else unary}
    )()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    getattr(grpc_module, f"add_{service.name}Servicer_to_server")(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = getattr(grpc_module, f"{service.name}Stub")(channel)
            call = getattr(stub, method.name)
            if method.server_streaming:
                replies = list(call(request_type(), timeout=5))
                assert len(replies) == 2
            else:
                reply = call(request_type(), timeout=5)
                assert isinstance(reply, response_type)
            assert len(seen) == 1
            assert isinstance(seen[0], request_type)
    finally:
        server.stop(None)


def test_profiles_list_is_the_server_streaming_method() -> None:
    streaming = [
        f"/{s.full_name}/{m.name}" for _, s in _services() for m in s.methods if m.server_streaming
    ]
    assert streaming == ["/shared.profiles.v1.ProfilesService/List"]


def test_protovalidate_reads_our_event_rules() -> None:
    from pug_grpc.gen.sdk.events.v1 import events_pb2

    event = events_pb2.Event(event_id="nope", kind="bad kind!")
    violations = protovalidate.collect_violations(event)
    rule_ids = sorted(v.proto.rule_id for v in violations)
    assert rule_ids == sorted(
        ["string.uuid", "string.pattern", "required", "event.identity_required_unless_cookieless"]
    )
    by_rule = {v.proto.rule_id: v.proto for v in violations}
    assert by_rule["string.uuid"].field.elements[0].field_name == "event_id"
    assert by_rule["string.pattern"].field.elements[0].field_name == "kind"
    assert by_rule["required"].field.elements[0].field_name == "occur_time"


def test_a_valid_event_has_no_violations() -> None:
    from pug_grpc.gen.sdk.events.v1 import events_pb2

    event = events_pb2.Event(
        event_id="0190b6a4-8f5e-7c3a-9d2e-123456789abc",
        kind="page_view",
        distinct_id="user_1",
        session_id="0190b6a4-8f5e-7c3a-9d2e-123456789abd",
    )
    event.occur_time.GetCurrentTime()
    assert protovalidate.collect_violations(event) == []
