"""Closed tickets can be found and reopened in the app: the picker's Ctrl+O lists the resolved
and escalated ones with their status, Enter reopens one after a confirmation (audited, back in
the open queue), and the palette finds them, and the app's commands by other names (issue 22)."""

from __future__ import annotations

from sqlmodel import select
from textual.command import CommandList
from textual.widgets import Input

from rflow_tui.models import AuditLog, Ticket
from rflow_tui.services import tickets
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.test_tui_keys import palette_prompts
from tests.tui_support import make_app, seed_tickets, wait_for


async def closed_desk(db, desk) -> None:
    """T-980 open, T-981 resolved by a walk, T-982 escalated without one, PSA-7 closed upstream."""
    await seed_tickets(
        db,
        desk.tech.account_id,
        [("T-980", "Keyboard sticky", "Al"), ("T-981", "Toner low", "Bo"), ("T-982", "Server room hot", "Cy")],
    )
    db.add(
        Ticket(
            account_id=desk.tech.account_id,
            ticket_id="PSA-7",
            subject="Closed in ConnectWise",
            ticket_kind="psa",
            psa_system="connectwise",
            status="resolved",
        )
    )
    await db.commit()
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-981")
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="New toner")
    await walk_endings.escalate_without_walk(
        db, actor=desk.tech, ticket_id="T-982", reason="Facilities", reason_category="other"
    )


def rows(app) -> dict[str, str]:
    """Ticket id -> status, as the picker lists them."""
    table = app.screen.query_one("#tickets")
    return {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[4]) for i in range(table.row_count)}


def footer_says(app, description: str) -> bool:
    return any(b.binding.description == description and b.enabled for b in app.screen.active_bindings.values())


async def choose(pilot, app, typed: str, prompt: str) -> None:
    """Type into the palette and pick ``prompt`` by moving onto it, whatever ranks above it."""
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
    await pilot.press(*typed)
    palette = app.screen

    def settled() -> bool:  # the search for the whole text has run to its end: no hit still to come
        gathering = [w for w in palette.workers if w.group == palette._GATHER_COMMANDS_GROUP and w.is_running]
        return palette.query_one(Input).value == typed and not gathering and prompt in palette_prompts(app)

    await wait_for(pilot, settled)
    options = app.screen.query_one(CommandList)

    def on_it() -> bool:
        at = options.highlighted
        return at is not None and str(options.get_option_at_index(at).prompt).split("\n")[0] == prompt

    for _ in range(20):  # the ticket search may still add hits above it: move until it is the one highlighted
        if on_it():
            break
        await pilot.press(
            "down" if options.highlighted is None or palette_prompts(app).index(prompt) > options.highlighted else "up"
        )
    assert on_it()
    await pilot.press("enter")


async def status_of(db, desk, ticket_id: str) -> str:
    await db.rollback()  # a fresh read: what the app committed
    ticket = await tickets.find_ticket(db, desk.tech.account_id, ticket_id)
    assert ticket is not None
    return ticket.status


async def test_ctrl_o_lists_closed_tickets_and_enter_reopens_one_after_a_confirmation(store, db, desk):
    await closed_desk(db, desk)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen" and "T-980" in rows(app))
        assert "T-981" not in rows(app) and footer_says(app, "Closed tickets")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: "T-981" in rows(app))
        assert rows(app) == {"T-981": "resolved", "T-982": "escalated", "PSA-7": "resolved"}
        assert footer_says(app, "Open queue") and footer_says(app, "Reopen")
        assert not footer_says(app, "Start walk")
        status = str(app.screen.query_one("#queue-status").render())
        assert "3 of 3 closed tickets" in status and "Enter reopens" in status

        await pilot.press(*"T-981", "enter")  # no pause: Enter acts on what was typed
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ReopenDialog")
        assert app.screen.ticket.ticket_id == "T-981"
        await pilot.press("escape")  # thought better of it: nothing changes
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        assert await status_of(db, desk, "T-981") == "resolved"

        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ReopenDialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("T-981 is open again" in n.message for n in app._notifications))
        assert await status_of(db, desk, "T-981") == "open"
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen" and not rows(app))
        [entry] = list(await db.exec(select(AuditLog).where(AuditLog.action == "ticket.reopen")))
        assert (entry.target_id, entry.actor_user_id) == ("T-981", desk.tech.id)
        assert entry.details["previous_status"] == "resolved"

        await pilot.press("escape", "ctrl+o")  # the filter cleared, back to the open queue
        await wait_for(pilot, lambda: rows(app).get("T-981") == "open")
        assert footer_says(app, "Closed tickets") and footer_says(app, "Start walk")


async def test_a_psa_ticket_is_not_reopened_here_and_the_dialog_says_where(store, db, desk):
    await closed_desk(db, desk)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen" and "T-980" in rows(app))
        await pilot.press("ctrl+o", *"PSA-7", "enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ReopenDialog")
        await pilot.press("enter")
        error = app.screen.query_one("#reopen-error")
        await wait_for(pilot, lambda: "reopen it there" in str(error.render()))
        assert "connectwise" in str(error.render()) and app.screen.__class__.__name__ == "ReopenDialog"
        assert await status_of(db, desk, "PSA-7") == "resolved"


async def test_the_palette_finds_closed_tickets_to_reopen_and_commands_by_other_names(store, db, desk):
    await closed_desk(db, desk)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        await choose(pilot, app, "escal", "My walks")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "MyWalksScreen")

        await choose(pilot, app, "toner", "T-981 · Toner low · resolved")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ReopenDialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("T-981 is open again" in n.message for n in app._notifications))
        assert await status_of(db, desk, "T-981") == "open"

        await choose(pilot, app, "reopen", "Closed tickets")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen" and app.screen.closed)
        await wait_for(pilot, lambda: set(rows(app)) == {"T-982", "PSA-7"})
