"""Helpers shared by the proto tests: where things are, and every generated module."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
GEN_DIR = ROOT / "gen"
CONTRACT = ROOT.parent / "shared" / "pug-api" / "contract.json"


def proto_files() -> list[str]:
    return sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))


def module_name(proto_file: str, suffix: str = "_pb2") -> str:
    return "pug_grpc.gen." + proto_file.removesuffix(".proto").replace("/", ".") + suffix


def generated_modules() -> list[str]:
    names = []
    for path in sorted(GEN_DIR.rglob("*.py")):
        rel = path.relative_to(GEN_DIR).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        names.append(".".join(["pug_grpc", "gen", *parts]))
    return names


def import_pb2(proto_file: str) -> ModuleType:
    return importlib.import_module(module_name(proto_file))


def mypy_env(extra_path: list[Path] | None = None) -> dict[str, str]:
    """The environment of a mypy run that sees ``gen/`` as ``pug_grpc.gen`` (scripts/typecheck)."""
    spec = importlib.util.spec_from_file_location("typecheck", ROOT / "scripts" / "typecheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    env: dict[str, str] = module.mypy_env(extra_path or [])
    return env
