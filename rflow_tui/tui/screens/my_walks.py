"""My walks (F3 for an L1 tech): their own resolved, escalated and abandoned walks, newest
first, a page at a time, so a tech can confirm an escalation went through; Enter opens one
(``finished_walk``) with what the engineers did with it since."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from rflow_tui.domain.walk_names import escalated_without_walk, kind_name
from rflow_tui.services.notifications import unread_count
from rflow_tui.services.walks import reads as walk_reads
from rflow_tui.tui.format import plural, since
from rflow_tui.tui.safe import plain
from rflow_tui.tui.store_guard import StoreGuard
from rflow_tui.tui.tables import restore_place


class MyWalksScreen(StoreGuard, Screen):
    BINDINGS = [
        Binding("enter", "open_walk", "Open"),
        Binding("f5", "refresh", "Refresh"),
        Binding("n", "inbox", "Inbox"),
    ]
    AGE_TICK = 30.0
    PAGE = 100

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.walks: list | None = None  # None until the first load

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(
            "My walks · resolved, escalated and abandoned, newest first · Enter opens one", id="my-walks-title"
        )
        table: DataTable[Any] = DataTable(id="my-walks", cursor_type="row", zebra_stripes=True)
        for label, key, width in (
            ("Ticket", "ticket", 10),
            ("Status", "status", 10),
            ("When", "when", 9),
            ("Kind", "kind", 10),
            ("Steps", "steps", 9),
            ("Subject", "subject", 40),
        ):
            table.add_column(label, key=key, width=width)
        yield table
        yield Static("Loading…", id="my-walks-status")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(self.AGE_TICK, self._tick)

    def on_screen_resume(self) -> None:
        if self.walks is not None:  # back on the kept screen: a walk may have ended since
            self.load()

    def action_refresh(self) -> None:
        self.load()

    @work(exclusive=True, group="my-walks")
    async def load(self) -> None:
        shown = max(self.PAGE, len(self.walks or []))  # a reload keeps every page already shown
        walks = await self.ctx.call(walk_reads.my_finished_walks, limit=shown)
        subjects = await self.ctx.call(walk_reads.walk_subjects, walks=walks)
        table = self.query_one(DataTable)
        selected = str(self.walks[table.cursor_row].id) if self.walks and table.cursor_row < len(self.walks) else None
        row, scroll_y = table.cursor_row, table.scroll_y
        table.clear()
        for walk in walks:
            table.add_row(*self._cells(walk, subjects), key=str(walk.id))
        self.walks = walks
        keys = [str(w.id) for w in walks]
        # the same walk stays selected, the list scrolled where it was
        restore_place(table, keys.index(selected) if selected in keys else row, scroll_y)
        status = plural(len(walks), "finished walk") if walks else "No finished walks yet"
        unread = await self.ctx.call(unread_count)
        news = f" · {plural(unread, 'unread notification')} (n)" if unread else " · n inbox"
        self.query_one("#my-walks-status", Static).update(f"{status}{news} · F5 refresh")
        table.focus()

    @on(DataTable.RowSelected)
    def action_open_walk(self) -> None:
        """The highlighted walk, read-only: transcript, notes, outcome and its escalation's fate."""
        from rflow_tui.tui.screens.finished_walk import FinishedWalkScreen

        table = self.query_one(DataTable)
        if self.walks and 0 <= table.cursor_row < len(self.walks):
            self.app.push_screen(FinishedWalkScreen(self.ctx, self.walks[table.cursor_row].id))

    @on(DataTable.RowHighlighted)
    def _maybe_load_more(self, event: DataTable.RowHighlighted) -> None:
        if self.walks and len(self.walks) % self.PAGE == 0 and event.cursor_row >= len(self.walks) - 20:
            self.load_more()

    @work(exclusive=True, group="my-walks-more")
    async def load_more(self) -> None:
        """The next page, below what is shown."""
        walks = list(self.walks or [])
        page = await self.ctx.call(walk_reads.my_finished_walks, offset=len(walks), limit=self.PAGE)
        if not page or self.walks is None or len(self.walks) != len(walks):
            return
        subjects = await self.ctx.call(walk_reads.walk_subjects, walks=page)
        table = self.query_one(DataTable)
        for walk in page:
            table.add_row(*self._cells(walk, subjects), key=str(walk.id))
        self.walks = walks + page

    def action_inbox(self) -> None:
        """What engineers did with my escalations: claimed, commented, closed, reopened."""
        from rflow_tui.tui.screens.inbox import InboxScreen

        self.app.push_screen(InboxScreen(self.ctx), self._back_from_inbox)

    def _back_from_inbox(self, session_id: int | None) -> None:
        keys = [str(walk.id) for walk in self.walks or []]
        if session_id is not None and str(session_id) in keys:
            self.query_one(DataTable).move_cursor(row=keys.index(str(session_id)))
        self.load()

    @staticmethod
    def _cells(walk, subjects: dict) -> tuple:
        no_walk = escalated_without_walk(walk)
        return (
            plain(walk.ticket_id, single_line=True),
            walk.status,
            since(walk.resolved_at),
            "No walk" if no_walk else kind_name(walk),
            "none" if no_walk else plural(walk.step_count, "step"),
            plain(subjects.get(walk.id, ""), single_line=True),
        )

    def _tick(self) -> None:
        """Keep "When" true while the screen stays open."""
        table = self.query_one(DataTable)
        for walk in self.walks or []:
            table.update_cell(str(walk.id), "when", since(walk.resolved_at))
