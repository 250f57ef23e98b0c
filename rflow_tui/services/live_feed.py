"""A live feed of one account's escalations: every change delivered, in commit order, soon.

Free of Textual: the escalations screen runs ``LiveFeed.run`` in a worker and gets each
batch through ``deliver`` and each change of state through ``on_status``.

How the feed learns that something changed:
- PostgreSQL: LISTEN on the account's secret channel (``feed.CHANNEL_SQL``), on one
  dedicated connection (never a pooled one: a pool hands its connections round, and a
  listener must stay put). A lost connection is reopened with backoff, and then the feed
  catches up; a health check every 15 s finds a connection that died without a word; a
  poll every 30 s covers poolers that break LISTEN.
- SQLite: ``PRAGMA data_version`` on a dedicated connection every 250 ms; it changes
  whenever another connection commits.

Whatever wakes it, the feed runs one catch-up query after its cursor
(``feed.escalation_changes``), so a lost wake-up costs time, never an escalation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

from rflow_tui.domain.errors import DatabaseError
from rflow_tui.services import feed
from rflow_tui.services.app_context import AppContext
from rflow_tui.services.feed import Endpoint, FeedBatch


class FeedStatus(StrEnum):
    LIVE = "live"  # changes arrive as they commit
    RECONNECTING = "reconnecting"  # the store or the listening connection is away
    POLLING = "polling"  # changes arrived that no notification announced: only the fallback poll finds them


@dataclass(frozen=True)
class FeedTiming:
    watch_seconds: float = 0.25  # SQLite: how often data_version is read
    health_seconds: float = 15.0  # PostgreSQL: a round trip on the listening connection
    health_timeout: float = 5.0
    fallback_seconds: float = 30.0  # a catch-up even when nothing announced a change
    first_backoff: float = 0.25
    max_backoff: float = 10.0


class LiveFeed:
    """Runs until cancelled; ``refresh`` asks for the whole list again."""

    def __init__(
        self,
        ctx: AppContext,
        deliver: Callable[[FeedBatch], None],
        on_status: Callable[[FeedStatus], None],
        timing: FeedTiming | None = None,
    ) -> None:
        self.ctx = ctx
        self.deliver = deliver
        self.on_status = on_status
        self.timing = timing or FeedTiming()
        self.cursor: int | None = None
        self.status: FeedStatus | None = None
        self._wake = asyncio.Event()
        self._reload = True
        self._store_ok = True
        self._watcher_up: bool | None = None  # None: not tried yet
        self._unannounced = False

    def refresh(self) -> None:
        self._reload = True
        self._wake.set()

    async def run(self) -> None:
        endpoint = await self.until_answered(lambda: self.ctx.call(feed.store_endpoint))
        watcher = asyncio.ensure_future(self._watch(endpoint))
        try:
            await self._catch_up_forever()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    # --- catching up ------------------------------------------------------------------

    async def _catch_up_forever(self) -> None:
        self._wake.set()
        while True:
            woken = await self._wait(self.timing.fallback_seconds)
            after = None if self._reload else self.cursor
            self._reload = False
            batch = await self.until_answered(partial(self.ctx.call, feed.escalation_changes, after=after))
            if not woken and batch.walks and not batch.full:
                self._unannounced = True  # the poll found what no notification announced
            if self._reload:
                continue  # asked for the whole list while this batch was on its way
            self.cursor = batch.cursor
            if batch.full or batch.walks:
                self.deliver(batch)
            self._show_status()

    async def until_answered(self, call: Callable[[], Any]) -> Any:
        """``call()`` until the store answers; meanwhile the status says reconnecting."""
        backoff = self.timing.first_backoff
        while True:
            try:
                result = await call()
            except DatabaseError:
                self._store_ok = False
                self._show_status()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.timing.max_backoff)
                continue
            self._store_ok = True
            return result

    async def _wait(self, timeout: float) -> bool:
        """True when woken (a change, a reconnect, a refresh); False when the fallback poll is due."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        self._wake.clear()  # before the query: a change committed from here on wakes the next one
        return True

    def _show_status(self) -> None:
        if not self._store_ok or self._watcher_up is False:
            status = FeedStatus.RECONNECTING
        elif self._unannounced:
            status = FeedStatus.POLLING
        elif self._watcher_up is None:
            return  # not known yet
        else:
            status = FeedStatus.LIVE
        if status != self.status:
            self.status = status
            self.on_status(status)

    def _watcher(self, up: bool) -> None:
        self._watcher_up = up
        self._show_status()

    # --- watching -----------------------------------------------------------------------

    async def _watch(self, endpoint: Endpoint) -> None:
        if endpoint.dialect == "postgresql":
            await self._listen(endpoint)
        elif endpoint.sqlite_path and endpoint.sqlite_path != ":memory:":
            await self._watch_data_version(endpoint.sqlite_path)
        else:
            self._unannounced = True  # nothing to watch (an in-memory store): the fallback poll alone
            self._watcher(True)

    async def _listen(self, endpoint: Endpoint) -> None:
        import asyncpg  # type: ignore[import-untyped]

        backoff = self.timing.first_backoff
        while True:
            conn = None
            try:
                conn = await asyncio.wait_for(
                    asyncpg.connect(*endpoint.connect_args, **endpoint.connect_kwargs), self.timing.health_timeout
                )
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, event=lost: event.set())
                channel = await conn.fetchval(feed.CHANNEL_SQL, self.ctx.user.account_id)
                if not channel:  # row-level security shows this role no account (deactivated since)
                    raise LookupError("no feed channel")
                await conn.add_listener(channel, self._heard)
                backoff = self.timing.first_backoff
                self._watcher(True)
                self._wake.set()  # catch up on what committed while nobody listened
                while not await _set_within(lost, self.timing.health_seconds):
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self.timing.health_timeout)
            except Exception:  # any failure (asyncpg's ProtocolError and EOFError too): a watcher that
                pass  # ended silently would leave the feed to its 30 s poll; reconnect below instead
            finally:
                if conn is not None:
                    conn.terminate()
            self._watcher(False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.timing.max_backoff)

    def _heard(self, *_notification: Any) -> None:
        """A ping, never data: whatever a notification says (a forged one may say anything), only
        the catch-up query, through row-level security, decides what is shown."""
        self._unannounced = False
        self._wake.set()

    async def _watch_data_version(self, path: str) -> None:
        import aiosqlite

        backoff = self.timing.first_backoff
        seen = None
        while True:
            try:
                async with aiosqlite.connect(path) as conn:
                    self._watcher(True)
                    backoff = self.timing.first_backoff
                    while True:
                        async with conn.execute("PRAGMA data_version") as cursor:
                            row = await cursor.fetchone()
                        version = row[0] if row else None
                        if version != seen:
                            seen = version
                            self._wake.set()
                        await asyncio.sleep(self.timing.watch_seconds)
            except Exception:  # whatever ended the connection, watch again on a new one
                seen = None  # a new connection counts afresh
            self._watcher(False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.timing.max_backoff)


async def _set_within(event: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True
