"""The notifications inbox (n on the escalations screen): what the service wrote for this
person, newest first, unread marked; Enter opens one's escalation and marks it read."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from rflow_tui.domain.enums import ReasonCategory
from rflow_tui.tui.format import since
from rflow_tui.tui.safe import plain
from rflow_tui.tui.store_guard import StoreGuard


def session_of(note) -> int | None:
    """The escalated walk a notification is about, if it names one."""
    value = (note.payload or {}).get("session_id")
    return value if isinstance(value, int) else None


class InboxScreen(StoreGuard, ModalScreen[int | None]):
    """Dismisses with the session id of the notification opened, or None."""

    KEY_SHEET_TITLE = "Inbox"
    BINDINGS = [
        Binding("enter", "open_note", "Open its escalation"),
        Binding("a", "read_all", "Mark all read"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.notes: list = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="inbox"):
            yield Static("Inbox", classes="dialog-title", id="inbox-title")
            table: DataTable[Any] = DataTable(id="inbox-list", cursor_type="row")
            for label, key, width in (
                ("", "unread", 1),
                ("When", "when", 8),
                ("Ticket", "ticket", 10),
                ("Category", "category", 11),
                ("About", "about", 30),
            ):
                table.add_column(label, key=key, width=width)
            yield table
            yield Static("Enter opens its escalation · a marks all read · Esc closes", classes="field-label")

    def on_mount(self) -> None:
        self.query_one(DataTable).loading = True
        self.load()

    @work(exclusive=True, group="inbox")
    async def load(self) -> None:
        from rflow_tui.services.notifications import inbox

        self.notes = await self.ctx.call(inbox)
        table = self.query_one(DataTable)
        table.loading = False
        table.clear()
        for note in self.notes:
            payload = note.payload or {}
            about = str(payload.get("problem_summary") or "")
            if payload.get("fallback"):
                about = f"(to owners and admins) {about}"
            table.add_row(
                Text("●", style="bold yellow") if note.read_at is None else Text(" "),
                since(note.created_at),
                plain(str(payload.get("ticket_id") or ""), single_line=True),
                plain(ReasonCategory.short_label_for(payload.get("reason_category")) or "", single_line=True),
                plain(about, single_line=True),
                key=str(note.id),
            )
        unread = sum(1 for note in self.notes if note.read_at is None)
        self.query_one("#inbox-title", Static).update(f"Inbox · {unread} unread of {len(self.notes)}")
        table.focus()

    def _current(self):
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return next((note for note in self.notes if str(note.id) == key), None)

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        """Enter on the list (the table takes the key before the screen's binding would)."""
        self.action_open_note()

    def action_open_note(self) -> None:
        note = self._current()
        if note is not None:
            self._open(note)

    @work(group="inbox-read")
    async def _open(self, note) -> None:
        from rflow_tui.services.notifications import mark_read

        if note.read_at is None:
            await self.ctx.call(mark_read, notification_ids=[note.id])
        self.dismiss(session_of(note))

    @work(group="inbox-read")
    async def action_read_all(self) -> None:
        from rflow_tui.services.notifications import mark_read

        count = await self.ctx.call(mark_read)
        self.notify(f"{count} notification(s) marked read", markup=False)
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)
