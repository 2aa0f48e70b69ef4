"""The asyncio clients mirror the synchronous ones: same namespaces, methods and arguments.

Each asyncio namespace names the synchronous method it runs; these tests check that nothing
is missing or extra, that each method has the right kind (a coroutine for a reply, an async
generator for items, an AsyncPageStream for pages), that the signatures are the synchronous
ones, and that every public type and method is exported and documented.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator

import pytest

import pug_grpc
from pug_grpc import AsyncPug, AsyncPugAdmin, PageStream, Pug, PugAdmin
from pug_grpc._rpc import aio
from pug_grpc._rpc.admin_calls import AdminCalls

NAMESPACES: list[type[aio.AsyncNamespace[object]]] = [
    aio.AsyncProfiles,
    aio.AsyncActivity,
    aio.AsyncInsights,
    aio.AsyncOrgs,
    aio.AsyncProjects,
    aio.AsyncDashboards,
    aio.AsyncSharedDashboards,
    aio.AsyncEmailProviders,
    aio.AsyncCustomers,
]


def public_functions(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    }


def mirrors(cls: type) -> dict[str, aio._Mirror[..., object]]:
    return {name: m for name, m in vars(cls).items() if isinstance(m, aio._Mirror)}


def expected_kind(function: object) -> str:
    returned = typing.get_type_hints(function)["return"]
    origin = typing.get_origin(returned) or returned
    if origin is PageStream:
        return "pages"
    if origin is Iterator:
        return "items"
    return "awaited"


@pytest.mark.parametrize("cls", NAMESPACES, ids=lambda c: c.__name__)
def test_each_namespace_mirrors_every_public_method_of_its_synchronous_class(cls: type) -> None:
    sync = cls.sync  # type: ignore[attr-defined]
    found = mirrors(cls)
    assert set(found) == set(public_functions(sync))
    for name, mirror in found.items():
        assert mirror.function is getattr(sync, name), name
        assert mirror.kind == expected_kind(mirror.function), name
        assert mirror.__doc__ == mirror.function.__doc__


def test_the_admin_clients_have_the_same_public_members() -> None:
    renamed = {"close": "aclose"}
    sync = {renamed.get(name, name) for name in public_functions(PugAdmin)} | {"session"}
    asynchronous = set(public_functions(AsyncPugAdmin)) | set(mirrors(AsyncPugAdmin))
    assert sync == asynchronous
    for name, mirror in mirrors(AsyncPugAdmin).items():
        assert mirror.function is getattr(AdminCalls, name)
        assert mirror.kind == "awaited"


def test_the_ingestion_clients_have_the_same_public_members() -> None:
    renamed = {"close": "aclose"}
    sync = {renamed.get(name, name) for name in public_functions(Pug)}
    asynchronous = set(public_functions(AsyncPug)) | set(mirrors(AsyncPug))
    assert sync == asynchronous
    for name, mirror in mirrors(AsyncPug).items():
        assert mirror.function is getattr(Pug, name)
        assert mirror.kind == "same"  # track() and friends are Pug's own methods


def test_the_constructors_take_the_same_arguments() -> None:
    for sync, asynchronous in ((Pug, AsyncPug), (PugAdmin, AsyncPugAdmin)):
        left = inspect.signature(sync).parameters
        right = inspect.signature(asynchronous).parameters
        assert list(left) == list(right)
        for name in left:
            assert left[name].kind == right[name].kind, name
            assert left[name].default == right[name].default, name


def test_bound_methods_show_the_synchronous_signature() -> None:
    # What help() and an editor show for an asyncio method: the synchronous parameters.
    apug = AsyncPug("prv_test_0123456789abcdef", "http://127.0.0.1:1", send=False)
    sync = inspect.signature(pug_grpc.Profiles.list)
    shown = inspect.signature(apug.profiles.list)
    assert list(shown.parameters) == list(sync.parameters)  # functools.wraps keeps self visible
    assert inspect.iscoroutinefunction(apug.profiles.get)
    assert not inspect.iscoroutinefunction(apug.profiles.list)
    assert apug.track == apug._core.track  # the ingestion client's own bound method


ASYNC_PUBLIC = [
    AsyncPug,
    AsyncPugAdmin,
    pug_grpc.AsyncSession,
    pug_grpc.AsyncPageStream,
    *NAMESPACES,
]


@pytest.mark.parametrize("cls", ASYNC_PUBLIC, ids=lambda c: c.__name__)
def test_every_public_member_is_documented_and_exported(cls: type) -> None:
    assert cls.__name__ in pug_grpc.__all__
    assert (cls.__doc__ or "").strip()
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if callable(member) or isinstance(member, property | aio._Mirror):
            assert (member.__doc__ or "").strip(), f"{cls.__name__}.{name}"
        target = member.fget if isinstance(member, property) else member
        if inspect.isfunction(target):
            for hint in typing.get_type_hints(target).values():
                for arg in (hint, *typing.get_args(hint)):
                    if isinstance(arg, type) and arg.__module__.startswith("pug_grpc._"):
                        assert arg.__name__ in pug_grpc.__all__, f"{cls.__name__}.{name}: {arg}"


def test_the_shared_admin_flows_are_documented_and_use_exported_types() -> None:
    # PugAdmin and AsyncPugAdmin both show these methods: the sync one inherits them.
    for name, member in public_functions(AdminCalls).items():
        assert (member.__doc__ or "").strip(), name
        target = member.fget if isinstance(member, property) else member
        for hint in typing.get_type_hints(target).values():
            for arg in (hint, *typing.get_args(hint)):
                if isinstance(arg, type) and arg.__module__.startswith("pug_grpc._"):
                    assert arg.__name__ in pug_grpc.__all__, f"AdminCalls.{name}: {arg}"
