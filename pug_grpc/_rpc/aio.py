"""The asyncio namespaces: each one is its synchronous class, method for method, awaited.

There is one implementation of every call: the synchronous namespace (``Profiles.get`` builds
the request and hands it to :func:`pug_grpc._rpc.call.unary`). An asyncio namespace holds an
instance of that class built on an asynchronous context, where the call layer returns
awaitables, and names each method once::

    get = awaited(Profiles.get)

:func:`awaited` makes a coroutine method with the synchronous method's parameters (types,
defaults, docstring) and its return type awaited; :func:`async_items` turns an iterator of
items into an async generator, :func:`async_pages` a :class:`~pug_grpc.PageStream` into an
:class:`AsyncPageStream`. The parameters travel through ``ParamSpec``, so type checkers and
editors see the same signature as the synchronous method's, and no argument list is written
twice. ``tests/aio`` checks that every public method of each synchronous class has its
counterpart here, of the right kind.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from pug_grpc._rpc.activity import Activity
from pug_grpc._rpc.aio_call import AsyncPageStream
from pug_grpc._rpc.call import CallContext, PageStream
from pug_grpc._rpc.context import Paged
from pug_grpc._rpc.dashboards import Dashboards, SharedDashboards
from pug_grpc._rpc.insights import Insights
from pug_grpc._rpc.orgs import Customers, EmailProviders, Orgs
from pug_grpc._rpc.profiles import Profiles
from pug_grpc._rpc.projects import Projects

__all__ = [
    "AsyncActivity",
    "AsyncCustomers",
    "AsyncDashboards",
    "AsyncEmailProviders",
    "AsyncInsights",
    "AsyncNamespace",
    "AsyncOrgs",
    "AsyncPageStream",
    "AsyncProfiles",
    "AsyncProjects",
    "AsyncSharedDashboards",
    "async_items",
    "async_pages",
    "awaited",
    "delegated",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")
_N = TypeVar("_N")
_Page = TypeVar("_Page", bound=Paged)


class _Mirror(Generic[_P, _R]):
    """A method of an asyncio facade that runs the same-named method of its ``_core``.

    ``kind`` says what the synchronous method's result becomes: ``"awaited"`` (a coroutine
    returning the reply), ``"items"`` (an async generator), ``"pages"`` (an
    :class:`AsyncPageStream`) or ``"same"`` (the core's own bound method, for calls that
    never wait, like ``track``). The bound method is made once per instance and kept in the
    instance's ``__dict__``, so later lookups cost what a plain attribute costs.
    """

    def __init__(self, function: Callable[Concatenate[Any, _P], Any], kind: str) -> None:
        self.function = function
        self.kind = kind
        self.__doc__ = function.__doc__
        self.__wrapped__ = function
        self._name = function.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def _bind(self, core: object) -> Callable[..., Any]:
        function = self.function
        if self.kind == "same":
            bound: Callable[..., Any] = function.__get__(core)
            return bound
        if self.kind != "awaited":

            @functools.wraps(function)
            def call(*args: Any, **kwargs: Any) -> Any:
                return function(core, *args, **kwargs)

            return call

        @functools.wraps(function)
        async def call_awaited(*args: Any, **kwargs: Any) -> Any:
            return await function(core, *args, **kwargs)

        return call_awaited

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type) -> Callable[_P, _R]: ...
    def __get__(self, instance: object, owner: type) -> Any:
        if instance is None:
            return self
        bound = self._bind(instance._core)  # type: ignore[attr-defined]
        instance.__dict__[self._name] = bound
        return bound


def delegated(function: Callable[Concatenate[Any, _P], _R]) -> _Mirror[_P, _R]:
    """The core's own ``function``, unchanged: a call that never waits (``AsyncPug.track``)."""
    return _Mirror(function, "same")


def awaited(
    function: Callable[Concatenate[Any, _P], _R],
) -> _Mirror[_P, Coroutine[Any, Any, _R]]:
    """The coroutine method running ``function`` (a synchronous namespace method) on asyncio."""
    return _Mirror(function, "awaited")


def async_items(
    function: Callable[Concatenate[Any, _P], Iterator[_T]],
) -> _Mirror[_P, AsyncGenerator[_T, None]]:
    """The async-generator method of a synchronous method that returns an iterator of items."""
    return _Mirror(function, "items")


def async_pages(
    function: Callable[Concatenate[Any, _P], PageStream[_Page]],
) -> _Mirror[_P, AsyncPageStream[_Page]]:
    """The :class:`AsyncPageStream` method of a synchronous method returning a PageStream."""
    return _Mirror(function, "pages")


