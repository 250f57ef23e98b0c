"""The app never closes on a database error: it says so, keeps what was typed, and carries on.

PostgreSQL tests stop and start a throwaway cluster mid-test (a real server restart);
SQLite tests hold the write lock from another connection, or add a trigger that makes
the database refuse a change the way a constraint does.
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from sqlmodel import select

from rflow_tui.db import db_session_factory, make_engine, open_store
from rflow_tui.models import L1WalkSession
from rflow_tui.services.library import import_flow_doc
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests import pg_cluster
from tests.conftest import make_desk
from tests.fakes import ScriptedGenerator
from tests.tui_support import SMALL_FLOW, fill_escalation, make_app, open_resumed_walk, seed_tickets, wait_for
from tests.walk_paths import path_of


@pytest.fixture(scope="module")
def cluster():
    """A cluster of this module's own: these tests stop it, which the shared one must never be."""
    try:
        server = pg_cluster.Cluster()
    except pg_cluster.ClusterUnavailable as exc:
        pg_cluster.skip_or_fail(exc)
    yield server
    server.close()


@pytest.fixture
async def pg(cluster):
    """(engine, session factory) on a fresh database of the cluster; the cluster is left running."""
    engine, sessions = await open_store(cluster.url(cluster.fresh_database()))
    yield engine, sessions
    if not cluster.running:
        cluster.start()
    await engine.dispose()


async def stored_walk(sessions, walk_id: int) -> L1WalkSession:
    async with sessions() as db:
        return (await db.exec(select(L1WalkSession).where(L1WalkSession.id == walk_id))).one()


def still_running(app) -> bool:
    return not app._exit and app._exception is None


def notified(app, words: str) -> bool:
    return any(words in str(n.message) for n in app._notifications)


def status(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


# --- PostgreSQL: a server restart -------------------------------------------------------


async def test_a_database_restart_during_a_walk_loses_nothing_typed(cluster, pg):
    _, sessions = pg
    async with sessions() as db:
        desk = await make_desk(db)
        flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
        walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-1", flow_id=flow.id)
    app = make_app(pg, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#answer-yes"))
        await pilot.press("c", *"uses work account", "enter")

        cluster.stop()
        await pilot.press("1")
        await wait_for(pilot, lambda: "cannot reach the database" in status(app, "#walk-error"))
        assert app.screen.query_one("#walk-error").display
        assert app.screen.query_one("#step-note").value == "uses work account"
        app.screen.query_one("#session-notes").focus()
        await pilot.press(*"printer jammed")
        await wait_for(pilot, lambda: "Not saved: cannot reach the database" in status(app, "#notes-status"))
        assert still_running(app) and app.screen.__class__.__name__ == "WalkScreen"

        cluster.start()
        await wait_for(pilot, lambda: status(app, "#notes-status") == "Saved", timeout=10)  # the autosave retried
        await pilot.press("escape")  # from the notes back to the keys
        await pilot.press("t")
        await wait_for(
            pilot, lambda: app.screen.query("#answer-yes") and not app.screen.query_one("#walk-error").display
        )
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.query("#acknowledge"))
        await wait_for(pilot, lambda: app.screen.query_one("#step-note").value == "")  # it went with the answer

        # A value the database will not take (a NUL byte) is refused on screen; the reason stays typed.
        await fill_escalation(pilot, app, reason="disk \x00 clicking")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "WalkScreen" and app._notifications)
        assert still_running(app)
        await fill_escalation(pilot, app)
        assert app.screen.query_one("#escalation-reason").text == "disk \x00 clicking"
        await pilot.press("escape")
    stored = await stored_walk(sessions, walk.id)
    assert stored.status == "active"
    assert [(s["node_id"], s["answer"], s["l1_note"]) for s in (await path_of(db, stored))] == [
        ("q-account", "yes", "uses work account")
    ]
    assert stored.walk_notes == ["printer jammed"]


async def test_a_database_restart_under_the_picker_shows_why_and_reloads(cluster, pg):
    _, sessions = pg
    async with sessions() as db:
        desk = await make_desk(db)
    app = make_app(pg, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count == 3)
        cluster.stop()
        await pilot.press("f5")
        await wait_for(pilot, lambda: "Cannot load tickets: cannot reach the database" in status(app, "#queue-status"))
        await pilot.press(*"vpn")
        await pilot.pause(0.3)  # the filter's reload fails too, and says so again
        assert still_running(app) and app.screen.__class__.__name__ == "PickerScreen"
        assert app.screen.query_one("#filter").value == "vpn"

        cluster.start()
        await pilot.press("f5")
        await wait_for(pilot, lambda: "1 of 1 open tickets" in status(app, "#queue-status"))
        assert str(app.screen.query_one("DataTable").get_row_at(0)[1]) == "VPN drops"


async def test_the_escalations_feed_reconnects_through_a_restart_and_misses_nothing(cluster, pg):
    """The listening connection dies with the server: the subtitle says reconnecting, the list
    stays; once back, what committed while nobody listened arrives by the catch-up query."""
    _, sessions = pg
    async with sessions() as db:
        desk = await make_desk(db)
        await seed_tickets(db, desk.tech.account_id, [("T-4", "Plotter", "Pat")])
        await walk_endings.escalate_without_walk(
            db, actor=desk.tech, ticket_id="T-1", reason="no mail", reason_category="other"
        )
    app = make_app(pg, desk.engineer, start="escalations")
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count == 1)
        await wait_for(pilot, lambda: app.screen.sub_title.endswith(" · live"))
        cluster.stop()
        await wait_for(
            pilot,
            lambda: app.screen.sub_title.endswith(" · reconnecting") and notified(app, "Cannot reach the database"),
        )
        await pilot.pause(0.5)  # several reconnects fail
        assert still_running(app) and app.screen.query_one("DataTable").row_count == 1

        cluster.start()
        async with sessions() as db:
            for ticket_id, reason in (("T-2", "no paper"), ("T-3", "no toner")):
                await walk_endings.escalate_without_walk(
                    db, actor=desk.tech, ticket_id=ticket_id, reason=reason, reason_category="hardware"
                )
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count == 3, timeout=20)
        await wait_for(pilot, lambda: app.screen.sub_title.endswith(" · live"))
        assert notified(app, "Reconnected")
        async with sessions() as db:  # and live again: a commit now arrives without a poll
            await walk_endings.escalate_without_walk(
                db, actor=desk.tech, ticket_id="T-4", reason="no ink", reason_category="hardware"
            )
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count == 4, timeout=5)


