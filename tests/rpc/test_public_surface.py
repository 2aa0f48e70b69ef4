"""The reads/admin public surface: every type in a signature is exported, every method documented.

A user reads the signatures of ``PugAdmin`` and the namespaces; any class of ours they meet
there must be importable from ``pug_grpc`` itself, and every public method says what it does.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator

import pytest

import pug_grpc
from pug_grpc._rpc.reads import Reads

FACADES = (
    pug_grpc.PugAdmin,
    pug_grpc.Profiles,
    pug_grpc.Activity,
    pug_grpc.Insights,
    pug_grpc.Orgs,
    pug_grpc.Projects,
    pug_grpc.Dashboards,
    pug_grpc.SharedDashboards,
    pug_grpc.EmailProviders,
    pug_grpc.Customers,
    pug_grpc.Session,
    pug_grpc.PageStream,
    Reads,
)


def members(cls: type) -> Iterator[tuple[str, object]]:
    for name, member in vars(cls).items():
        # Users construct PugAdmin; the namespaces come from its properties (and Pug's).
        if not name.startswith("_") or (name == "__init__" and cls is pug_grpc.PugAdmin):
            yield name, member


def ours(hint: object) -> Iterator[type]:
    """Our own classes inside a type hint, however deeply nested."""
    if isinstance(hint, type) and hint.__module__.startswith("pug_grpc._"):
        yield hint
    for arg in typing.get_args(hint):
        yield from ours(arg)
    origin = typing.get_origin(hint)
    if origin is not None and origin is not hint:
        yield from ours(origin)


def hints_of(member: object) -> dict[str, object]:
    target = member.fget if isinstance(member, property) else member
    if not callable(target):
        return {}
    return typing.get_type_hints(target, include_extras=True)


@pytest.mark.parametrize("cls", FACADES, ids=lambda c: c.__name__)
def test_every_type_in_a_public_signature_is_exported(cls: type) -> None:
    # By name: pug_grpc.RetrySettings is about to become pug_grpc._retry.RetrySettings.
    exported = set(pug_grpc.__all__)
    missing = set()
    for name, member in members(cls):
        for hint in hints_of(member).values():
            for found in ours(hint):
                if found.__name__ not in exported and found is not Reads:
                    missing.add(f"{cls.__name__}.{name}: {found.__module__}.{found.__name__}")
    assert missing == set()


@pytest.mark.parametrize("cls", FACADES, ids=lambda c: c.__name__)
def test_every_public_method_has_a_docstring(cls: type) -> None:
    undocumented = [
        name
        for name, member in members(cls)
        if (inspect.isfunction(member) or isinstance(member, property))
        and name != "__init__"
        and not (member.__doc__ or "").strip()
    ]
    assert undocumented == []


def test_the_exports_are_listed_and_the_retry_model_has_no_tenacity() -> None:
    for name in pug_grpc.__all__:
        assert hasattr(pug_grpc, name), name
    for cls in FACADES:
        for _name, member in members(cls):
            for hint in hints_of(member).values():
                assert "tenacity" not in repr(hint)
    signature = inspect.signature(pug_grpc.PugAdmin)
    assert "tenacity" not in str(signature)
