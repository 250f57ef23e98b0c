"""Issue 9 in the app: rights revoked while it is open, a ticket already being walked,
and a walk moved on in another window."""

from __future__ import annotations

import pytest
from sqlmodel import select

from rflow_tui.models import L1WalkSession
from rflow_tui.services.library import import_flow_doc
from rflow_tui.services.users import update_user
from rflow_tui.services.walks import flow_steps as flow_steps
from rflow_tui.services.walks import start as walk_start
from rflow_tui.tui import format as tui_format
from tests.tui_support import SMALL_FLOW, make_app, seed_tickets, wait_for
from tests.walk_paths import path_of


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    from tests.tui_support import FROZEN_NOW

    monkeypatch.setattr(tui_format, "now", lambda: FROZEN_NOW)


async def flow_walk(db, desk, actor) -> L1WalkSession:
    await seed_tickets(db, desk.tech.account_id, [("T-100", "Outlook will not open after update", "Bob")])
    flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    return await walk_start.start_flow_session(db, actor=actor, ticket_id="T-100", flow_id=flow.id)


async def stored(db, walk_id: int) -> L1WalkSession:
    await db.rollback()  # end any read snapshot, so what the app wrote is visible
    return (await db.exec(select(L1WalkSession).where(L1WalkSession.id == walk_id))).one()


async def resume_the_walk(pilot, app):
    await wait_for(
        pilot,
        lambda: app.screen.__class__.__name__ == "ResumeDialog" and app.screen.query_one("OptionList").option_count,
    )
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "WalkScreen" and app.screen.query("#answer-yes"))


async def test_a_tech_deactivated_while_the_app_is_open_is_stopped_at_the_next_answer(store, db, desk):
    walk = await flow_walk(db, desk, desk.tech)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await resume_the_walk(pilot, app)
        await update_user(db, actor=desk.owner, email=desk.tech.email, active=False)
        await pilot.press("1")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        splash = str(app.query_one("#splash-text").render())
        assert "Your access changed while rflow was open" in splash and "deactivated" in splash
        assert app.ctx.user.is_active is False
        await pilot.press("f2")  # no way back to the tickets
        await pilot.pause(0.1)
        assert len(app.screen_stack) == 1
    assert (await path_of(db, await stored(db, walk.id))) == []


async def test_an_engineer_whose_coverage_is_revoked_mid_walk_lands_on_the_escalations(store, db, desk):
    walk = await flow_walk(db, desk, desk.coverage)
    app = make_app(store, desk.coverage)
    async with app.run_test(size=(130, 40)) as pilot:
        await resume_the_walk(pilot, app)
        await update_user(db, actor=desk.owner, email=desk.coverage.email, coverage=False)
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        assert app.ctx.user.coverage is False and not app.ctx.is_l1
    assert (await path_of(db, await stored(db, walk.id))) == []


async def test_opening_a_ticket_someone_is_walking_offers_to_take_it_over(store, db, desk):
    walk = await flow_walk(db, desk, desk.tech)
    app = make_app(store, desk.coverage)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count > 0)
        app.screen.query_one("DataTable").focus()
        await pilot.press("enter")
        # offered at once, before any way to walk it is chosen
        await wait_for(
            pilot, lambda: app.screen.__class__.__name__ == "StartDialog" and app.screen.query("#existing-walk")
        )
        assert "Tina Tech's unfinished walk (Flow)" in str(app.screen.query_one("#start-error").render())
        assert str(app.screen.query_one("#existing-walk").label) == "Take it over"
        await pilot.click("#existing-walk")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "WalkScreen" and app.screen.query("#answer-yes"))
        assert app.screen.walk.id == walk.id
    taken = await stored(db, walk.id)
    assert (taken.created_by_user_id, taken.acting_as) == (desk.coverage.id, "l1_coverage")
    assert len(list(await db.exec(select(L1WalkSession)))) == 1


async def test_a_step_back_in_another_window_refuses_the_stale_answer_and_shows_the_walk_as_it_is(store, db, desk):
    walk = await flow_walk(db, desk, desk.tech)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await resume_the_walk(pilot, app)
        # Another window answers the first question, then steps back to it.
        await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="no", node_id="q-account")
        await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)
        await pilot.press("1")
        await wait_for(pilot, lambda: "stepped back" in str(app.screen.query_one("#transcript-body").render()))
        path = await path_of(db, await stored(db, walk.id))
        assert [(s["node_id"], s.get("undone", False)) for s in path] == [("q-account", True)]
        # Reloaded, the screen answers at the walk's current version.
        await wait_for(pilot, lambda: app.screen.query("#answer-yes") and not app.screen.busy)
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.query("#acknowledge"))
    path = await path_of(db, await stored(db, walk.id))
    assert [(s["node_id"], s["answer"], s.get("undone", False)) for s in path] == [
        ("q-account", "no", True),
        ("q-account", "yes", False),
    ]
