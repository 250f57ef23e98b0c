"""Typing on the picker: a burst of keys, as a terminal delivers a fast typist or a
paste, reaches the filter whole, and the queue is filtered by it. And the queue's
columns fit the terminal: at 80 columns every column shows, the subject takes the rest."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import DataTable

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


async def test_keys_typed_one_by_one_on_the_table_all_reach_the_filter(store, db, desk):
    """Moving the focus to the filter must not select the first letter for the second to replace."""
    await seed_tickets(db, desk.tech.account_id, [("T-401", "Wifi drops", "Gil")])
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#tickets").row_count >= 1)
        app.screen.query_one("#tickets").focus()
        for char in "wifi":
            await pilot.press(char)
            await pilot.pause(0.05)  # the focus has moved before the next key
        assert app.screen.query_one("#filter").value == "wifi"


def column_widths(table) -> dict[str, int]:
    return {str(column.label): column.get_render_width(table) for column in table.columns.values()}


@pytest.mark.parametrize("width", [80, 120])
async def test_every_column_fits_and_the_subject_takes_the_rest(store, db, desk, width):
    await seed_tickets(db, desk.tech.account_id, [("T-501", "Outlook will not open after the Monday update", "Bob")])
    app = make_app(store, desk.tech)
    async with app.run_test(size=(140, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#tickets").row_count >= 4)
        table = app.screen.query_one("#tickets")
        await pilot.press("down", "down", "down")  # from the filter into the queue, two rows down
        chosen = table.cursor_row
        await pilot.resize_terminal(width, 24)
        await wait_for(pilot, lambda: sum(column_widths(table).values()) <= width - 2)
        widths = column_widths(table)
        assert list(widths) == ["Ticket", "Subject", "Requester", "Age", "Status"]
        assert sum(widths.values()) == width - 2  # the table's width, less its scrollbar: nothing off screen
        assert widths["Subject"] == max(widths.values())
        assert table.cursor_row == chosen and table.row_count >= 4  # laid out again, not reloaded blank
        assert str(table.get_cell_at((table.cursor_row, 4))) == "open"


async def test_scrolling_to_the_end_while_the_queue_reloads_never_mixes_two_lists(store, db, desk):
    """A reload is due (a new search, back from a walk) and the tech reaches the end of the
    list before it starts: the next page must not replace the reload, or add to a list
    about to be cleared (once a DuplicateKey crash)."""
    await seed_tickets(db, desk.tech.account_id, [(f"T-{n}", f"Ticket {n}", "Ann") for n in range(1000, 1250)])
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 30)) as pilot:
        picker = app.screen
        table = picker.query_one("#tickets")
        await wait_for(pilot, lambda: table.row_count == 100 and not picker._resetting)
        picker.search = "Ticket 11"  # T-1100 .. T-1199 and T-1011 .. : a new list
        picker.reload()
        last = table.row_count - 1  # the tech reaches the end of the old list before the reload runs
        picker._maybe_load_more(DataTable.RowHighlighted(table, last, table.coordinate_to_cell_key((last, 0)).row_key))
        await wait_for(pilot, lambda: not picker._resetting and picker.total and len(picker.loaded) == table.row_count)
        await pilot.pause(0.3)
        ids = [ticket.ticket_id for ticket in picker.loaded]
        assert len(ids) == len(set(ids)) == table.row_count
        assert all("Ticket 11" in ticket.subject for ticket in picker.loaded)


async def test_enter_right_after_typing_opens_the_ticket_the_filter_names_not_the_top_of_the_queue(store, db, desk):
    """No pause between the last key and Enter: the debounced search is applied first."""
    await seed_tickets(
        db, desk.tech.account_id, [(f"T-{n}", f"Printer jam on floor {n}", "Fay") for n in range(101, 121)]
    )
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#tickets").row_count >= 20)
        await pilot.press(*"T-118", "enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ in ("StartDialog", "NoKnowledgeScreen"))
        assert app.screen.ticket.ticket_id == "T-118"
