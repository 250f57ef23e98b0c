"""My walks (F3 for an L1 tech): their own resolved and escalated walks, newest first,
so a tech can confirm an escalation went through."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from rflow_tui.domain.enums import WALK_KIND_NAMES
from rflow_tui.services.notifications import unread_count
from rflow_tui.services.walks import reads as walk_reads
from rflow_tui.tui.format import plural, since
from rflow_tui.tui.safe import plain
from rflow_tui.tui.store_guard import StoreGuard
from rflow_tui.tui.tables import restore_place


class MyWalksScreen(StoreGuard, Screen):
    BINDINGS = [Binding("f5", "refresh", "Refresh"), Binding("n", "inbox", "Inbox")]
    AGE_TICK = 30.0

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.walks: list | None = None  # None until the first load

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("My walks · resolved and escalated, newest first", id="my-walks-title")
        table: DataTable[Any] = DataTable(id="my-walks", cursor_type="row", zebra_stripes=True)
        for label, key, width in (
            ("Ticket", "ticket", 10),
            ("Status", "status", 10),
            ("When", "when", 9),
            ("Kind", "kind", 9),
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
        walks = await self.ctx.call(walk_reads.my_finished_walks)
        subjects = await self.ctx.call(walk_reads.walk_subjects, walks=walks)
        table = self.query_one(DataTable)
        selected = str(self.walks[table.cursor_row].id) if self.walks and table.cursor_row < len(self.walks) else None
        row, scroll_y = table.cursor_row, table.scroll_y
        table.clear()
        for walk in walks:
            table.add_row(
                plain(walk.ticket_id, single_line=True),
                walk.status,
                since(walk.resolved_at),
                WALK_KIND_NAMES.get(walk.session_kind, walk.session_kind),
                plural(walk.step_count, "step"),
                plain(subjects.get(walk.id, ""), single_line=True),
                key=str(walk.id),
            )
        self.walks = walks
        keys = [str(w.id) for w in walks]
        # the same walk stays selected, the list scrolled where it was
        restore_place(table, keys.index(selected) if selected in keys else row, scroll_y)
        status = plural(len(walks), "finished walk") if walks else "No resolved or escalated walks yet"
        unread = await self.ctx.call(unread_count)
        news = f" · {plural(unread, 'unread notification')} (n)" if unread else " · n inbox"
        self.query_one("#my-walks-status", Static).update(f"{status}{news} · F5 refresh")
        table.focus()

    def action_inbox(self) -> None:
        """What engineers did with my escalations: claimed, commented, closed, reopened."""
        from rflow_tui.tui.screens.inbox import InboxScreen

        self.app.push_screen(InboxScreen(self.ctx), self._back_from_inbox)

    def _back_from_inbox(self, session_id: int | None) -> None:
        keys = [str(walk.id) for walk in self.walks or []]
        if session_id is not None and str(session_id) in keys:
            self.query_one(DataTable).move_cursor(row=keys.index(str(session_id)))
        self.load()

    def _tick(self) -> None:
        """Keep "When" true while the screen stays open."""
        table = self.query_one(DataTable)
        for walk in self.walks or []:
            table.update_cell(str(walk.id), "when", since(walk.resolved_at))