class AsyncNamespace(Generic[_N]):
    """An asyncio namespace: the synchronous namespace ``_core``, built on an asyncio context."""

    sync: ClassVar[type[Any]]
    """The synchronous class this one mirrors."""

    def __init__(self, core: _N) -> None:
        self._core = core

    @classmethod
    def on(cls, ctx: CallContext) -> Self:
        """This namespace on ``ctx`` (a context marked ``asynchronous``)."""
        return cls(cls.sync(ctx))

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class AsyncProfiles(AsyncNamespace[Profiles]):
    """:class:`~pug_grpc.Profiles` for asyncio: ``await`` each call, ``async for`` a listing."""

    sync = Profiles
    get = awaited(Profiles.get)
    get_by_external_id = awaited(Profiles.get_by_external_id)
    list_pages = async_pages(Profiles.list_pages)
    list = async_items(Profiles.list)
    delete = awaited(Profiles.delete)
    delete_data_subject = awaited(Profiles.delete_data_subject)
    get_deletion_request = awaited(Profiles.get_deletion_request)


class AsyncActivity(AsyncNamespace[Activity]):
    """:class:`~pug_grpc.Activity` for asyncio: ``await`` each page, ``async for`` the events."""

    sync = Activity
    feed_page = awaited(Activity.feed_page)
    feed = async_items(Activity.feed)
    event_explorer_page = awaited(Activity.event_explorer_page)
    event_explorer = async_items(Activity.event_explorer)
    heatmap = awaited(Activity.heatmap)
    profile_stats = awaited(Activity.profile_stats)
    filter_schema = awaited(Activity.filter_schema)
    property_values = awaited(Activity.property_values)


class AsyncInsights(AsyncNamespace[Insights]):
    """:class:`~pug_grpc.Insights` for asyncio."""

    sync = Insights
    query = awaited(Insights.query)
    segment_users_page = awaited(Insights.segment_users_page)
    segment_users = async_items(Insights.segment_users)
    filter_schema = awaited(Insights.filter_schema)
    property_values = awaited(Insights.property_values)


class AsyncOrgs(AsyncNamespace[Orgs]):
    """:class:`~pug_grpc.Orgs` for asyncio."""

    sync = Orgs
    list = awaited(Orgs.list)
    get = awaited(Orgs.get)
    create = awaited(Orgs.create)
    update_display_name = awaited(Orgs.update_display_name)
    leave = awaited(Orgs.leave)
    list_members = awaited(Orgs.list_members)
    remove_member = awaited(Orgs.remove_member)
    update_member_role = awaited(Orgs.update_member_role)
    invite_member = awaited(Orgs.invite_member)
    list_invitations = awaited(Orgs.list_invitations)
    resend_invite = awaited(Orgs.resend_invite)
    revoke_invite = awaited(Orgs.revoke_invite)


class AsyncEmailProviders(AsyncNamespace[EmailProviders]):
    """:class:`~pug_grpc.EmailProviders` for asyncio."""

    sync = EmailProviders
    get = awaited(EmailProviders.get)
    set = awaited(EmailProviders.set)
    remove = awaited(EmailProviders.remove)
    send_test = awaited(EmailProviders.send_test)


class AsyncCustomers(AsyncNamespace[Customers]):
    """:class:`~pug_grpc.Customers` for asyncio."""

    sync = Customers
    get_me = awaited(Customers.get_me)
    set_password = awaited(Customers.set_password)


class AsyncProjects(AsyncNamespace[Projects]):
    """:class:`~pug_grpc.Projects` for asyncio."""

    sync = Projects
    batch_get = awaited(Projects.batch_get)
    create = awaited(Projects.create)
    get = awaited(Projects.get)
    delete = awaited(Projects.delete)
    update_meta = awaited(Projects.update_meta)
    update_fcm_service_json = awaited(Projects.update_fcm_service_json)
    list_api_keys = awaited(Projects.list_api_keys)
    create_api_key = awaited(Projects.create_api_key)
    delete_api_key = awaited(Projects.delete_api_key)


class AsyncDashboards(AsyncNamespace[Dashboards]):
    """:class:`~pug_grpc.Dashboards` for asyncio."""

    sync = Dashboards
    list = awaited(Dashboards.list)
    get = awaited(Dashboards.get)
    create = awaited(Dashboards.create)
    update = awaited(Dashboards.update)
    upsert = awaited(Dashboards.upsert)
    delete = awaited(Dashboards.delete)
    query = awaited(Dashboards.query)


class AsyncSharedDashboards(AsyncNamespace[SharedDashboards]):
    """:class:`~pug_grpc.SharedDashboards` for asyncio (no credential is sent)."""

    sync = SharedDashboards
    query = awaited(SharedDashboards.query)
