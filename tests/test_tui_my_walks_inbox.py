"""The tech learns an escalation's fate in the app: My walks counts what engineers did with
their escalations and `n` opens that inbox."""

from __future__ import annotations

from rflow_tui.services import escalations as esc
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.tui_support import make_app, seed_tickets, wait_for


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def test_my_walks_counts_the_news_and_n_shows_who_claimed_my_escalation(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-950", "Dock dead", "Al")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-950")
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="no power", reason_category="hardware")
    await esc.claim(db, actor=desk.engineer, session_id=walk.id)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#tickets"))
        await pilot.press("f3")
        await wait_for(pilot, lambda: "1 unread notification (n)" in text(app, "#my-walks-status"))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "InboxScreen")
        table = app.screen.query_one("#inbox-list")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert "is on it" in str(table.get_row_at(0)[-1]) and "T-950" in str(table.get_row_at(0)[2])
