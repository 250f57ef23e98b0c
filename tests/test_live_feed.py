"""The escalations feed misses nothing: its cursor is the server's commit order, never a clock.

An escalation that commits after one already shown but carries an earlier timestamp
(its transaction began first, or its writer's clock is behind) must still reach the
engineer's screen, live. Writers here use an engine of their own, as another
process would.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from rflow_tui.config import Settings
from rflow_tui.db import open_store
from rflow_tui.models import utcnow
from rflow_tui.services import feed
from rflow_tui.services.app_context import AppContext
from rflow_tui.services.live_feed import FeedStatus, FeedTiming, LiveFeed
from rflow_tui.services.users import add_user, create_account
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.tui_support import make_app, seed_tickets, wait_for


@pytest.fixture
async def writer(db_url):
    """Another process's store: its own engine and connections."""
    engine, open_db = await open_store(db_url)
    async with open_db() as db:
        yield db
    await engine.dispose()


def writer_clock(monkeypatch, offset: timedelta) -> None:
    """The escalating workstation's clock, ``offset`` from the true time."""
    for module in (walk_start, walk_core):
        monkeypatch.setattr(module, "utcnow", lambda: utcnow() + offset)


async def escalate(db, desk, ticket_id: str, reason: str):
    return await walk_endings.escalate_without_walk(
        db, actor=desk.tech, ticket_id=ticket_id, reason=reason, reason_category="hardware"
    )


def table_reasons(app) -> set[str]:
    table = app.screen.query_one("DataTable")
    column = table.get_column_index("reason")
    return {str(table.get_row_at(n)[column]) for n in range(table.row_count)}


async def shows_both_without_refresh(pilot, app, writer, desk, monkeypatch, *, second_offset: timedelta) -> None:
    await wait_for(
        pilot,
        lambda: app.screen.__class__.__name__ == "EscalationsScreen" and not app.screen.query_one("DataTable").loading,
    )
    writer_clock(monkeypatch, timedelta(0))
    await escalate(writer, desk, "T-1", "first to commit")
    await wait_for(pilot, lambda: table_reasons(app) == {"first to commit"}, timeout=5)
    writer_clock(monkeypatch, second_offset)
    await escalate(writer, desk, "T-2", "committed second")
    await wait_for(pilot, lambda: table_reasons(app) == {"first to commit", "committed second"}, timeout=5)


async def test_escalations_committing_in_reverse_order_of_their_timestamps_both_show(store, writer, desk, monkeypatch):
    """The second commit carries the earlier timestamp (its transaction took the time first)."""
    app = make_app(store, desk.engineer)
    async with app.run_test(size=(130, 40)) as pilot:
        await shows_both_without_refresh(pilot, app, writer, desk, monkeypatch, second_offset=timedelta(seconds=-1))


async def test_a_writer_whose_clock_is_5_s_behind_is_not_missed(store, writer, desk, monkeypatch):
    app = make_app(store, desk.engineer)
    async with app.run_test(size=(130, 40)) as pilot:
        await shows_both_without_refresh(pilot, app, writer, desk, monkeypatch, second_offset=timedelta(seconds=-5))
        assert app.screen.sub_title.endswith(" · live")


async def test_the_subtitle_says_live_and_a_resolved_walk_leaves_nothing_behind(store, writer, desk):
    app = make_app(store, desk.engineer)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.sub_title.endswith(" · live"))
        walk = await walk_start.start_adhoc_session(writer, actor=desk.tech, ticket_id="T-3")
        await walk_endings.resolve(writer, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="fixed")
        await escalate(writer, desk, "T-1", "after a resolve")
        await wait_for(pilot, lambda: table_reasons(app) == {"after a resolve"}, timeout=5)
        assert app.screen.title == "Escalations · 1"


# --- the catch-up query ------------------------------------------------------------------


async def changes(store, user, after=None) -> feed.FeedBatch:
    """One catch-up in a session of its own, as the feed runs it."""
    _engine, open_db = store
    async with open_db() as db:
        return await feed.escalation_changes(db, actor=user, after=after)


async def test_changes_after_a_cursor_are_every_later_commit_of_the_account_only(store, writer, desk, monkeypatch):
    first = await changes(store, desk.engineer)
    assert first.full and first.walks == []
    writer_clock(monkeypatch, timedelta(0))
    shown = await escalate(writer, desk, "T-1", "shown")
    seen = await changes(store, desk.engineer, after=first.cursor)
    assert [w.id for w in seen.walks] == [shown.id] and seen.cursor > first.cursor

    other_owner = await create_account(writer, name="Fabrikam", owner_email="owner@fabrikam.test")
    other_tech = await add_user(writer, actor=other_owner, email="tech@fabrikam.test", role="l1_tech")
    await seed_tickets(writer, other_owner.account_id, [("F-1", "Fax", "Fay")])
    await walk_endings.escalate_without_walk(
        writer, actor=other_tech, ticket_id="F-1", reason="not ours", reason_category="hardware"
    )
    writer_clock(monkeypatch, timedelta(seconds=-5))
    late = await escalate(writer, desk, "T-2", "late clock")

    later = await changes(store, desk.engineer, after=seen.cursor)
    assert [w.id for w in later.walks] == [late.id]
    assert await changes(store, desk.engineer, after=later.cursor) == feed.FeedBatch(later.cursor)