# --- SQLite: a lock held too long, a constraint -------------------------------------------


@pytest.fixture
def lite_url(tmp_path):
    """SQLite whatever RFLOW_TEST_POSTGRES says: these failures are SQLite's own."""
    return f"sqlite+aiosqlite:///{tmp_path / 'lite.sqlite3'}"


@pytest.fixture
async def lite(lite_url):
    engine, sessions = await open_store(lite_url)
    async with sessions() as db:
        desk = await make_desk(db)
    async with sessions() as db:
        yield (engine, sessions), db, desk
    await engine.dispose()


def short_lock_wait(db_url):
    """The app's store with a 200 ms busy timeout, so a held lock fails fast."""
    engine = make_engine(db_url, busy_timeout_ms=200)
    return engine, db_session_factory(engine)


async def test_a_lock_held_too_long_says_busy_and_keeps_the_notes_and_the_reason(lite_url, lite):
    store, db, desk = lite
    await seed_tickets(db, desk.tech.account_id, [("T-500", "Disk clicking", "Al")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-500")
    app_store = short_lock_wait(lite_url)
    app = make_app(app_store, desk.tech)
    holder = sqlite3.connect(lite_url.split(":///", 1)[1], isolation_level=None)
    try:
        async with app.run_test(size=(130, 40)) as pilot:
            await open_resumed_walk(pilot, app)
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            app.screen.query_one("#session-notes").focus()
            await pilot.press(*"clicks on boot")
            await wait_for(pilot, lambda: "Not saved: the desk is busy" in status(app, "#notes-status"))
            await fill_escalation(pilot, app, reason="drive failing")
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: notified(app, "not saved"))
            assert not notified(app, "too large")
            assert still_running(app) and app.screen.__class__.__name__ == "WalkScreen"

            holder.rollback()
            await wait_for(pilot, lambda: status(app, "#notes-status") == "Saved", timeout=10)
            await fill_escalation(pilot, app)
            assert app.screen.query_one("#escalation-reason").text == "drive failing"
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
    finally:
        holder.close()
        await app_store[0].dispose()
    stored = await stored_walk(store[1], walk.id)
    assert (stored.status, stored.escalation_reason, stored.walk_notes) == (
        "escalated",
        "drive failing",
        ["clicks on boot"],
    )


REFUSE_ESCALATION = """
CREATE TRIGGER refuse_escalation BEFORE UPDATE OF status ON ticket WHEN NEW.status = 'escalated'
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ticket_status'); END
"""
REFUSE_NEW_WALK = """
CREATE TRIGGER refuse_walk BEFORE INSERT ON l1_walk_session
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: l1_walk_session.ticket_id'); END
"""


async def test_an_integrity_error_on_escalate_is_shown_and_the_reason_kept(lite):
    store, db, desk = lite
    await seed_tickets(db, desk.tech.account_id, [("T-501", "Screen flickers", "Bo")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-501")
    await db.exec(text(REFUSE_ESCALATION))
    await db.commit()
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await fill_escalation(pilot, app, reason="cable replaced, still flickers")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: notified(app, "the database refused the change"))
        assert still_running(app) and app.screen.__class__.__name__ == "WalkScreen"

        await db.exec(text("DROP TRIGGER refuse_escalation"))
        await db.commit()
        await fill_escalation(pilot, app)
        assert app.screen.query_one("#escalation-reason").text == "cable replaced, still flickers"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
    stored = await stored_walk(store[1], walk.id)
    assert (stored.status, stored.escalation_reason) == ("escalated", "cable replaced, still flickers")


async def test_an_integrity_error_escalating_without_a_walk_keeps_the_dialog_and_the_reason(lite):
    store, db, desk = lite
    await seed_tickets(db, desk.tech.account_id, [("T-502", "Badge reader dead", "Cy")])
    await db.exec(text(REFUSE_NEW_WALK))
    await db.commit()
    app = make_app(store, desk.tech, generator=ScriptedGenerator())
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count > 0)
        app.screen.query_one("DataTable").focus()
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: app.screen.__class__.__name__ == "StartDialog" and app.screen.query_one("OptionList").option_count,
        )
        app.screen.query_one("OptionList").highlighted = app.screen.query_one("OptionList").get_option_index("escalate")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalateDialog")
        app.screen.query_one("#reason-category").value = "hardware"
        app.screen.query_one("#escalation-reason").text = "reader shows no light"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "the database refused the change" in status(app, "#start-error"))
        assert still_running(app)

        await db.exec(text("DROP TRIGGER refuse_walk"))
        await db.commit()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalateDialog")
        assert app.screen.query_one("#escalation-reason").text == "reader shows no light"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
    async with store[1]() as check:
        [walk] = list(await check.exec(select(L1WalkSession)))
    assert (walk.ticket_id, walk.status, walk.escalation_reason) == ("T-502", "escalated", "reader shows no light")
