"""F2/F3/F4 keep their screens: the filter, the selected row and the scroll position are
where the user left them, and back from a walk the filter is ready to be typed over."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rflow_tui.models import FlowProposal, Ticket
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from rflow_tui.tui import format as tui_format
from tests.tui_support import FROZEN_NOW, make_app, seed_tickets, wait_for


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(tui_format, "now", lambda: FROZEN_NOW)


def screen_name(app) -> str:
    return app.screen.__class__.__name__


def cursor_ticket(picker) -> str:
    return picker.loaded[picker.query_one("#tickets").cursor_row].ticket_id


async def the_picker_with(pilot, app, rows: int):
    await wait_for(pilot, lambda: screen_name(app) == "PickerScreen" and len(app.screen.loaded) == rows)
    return app.screen


async def test_the_queue_keeps_filter_selection_and_scroll_across_f3_and_back(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [(f"T-{500 + n}", f"Printer {n} jams", "Pat") for n in range(40)])
    app = make_app(store, desk.tech)
    async with app.run_test(size=(80, 24)) as pilot:
        await the_picker_with(pilot, app, 43)
        await pilot.press(*"printer")
        picker = await the_picker_with(pilot, app, 41)  # 40 seeded + "Printer offline on 3rd floor"
        await pilot.press("down", *["down"] * 25)
        table = picker.query_one("#tickets")
        chosen, scrolled = cursor_ticket(picker), table.scroll_y
        assert scrolled > 0, "the test must scroll the queue to prove the scroll is kept"

        await pilot.press("f3")
        await wait_for(pilot, lambda: screen_name(app) == "MyWalksScreen")
        # meanwhile a new ticket arrives at the top of the queue
        db.add(
            Ticket(
                account_id=desk.tech.account_id,
                ticket_id="T-499",
                subject="Printer smoking",
                requester="Ann",
                created_at=FROZEN_NOW - timedelta(days=3),
            )
        )
        await db.commit()
        await pilot.press("f2")
        assert await the_picker_with(pilot, app, 42) is picker  # the same screen, reloaded in place
        await pilot.pause(0.1)
        assert picker.query_one("#filter").value == "printer"
        assert cursor_ticket(picker) == chosen  # the same ticket, though it moved down a row
        assert table.scroll_y == scrolled
        assert table.has_focus


async def test_an_engineer_with_coverage_finds_each_screen_as_left(store, db, desk):
    await seed_tickets(db, desk.coverage.account_id, [(f"T-{600 + n}", f"Mouse {n}", "Max") for n in range(3)])
    for n in range(3):
        await walk_endings.escalate_without_walk(
            db, actor=desk.tech, ticket_id=f"T-{600 + n}", reason=f"reason {n}", reason_category="hardware"
        )
    for n in range(3):
        db.add(
            FlowProposal(
                account_id=desk.tech.account_id,
                title=f"Proposal {n}",
                proposed_flow_data={"tree_structure": [], "match_keywords": []},
            )
        )
    await db.commit()
    app = make_app(store, desk.coverage)  # an engineer covering L1: opens on the tickets
    async with app.run_test(size=(120, 34)) as pilot:
        picker = await the_picker_with(pilot, app, 3)
        await pilot.press(*"vpn")
        await the_picker_with(pilot, app, 1)
        await pilot.press("f3")
        await wait_for(pilot, lambda: screen_name(app) == "EscalationsScreen" and len(app.screen.rows) == 3)
        escalations = app.screen
        await pilot.press("down", "down")
        chosen_escalation = escalations.rows_key_at_cursor()
        await pilot.press("f4")
        await wait_for(pilot, lambda: screen_name(app) == "ProposalsScreen" and len(app.screen.rows) == 3)
        proposals = app.screen
        await pilot.press("down")

        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen is picker)
        await pilot.pause(0.1)
        assert picker.query_one("#filter").value == "vpn" and cursor_ticket(picker) == "T-3"
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.screen is escalations)
        assert escalations.rows_key_at_cursor() == chosen_escalation
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.screen is proposals)
        assert proposals.query_one("#proposal-list").cursor_row == 1


@pytest.mark.parametrize("way_out", [("escape", "escape"), ("f2",)], ids=["esc", "f2"])
async def test_back_from_a_walk_typing_replaces_the_last_search(store, db, desk, way_out):
    await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-2")
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: screen_name(app) == "ResumeDialog" and app.screen.active)
        await pilot.press("escape")  # not now
        picker = await the_picker_with(pilot, app, 3)
        await pilot.press(*"printer")
        await the_picker_with(pilot, app, 1)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen_name(app) == "ResumeDialog" and app.screen.active)
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen_name(app) == "WalkScreen")
        await pilot.press(*way_out)
        await wait_for(pilot, lambda: app.screen is picker)
        filter_input = picker.query_one("#filter")
        await wait_for(pilot, lambda: filter_input.has_focus and filter_input.selected_text == "printer")
        await pilot.press(*"vpn")
        assert filter_input.value == "vpn"
        await wait_for(pilot, lambda: [t.ticket_id for t in picker.loaded] == ["T-3"])


async def test_my_walks_shows_a_walk_that_ended_meanwhile_and_keeps_the_selection(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [(f"T-{700 + n}", f"Monitor {n}", "Mo") for n in range(3)])
    for n in range(2):
        await walk_endings.escalate_without_walk(
            db, actor=desk.tech, ticket_id=f"T-{700 + n}", reason="dead", reason_category="hardware"
        )
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await the_picker_with(pilot, app, 4)
        await pilot.press("f3")
        await wait_for(pilot, lambda: screen_name(app) == "MyWalksScreen" and app.screen.walks)
        my_walks = app.screen
        await pilot.press("down")
        chosen = my_walks.walks[my_walks.query_one("#my-walks").cursor_row].ticket_id
        await pilot.press("f2")
        await wait_for(pilot, lambda: screen_name(app) == "PickerScreen")
        await walk_endings.escalate_without_walk(
            db, actor=desk.tech, ticket_id="T-702", reason="dead", reason_category="hardware"
        )
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.screen is my_walks and len(my_walks.walks) == 3)
        await pilot.pause(0.1)
        assert my_walks.walks[0].ticket_id == "T-702"  # the walk that just ended, on top
        assert my_walks.walks[my_walks.query_one("#my-walks").cursor_row].ticket_id == chosen


async def test_leaving_the_escalations_while_they_load_finds_them_loaded_on_return(store, desk):
    """The database answers after the engineer moved on: the kept screen fills in behind, the app stays up."""
    import asyncio
    from contextlib import asynccontextmanager

    app = make_app(store, desk.engineer)
    open_db = app.ctx.open_db
    answered = asyncio.Event()
    on_proposals = asyncio.Event()

    @asynccontextmanager
    async def slow_db():
        screen = app.screen
        async with open_db() as db:
            yield db
        if screen.__class__.__name__ == "EscalationsScreen" and not answered.is_set():
            await on_proposals.wait()  # the answer comes back once the engineer is elsewhere
            answered.set()

    app.ctx.open_db = slow_db
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: screen_name(app) == "EscalationsScreen")
        escalations = app.screen
        await pilot.press("f4")
        await wait_for(pilot, lambda: screen_name(app) == "ProposalsScreen")
        on_proposals.set()
        await wait_for(pilot, lambda: answered.is_set())
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.screen is escalations)
        await wait_for(pilot, lambda: not escalations.query_one("#escalation-list").loading)
        assert app.is_running and app._exception is None
