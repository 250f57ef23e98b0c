"""Reopening a resolved or escalated ticket from the app: one deliberate Enter, then the
service (rights, audit entry, the ticket back in the open queue) does the rest."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from rflow_tui.tui.safe import plain
from rflow_tui.tui.store_guard import StoreGuard


class ReopenDialog(StoreGuard, ModalScreen[Any]):
    """Dismisses with the reopened ticket, or None when the tech thinks better of it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, ctx, ticket) -> None:
        super().__init__()
        self.ctx = ctx
        self.ticket = ticket

    def compose(self) -> ComposeResult:
        ticket = self.ticket
        with Vertical(classes="dialog", id="reopen-dialog"):
            yield Static(plain(f"Reopen {ticket.ticket_id}?", single_line=True), classes="dialog-title")
            yield Static(plain(f"{ticket.subject} · {ticket.status.replace('_', ' ')}", single_line=True))
            yield Static("It goes back to the open queue, to be walked again; the audit log records who reopened it.")
            yield Static("", classes="error", id="reopen-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Reopen (Enter)", variant="warning", id="submit")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#submit", Button).focus()

    @on(Button.Pressed, "#submit")
    @work(exclusive=True, group="reopen")
    async def _reopen(self) -> None:
        from rflow_tui.services.tickets import reopen_ticket

        self.dismiss(await self.ctx.call(reopen_ticket, ticket_id=self.ticket.ticket_id))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    def store_failed(self, error) -> None:
        """Refused (a PSA's ticket, someone reopened it first, rights changed): said here, the dialog stays."""
        self.query_one("#reopen-error", Static).update(plain(f"Not reopened: {error}"))
