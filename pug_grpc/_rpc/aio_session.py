"""The asyncio JWT session: the rules of :class:`~pug_grpc.Session`, refreshes shared by tasks.

The token state and every refresh rule are :class:`~pug_grpc._rpc.session.Tokens`, as in the
threaded session. What differs is how a refresh is serialised: instead of a lock held across
the network call, one refresh task runs at a time and every task that needs a refresh
meanwhile awaits that same task. The task is shielded, so a caller cancelled mid-refresh does
not lose the rotated pair: the refresh completes and its tokens are kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pug_grpc._errors import PugError
from pug_grpc._rpc.session import TokenPair, TokenSession

__all__ = ["AsyncRefresher", "AsyncSession"]

_log = logging.getLogger("pug_grpc.admin")

AsyncRefresher = Callable[[str], Awaitable[TokenPair]]
"""Trades a refresh token for a new (access, refresh) pair; raises :class:`PugError`."""


class AsyncSession(TokenSession[AsyncRefresher]):
    """The token pair of an :class:`~pug_grpc.AsyncPugAdmin`, refreshed by one task at a time."""

    _refreshing: asyncio.Task[None] | None = None
    """The refresh under way, which every task that needs one awaits."""

    async def _trade(self, why: str) -> None:
        tokens = self._tokens
        tokens.adopt_refreshed(await self._refresher(tokens.refresh_token_to_trade()), why)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if self._refreshing is task:
            self._refreshing = None
        if not task.cancelled():
            task.exception()  # seen here too, in case every waiter was cancelled

    async def _refreshed(self, why: str) -> None:
        """Run a refresh, or wait for the one already running; raise its failure."""
        task = self._refreshing
        if task is None:
            task = asyncio.ensure_future(self._trade(why))
            task.add_done_callback(self._finished)
            self._refreshing = task
        await asyncio.shield(task)

    async def refresh(self) -> None:
        """Trade the refresh token for a new pair now (or join the refresh under way)."""
        await self._refreshed("requested")

    async def prepare(self) -> int:
        """Refresh an access token that expires within the margin; return the generation.

        As in the threaded session, a failed early refresh is only logged while the current
        token still has time left, and raised once it has expired.
        """
        if self._tokens.due():
            try:
                await self._refreshed("expiring")
            except PugError as exc:
                self._tokens.early_refresh_failed(exc)
        return self._tokens.generation

    async def recover(self, generation: int) -> bool:
        """After ``UNAUTHENTICATED`` for ``generation``: refresh once; say whether to resend."""
        answer = self._tokens.answer_without_refresh(generation)
        if answer is not None:
            return answer
        try:
            await self._refreshed("rejected by server")
        except PugError as exc:
            _log.warning("session refresh after UNAUTHENTICATED failed: %s", exc)
            return False
        return True
