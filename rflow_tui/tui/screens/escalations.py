"""Escalations for engineers: newest first, live, with each walk's transcript and notes."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from rflow_tui.domain.enums import ReasonCategory
from rflow_tui.services import sessions as session_svc
from rflow_tui.services.errors import DatabaseError
from rflow_tui.services.users import list_users
from rflow_tui.tui.format import KIND_NAMES, age, since
from rflow_tui.tui.safe import clean, plain
from rflow_tui.tui.store_guard import StoreGuard
from rflow_tui.tui.widgets import TicketHeader, Transcript
from rflow_tui.tui.widgets.session_notes import notes_text


def category_name(code: str | None) -> str:
    """A reason category as a person reads it (a code no longer known shows as stored)."""
    return ReasonCategory.short_label_for(code) or code or ""


def walk_context(walk) -> str:
    """What the ticket header says about the walk: its kind and session."""
    return f"{KIND_NAMES.get(walk.session_kind, walk.session_kind)} walk · session {walk.id}"


def summary(walk, tech: str) -> Text:
    out = Text()
    out.append(clean(f"Escalated by {tech} · {since(walk.resolved_at)}", single_line=True) + "\n", style="bold")
    out.append("Category: ", style="dim")
    out.append(
        clean(ReasonCategory.label_for(walk.escalation_reason_category) or walk.escalation_reason_category) + "\n"
    )
    if walk.problem_text:
        out.append("Problem: ", style="dim")
        out.append(clean(walk.problem_text) + "\n")
    out.append("Reason: ", style="dim")
    out.append(clean(walk.escalation_reason))
    return out


class EscalationsScreen(StoreGuard, Screen):
    BINDINGS = [Binding("x", "copy_transcript", "Copy transcript"), Binding("f5", "refresh", "Refresh")]

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.rows: list = []
        self.names: dict[int | None, str] = {}
        self.since = None
        self.reconnecting = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            table: DataTable[Any] = DataTable(id="escalation-list", cursor_type="row", zebra_stripes=True)
            # Reason last: it is the one column that may be cut on a narrow terminal (the detail pane shows it whole).
            for label, key, width in (
                ("Ticket", "ticket", 10),
                ("Age", "age", 5),
                ("Tech", "tech", 14),
                ("Category", "category", 14),
                ("Reason", "reason", 18),
            ):
                table.add_column(label, key=key, width=width)
            yield table
            with VerticalScroll(id="escalation-detail", classes="-empty"):
                yield TicketHeader("", "", id="escalation-ticket")
                yield Static("Select an escalation to see its ticket and transcript.", id="escalation-body")
                yield Static("Transcript", classes="section-title")
                yield Transcript(id="escalation-transcript")
                yield Static("Session notes", classes="section-title")
                yield Static(id="escalation-notes")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).loading = True
        self.poll()
        self.set_interval(self.ctx.settings.ui.escalations_poll_seconds, self.poll)

    def action_refresh(self) -> None:
        self.since = None
        self.rows = []
        self.poll()

    @work(exclusive=True, group="escalations")
    async def poll(self) -> None:
        if not self.names:
            self.names = {u.id: u.name or u.email for u in await self.ctx.call(list_users)}
        fresh = await self.ctx.call(session_svc.list_escalations, since=self.since)
        table = self.query_one(DataTable)
        table.loading = False
        if self.reconnecting:
            self.reconnecting = False
            self.notify("Reconnected to the database", markup=False)
            self._show_title()
        if not fresh:
            return
        known = {w.id for w in fresh}
        self.rows = fresh + [w for w in self.rows if w.id not in known]
        self.since = max(w.resolved_at for w in self.rows if w.resolved_at)
        selected = self.rows_key_at_cursor()
        table.clear()
        for walk in self.rows:
            table.add_row(
                plain(walk.ticket_id, single_line=True),
                age(walk.resolved_at),
                plain(self.names.get(walk.created_by_user_id, "?"), single_line=True),
                plain(category_name(walk.escalation_reason_category), single_line=True),
                plain(walk.escalation_reason or "", single_line=True),
                key=str(walk.id),
            )
        if selected is not None:
            table.move_cursor(row=table.get_row_index(selected))
        self._show_title()
        if len(fresh) < len(self.rows):
            self.notify(f"{len(fresh)} new escalation(s)", markup=False)

    def _show_title(self) -> None:
        self.title = f"Escalations · {len(self.rows)}" + (" · reconnecting…" if self.reconnecting else "")

    def store_failed(self, error) -> None:
        """The store is away: keep the list, keep polling, say so once until it is back."""
        if not isinstance(error, DatabaseError):
            super().store_failed(error)
            return
        self.query_one(DataTable).loading = False
        if not self.reconnecting:
            self.reconnecting = True
            self.notify(f"{error} · the list keeps polling", severity="warning", timeout=8, markup=False)
            self._show_title()

    def rows_key_at_cursor(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value

    def _current(self):
        key = self.rows_key_at_cursor()
        return next((w for w in self.rows if str(w.id) == key), None)

    @on(DataTable.RowHighlighted)
    def _show(self) -> None:
        walk = self._current()
        if walk is None:
            return
        self.query_one("#escalation-body", Static).update(summary(walk, self.names.get(walk.created_by_user_id, "?")))
        self.query_one(Transcript).show(walk.steps)
        notes = notes_text(walk.walk_notes)
        self.query_one("#escalation-notes", Static).update(plain(notes) if notes else Text("none", style="dim"))
        self.query_one("#escalation-detail").remove_class("-empty")
        header = self.query_one(TicketHeader)
        if header.ticket_id != walk.ticket_id or header.context != walk_context(walk):
            header.retarget(walk.ticket_id, walk_context(walk))
            self.load_ticket(walk.id)

    @work(exclusive=True, group="detail")
    async def load_ticket(self, session_id: int) -> None:
        """The selected escalation's ticket (subject, requester, description), for every walk kind."""
        from rflow_tui.services.escalations import escalation_detail

        detail = await self.ctx.call(escalation_detail, session_id=session_id)
        current = self._current()
        if current is not None and current.id == session_id:  # the selection may have moved on meanwhile
            self.query_one(TicketHeader).show_ticket(detail.ticket)

    @work(group="copy")
    async def action_copy_transcript(self) -> None:
        from rflow_tui.services.export import session_transcript, transcript_markdown

        walk = self._current()
        if walk is None:
            return
        from rflow_tui.tui.clipboard import copy_transcript

        data = await self.ctx.call(session_transcript, session_id=walk.id)
        self.notify(copy_transcript(self.app, transcript_markdown(data), walk.ticket_id, walk.id), markup=False)
