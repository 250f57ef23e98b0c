"""A walk can be left without resolving or escalating the ticket: abandoned with a reason
(kept, and audited), or switched to another kind; a ticket already walked offers Resume first."""

from __future__ import annotations

from sqlmodel import select

from rflow_tui.models import AuditLog, L1WalkSession, Ticket
from rflow_tui.services.walks import start as walk_start
from tests.tui_support import make_app, open_resumed_walk, seed_tickets, wait_for


async def fresh(db, model, **where):
    await db.rollback()
    query = select(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return list(await db.exec(query))


async def open_abandon_dialog(pilot, app) -> None:
    """Resume the walk, then press a on its answers."""
    await open_resumed_walk(pilot, app)
    app.screen.query_one("#answers").focus()
    await pilot.press("a")
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "AbandonDialog")


async def test_abandon_keeps_the_reason_and_puts_the_ticket_back_in_the_queue(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-900", "Mouse double-clicks", "Al")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-900")
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_abandon_dialog(pilot, app)
        app.screen.query_one("#abandon-reason").text = "opened the wrong ticket"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
    [stored] = await fresh(db, L1WalkSession, id=walk.id)
    assert (stored.status, stored.resolution_notes) == ("abandoned", "opened the wrong ticket")
    [ticket] = await fresh(db, Ticket, ticket_id="T-900")
    assert ticket.status == "open"
    assert [entry.action for entry in await fresh(db, AuditLog, target_id=str(walk.id))][-1] == "l1.session.abandon"


async def test_abandon_and_walk_it_another_way_offers_the_ways_to_walk_the_same_ticket(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-901", "Outlook will not open", "Bo")])
    await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-901")
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_abandon_dialog(pilot, app)
        app.screen.query_one("#abandon-reason").text = "a flow fits better"
        await pilot.click("#switch")
        # the ways to walk it: the start dialog, or (no flow matches, no AI here) the no-knowledge one
        await wait_for(pilot, lambda: app.screen.__class__.__name__ in ("StartDialog", "NoKnowledgeScreen"))
        assert app.screen.ticket.ticket_id == "T-901"
        assert not app.screen.query("#existing-walk")  # nothing unfinished on it any more


async def test_opening_a_ticket_i_am_walking_offers_resume_at_once_in_words(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-902", "VPN drops", "Cy")])
    await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-902", category="network", problem_text="VPN drops"
    )
    app = make_app(store, desk.tech)  # no AI and no flow for it: the resume offer still comes first
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ResumeDialog")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.query("#tickets") and app.screen.query_one("#tickets").row_count)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "StartDialog")
        await wait_for(pilot, lambda: app.screen.query("#existing-walk"))
        assert app.screen.focused.id == "existing-walk"
        said = str(app.screen.query_one("#start-error").render())
        assert "unfinished walk (AI build)" in said and "ai_build" not in said and "session" not in said
