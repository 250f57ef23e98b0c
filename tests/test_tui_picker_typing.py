"""Typing on the picker: a burst of keys, as a terminal delivers a fast typist or a
paste, reaches the filter whole, and the queue is filtered by it."""

from __future__ import annotations

from textual import events

from tests.tui_support import make_app, seed_tickets, wait_for


async def test_a_burst_of_keys_on_the_table_lands_in_the_filter_whole(store, db, desk):
    await seed_tickets(
        db,
        desk.tech.account_id,
        [
            ("T-201", "Laptop will not join the office Wi-Fi", "Carol"),
            ("T-202", "Wifi password for guests", "Dan"),
            ("T-203", "Printer offline", "Erin"),
        ],
    )
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#tickets").row_count >= 3)
        app.screen.query_one("#tickets").focus()
        await pilot.pause()
        for char in "wi-fi":  # all queued before the focus moves, like the terminal driver does
            app.post_message(events.Key(char, char))
        await wait_for(pilot, lambda: app.screen.query_one("#filter").value == "wi-fi")
        table = app.screen.query_one("#tickets")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert str(table.get_cell_at((0, 0))) == "T-201"


async def test_down_in_the_filter_moves_into_the_queue_and_enter_starts(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-301", "Printer jam", "Fay")])
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#tickets").row_count >= 1)
        app.screen.query_one("#filter").focus()
        await pilot.press("down")
        assert app.screen.query_one("#tickets").has_focus
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ in ("StartDialog", "NoKnowledgeScreen"))
