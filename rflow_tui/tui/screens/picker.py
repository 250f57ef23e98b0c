"""Ticket picker: the desk's open queue, filtered as you type, loaded a page at a time.
Ctrl+O shows the closed tickets instead (resolved, escalated), where Enter offers to reopen one."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static

from rflow_tui.services import tickets as ticket_svc
from rflow_tui.tui.format import age
from rflow_tui.tui.messages import ReopenRequested, ResumeRequested, TicketChosen
from rflow_tui.tui.safe import plain
from rflow_tui.tui.store_guard import StoreGuard
from rflow_tui.tui.tables import restore_place

PAGE = 100
AGE_TICK_SECONDS = 30.0
SORTS = ("age", "newest", "subject", "requester", "status", "id")

# (label, key, width): every column but the subject is as wide as its longest usual value;
# the subject takes the rest of the terminal, so at 80 columns nothing else is cut.
COLUMNS = (
    ("Ticket", "id", 10),
    ("Subject", "subject", 0),
    ("Requester", "requester", 14),
    ("Age", "age", 4),
    ("Status", "status", 11),
)
SUBJECT_MIN = 20
CELL_PADDING = 2  # a DataTable pads each cell by one on either side
SCROLLBAR = 2


def subject_width(table_width: int) -> int:
    """The room the subject gets in a table ``table_width`` cells wide."""
    others = sum(width + CELL_PADDING for _, key, width in COLUMNS if key != "subject")
    return max(SUBJECT_MIN, table_width - SCROLLBAR - others - CELL_PADDING)


class PickerScreen(StoreGuard, Screen):
    BINDINGS = [
        # priority: Enter in the filter starts the walk too, on the highlighted ticket
        Binding("enter", "open_ticket", "Start walk", priority=True),
        Binding("enter", "reopen_ticket", "Reopen", priority=True),  # on the closed tickets
        Binding("ctrl+r", "resume", "Resume"),
        # one key, two ways: the footer names the one that applies (check_action)
        Binding("ctrl+o", "show_closed", "Closed tickets"),
        Binding("ctrl+o", "show_open", "Open queue"),
        Binding("ctrl+s", "cycle_sort", "Sort", show=False),
        Binding("ctrl+f", "focus_filter", "Filter", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("f5", "reload", "Refresh", show=False),
    ]

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.search = ""
        self.sort = "age"
        self.closed = False  # showing the resolved and escalated tickets, not the open queue
        self.total = 0
        self.loaded: list = []
        self.exhausted = False
        self._debounce: Timer | None = None
        self._offered_resume = False
        self._subject_width = 0
        self._resetting = False
        self._walk_was_open = False  # a walk opened over the queue: coming back selects the filter
        self._open_when_loaded = False  # Enter came before the filter's last keys were applied

    def compose(self) -> ComposeResult:
        yield Header()
        # Selecting on focus is done where it helps (Ctrl+F, back from a walk), not on every
        # focus: a key typed on the queue moves the focus here and must not be selected away.
        yield Input(
            placeholder="Type to filter by id, subject, requester or category", id="filter", select_on_focus=False
        )
        yield DataTable(id="tickets", cursor_type="row", zebra_stripes=True)
        yield Static("Loading tickets…", id="queue-status")
        yield Footer()

    def on_mount(self) -> None:
        self._fit_columns(self.app.size.width)
        self.query_one(DataTable).loading = True
        self.reload()
        self.offer_resume()
        self.set_interval(AGE_TICK_SECONDS, self._tick_ages)
        self.app.screen_change_signal.subscribe(self, self._screen_changed)

    def on_resize(self, event) -> None:
        self._fit_columns(event.size.width)

    def _fit_columns(self, width: int) -> None:
        """Lay the columns out for a table ``width`` cells wide (rebuilt only when that changes)."""
        subject = subject_width(width)
        if subject == self._subject_width:
            return
        self._subject_width = subject
        table = self.query_one(DataTable)
        row, scroll_y = table.cursor_row, table.scroll_y
        table.clear(columns=True)
        for label, key, fixed in COLUMNS:
            table.add_column(label, key=key, width=fixed or subject)
        for index, ticket in enumerate(self.loaded):
            self._add_row(table, ticket, index)
        restore_place(table, row, scroll_y)

    def _tick_ages(self) -> None:
        """Ages grow while the tech looks at the queue."""
        table = self.query_one(DataTable)
        for row, ticket in enumerate(self.loaded):
            table.update_cell(str(row), "age", age(ticket.created_at))

    def on_screen_resume(self) -> None:
        if self.loaded:  # back from a walk or another screen: the queue may have changed
            self.reload(keep_place=True)

    def _screen_changed(self, screen) -> None:
        """Back from a walk, the tech starts the next ticket: the filter has the focus with its
        text selected, so typing a new search replaces the last one (Down still reaches the queue)."""
        from rflow_tui.tui.screens.walk import WalkScreen

        if isinstance(screen, WalkScreen):
            self._walk_was_open = True
        elif screen is self and self._walk_was_open:
            self._walk_was_open = False
            self.action_focus_filter()

    # --- loading ------------------------------------------------------------

    def reload(self, keep_place: bool = False) -> None:
        """Load the queue again from the top; ``keep_place`` reloads as many rows as are shown and
        puts the cursor back on the same ticket and the table at the same scroll."""
        limit = max(PAGE, len(self.loaded)) if keep_place else PAGE
        self.exhausted = False
        self._resetting = True  # from now, not once the worker starts: no "load more" may slip in between
        self.load_page(reset=True, limit=limit, keep_place=keep_place)

    @work(exclusive=True, group="picker-load")
    async def load_page(self, reset: bool = False, limit: int = PAGE, keep_place: bool = False) -> None:
        search, sort, offset, closed = self.search, self.sort, 0 if reset else len(self.loaded), self.closed
        page = await self.ctx.call(
            ticket_svc.list_open_tickets, search=search or None, sort=sort, offset=offset, limit=limit, closed=closed
        )
        if not self.query(DataTable):  # the screen closed (app quitting) while the page loaded
            return
        table = self.query_one(DataTable)
        if reset:
            at = self._ticket_at(table.cursor_row) if keep_place else None
            row, scroll_y = table.cursor_row, table.scroll_y
            table.clear()
            self.loaded = []
        for ticket in page:
            self._add_row(table, ticket, len(self.loaded))
            self.loaded.append(ticket)
        self.exhausted = len(page) < limit
        if reset:
            self._resetting = False
            if keep_place:
                ids = [t.ticket_id for t in self.loaded]
                restore_place(table, ids.index(at) if at in ids else row, scroll_y)
        table.loading = False
        if reset and self._open_when_loaded:
            self._open_when_loaded = False
            self.action_open_ticket()
        if reset:  # the rows first, the count (a scan of every match) after them
            self.total = await self.ctx.call(ticket_svc.count_open_tickets, search=search or None, closed=closed)
            if not self.query(DataTable):
                return
        self._show_status()

    @staticmethod
    def _add_row(table: DataTable[Any], ticket, index: int) -> None:
        table.add_row(
            plain(ticket.ticket_id, single_line=True),
            plain(ticket.subject, single_line=True),
            plain(ticket.requester, single_line=True),
            age(ticket.created_at),
            ticket.status.replace("_", " "),
            key=str(index),
        )

    def _ticket_at(self, row: int) -> str | None:
        return self.loaded[row].ticket_id if 0 <= row < len(self.loaded) else None

    def _show_status(self) -> None:
        self.query_one("#queue-status", Static).remove_class("error")
        which = "closed tickets (resolved or escalated)" if self.closed else "open tickets"
        shown = f"{len(self.loaded):,} of {self.total:,} {which}"
        where = f" matching “{self.search}”" if self.search else ""
        then = " · Enter reopens · Ctrl+O the open queue" if self.closed else ""
        line = f"{shown}{where} · sorted by {self.sort} (Ctrl+S){then}"
        self.query_one("#queue-status", Static).update(plain(line))

    def store_failed(self, error) -> None:
        """The queue stays as loaded; the status line says why and how to retry."""
        self._resetting = False
        self._open_when_loaded = False  # nothing sure to open: the tech presses Enter again
        self.query_one(DataTable).loading = False
        self.query_one("#queue-status", Static).update(plain(f"Cannot load tickets: {error} · F5 to try again"))
        self.query_one("#queue-status", Static).add_class("error")

    @on(DataTable.RowHighlighted)
    def _maybe_load_more(self, event: DataTable.RowHighlighted) -> None:
        # not while the queue reloads from the top: the next page would cancel the reload
        if not self.exhausted and not self._resetting and event.cursor_row >= len(self.loaded) - 20:
            self.load_page()

    # --- filter & sort ------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.15, lambda: self._apply_filter(event.value))

    def _apply_filter(self, value: str) -> None:
        self.search = value.strip()
        self.reload()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(DataTable).focus()

    def action_focus_filter(self) -> None:
        """The filter, its text selected: typing replaces the search, an arrow key edits it."""
        filter_input = self.query_one("#filter", Input)
        filter_input.focus()
        filter_input.select_all()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("show_closed", "open_ticket"):
            return not self.closed
        if action in ("show_open", "reopen_ticket"):
            return self.closed
        return True

    def action_reopen_ticket(self) -> None:
        """Enter on the closed tickets: the highlighted one, offered to be reopened."""
        self.action_open_ticket()

    def action_show_closed(self) -> None:
        """The resolved and escalated tickets, with their status: find one and reopen it."""
        self.show_closed(True)

    def action_show_open(self) -> None:
        self.show_closed(False)

    def show_closed(self, closed: bool) -> None:
        """The closed tickets or the open queue; before the screen is mounted, what it first loads."""
        self.closed = closed
        if self.is_mounted:
            self.refresh_bindings()
            self.query_one(DataTable).loading = True
            self.reload()

    def on_key(self, event) -> None:
        """Typing anywhere on the picker goes to the filter.

        Every printable key, not only letters, whatever has the focus by now: the filter
        stops the keys it takes, so one that reaches the screen was sent to the table before
        the focus moved (a fast "wi-fi" would otherwise lose a letter).
        """
        filter_input = self.query_one("#filter", Input)
        if event.key == "down" and filter_input.has_focus:  # from the filter straight into the queue
            self.query_one(DataTable).focus()
            event.stop()
            return
        if event.is_printable and event.character:
            if not filter_input.has_focus:
                filter_input.focus()
            if filter_input.selection.is_empty:
                filter_input.insert_text_at_cursor(event.character)
            else:  # the search was selected (back from a walk): a new one replaces it
                filter_input.replace(event.character, *filter_input.selection)
            event.stop()

    # --- actions ------------------------------------------------------------

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.cursor_row)

    def action_open_ticket(self) -> None:
        """Enter acts on what the filter shows after the last key typed: a search still waiting
        for its debounce is applied now, and the ticket opens once that page is loaded."""
        typed = self.query_one("#filter", Input).value
        if typed.strip() != self.search:
            if self._debounce is not None:
                self._debounce.stop()
            self._apply_filter(typed)
        if self._resetting:
            self._open_when_loaded = True
            return
        table = self.query_one(DataTable)
        if table.row_count:
            self._open(table.cursor_row)

    def _open(self, row: int) -> None:
        """An open ticket is walked; a closed one is offered to be reopened first."""
        if 0 <= row < len(self.loaded):
            ticket = self.loaded[row]
            self.post_message(ReopenRequested(ticket) if self.closed else TicketChosen(ticket))

    @work(group="resume")
    async def offer_resume(self) -> None:
        from rflow_tui.services.walks.reads import active_sessions_for

        if self._offered_resume:
            return
        self._offered_resume = True
        active = await self.ctx.call(active_sessions_for)
        if active:
            self.action_resume(active)

    def action_resume(self, active=None) -> None:
        self.post_message(ResumeRequested(active))