# --- the live feed, without a screen --------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.batches: list[feed.FeedBatch] = []
        self.statuses: list[FeedStatus] = []

    @property
    def reasons(self) -> set[str]:
        return {w.escalation_reason for b in self.batches for w in b.walks}

    async def until(self, predicate, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not predicate():
            assert loop.time() < end, f"the feed never got there: {self.statuses}, {self.reasons}"
            await asyncio.sleep(0.02)


async def following(store, user, timing: FeedTiming | None = None):
    _engine, open_db = store
    ctx = AppContext(settings=Settings(), engine=None, open_db=open_db, user=user)
    seen = Recorder()
    live = LiveFeed(ctx, deliver=seen.batches.append, on_status=seen.statuses.append, timing=timing)
    return live, seen, asyncio.create_task(live.run())


async def stopped(task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_the_feed_delivers_another_processes_commit_and_says_live(store, writer, desk):
    live, seen, task = await following(store, desk.engineer, FeedTiming(fallback_seconds=600))
    try:
        await seen.until(lambda: seen.statuses == [FeedStatus.LIVE] and seen.batches)
        assert seen.batches[0].full
        await escalate(writer, desk, "T-1", "printer on fire")
        await seen.until(lambda: "printer on fire" in seen.reasons)  # no fallback poll: the watcher woke it
        live.refresh()
        await seen.until(lambda: seen.batches[-1].full and len(seen.batches[-1].walks) == 1)
    finally:
        await stopped(task)


@pytest.mark.postgres_only
async def test_an_escalation_nobody_announced_is_found_by_the_fallback_poll(store, writer, desk, monkeypatch):
    """A pooler that breaks LISTEN: notifications never come; the poll finds it and says so."""
    _live, seen, task = await following(store, desk.engineer, FeedTiming(fallback_seconds=0.5))
    try:
        await seen.until(lambda: seen.statuses == [FeedStatus.LIVE])

        async def silent(db, account_id):
            return None

        monkeypatch.setattr(feed, "announce", silent)
        await escalate(writer, desk, "T-1", "unannounced")
        await seen.until(lambda: "unannounced" in seen.reasons)
        assert seen.statuses[-1] == FeedStatus.POLLING
    finally:
        await stopped(task)


async def test_an_engineers_claim_and_close_reach_the_other_engineers_live(store, writer, desk):
    """Work on an escalation is announced like the escalation itself: no 30 s poll needed."""
    from rflow_tui.services import escalations

    walk = await escalate(writer, desk, "T-1", "printer on fire")
    _live, seen, task = await following(store, desk.engineer, FeedTiming(fallback_seconds=600))
    try:
        await seen.until(lambda: seen.statuses == [FeedStatus.LIVE] and seen.batches)
        await escalations.claim(writer, actor=desk.coverage, session_id=walk.id)
        await seen.until(lambda: any(w.claimed_by_user_id == desk.coverage.id for w in seen.batches[-1].walks))
        await escalations.close(writer, actor=desk.coverage, session_id=walk.id, outcome="fixed", notes="new fuser")
        await seen.until(lambda: any(w.closed_at is not None for w in seen.batches[-1].walks))
        assert seen.statuses == [FeedStatus.LIVE]
    finally:
        await stopped(task)


@pytest.mark.postgres_only
async def test_a_listening_connection_killed_by_the_server_reconnects_and_catches_up(store, db, writer, desk):
    """An operator (or a pooler) ends the listener's backend: the feed says reconnecting,
    listens again, and what committed meanwhile arrives."""
    from sqlalchemy import text

    _live, seen, task = await following(store, desk.engineer, FeedTiming(fallback_seconds=600))
    try:
        await seen.until(lambda: seen.statuses == [FeedStatus.LIVE])
        listener = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        pids = (await db.exec(text(listener))).scalars().all()
        assert len(pids) == 1  # one dedicated connection, not one per catch-up
        await db.exec(text("SELECT pg_terminate_backend(:pid)").bindparams(pid=pids[0]))
        await db.commit()
        await escalate(writer, desk, "T-1", "while nobody listened")
        await seen.until(lambda: "while nobody listened" in seen.reasons)
        await seen.until(lambda: seen.statuses[-2:] == [FeedStatus.RECONNECTING, FeedStatus.LIVE])
    finally:
        await stopped(task)


@pytest.mark.postgres_only
async def test_a_listener_that_fails_with_an_unexpected_error_connects_again(store, writer, desk, monkeypatch):
    """asyncpg raises errors outside its PostgresError family too (a ProtocolError while the
    server restarts): the watcher must take any of them as a lost connection, not end silently."""
    import asyncpg

    real_connect, failures = asyncpg.connect, []

    async def connect_failing_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise asyncpg.ProtocolError("unexpected message from the server")
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(asyncpg, "connect", connect_failing_once)
    _live, seen, task = await following(store, desk.engineer, FeedTiming(fallback_seconds=600, first_backoff=0.05))
    try:
        await seen.until(lambda: FeedStatus.LIVE in seen.statuses)
        await escalate(writer, desk, "T-1", "after the bad start")
        await seen.until(lambda: "after the bad start" in seen.reasons)  # announced, not polled
        assert failures == [1]
    finally:
        await stopped(task)
