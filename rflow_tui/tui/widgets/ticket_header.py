"""The ticket being walked, always in view: who is calling, about what, since when."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from rflow_tui.tui.format import age
from rflow_tui.tui.safe import plain

if TYPE_CHECKING:
    from rflow_tui.models import Ticket


class TicketHeader(Vertical):
    """Subject, requester, category and age on two lines; the description (if any)
    below, collapsible (``toggle`` or a click on the subject) so a long one can make room."""

    collapsed: reactive[bool] = reactive(False)

    def __init__(self, ticket_id: str, context: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ticket_id = ticket_id
        self.context = context  # what is being done with it, e.g. "Flow walk · session 3"
        self.ticket: Ticket | None = None

    def compose(self) -> ComposeResult:
        yield Static(plain(self.ticket_id, single_line=True), id="ticket-subject")
        yield Static(plain(self.context, single_line=True), id="ticket-meta")
        yield Static(id="ticket-description")

    def retarget(self, ticket_id: str, context: str) -> None:
        """Point at another ticket (the escalations pane follows the selection); its
        details follow with ``show_ticket``, and until then nothing of the last one shows."""
        self.ticket_id, self.context, self.ticket = ticket_id, context, None
        if self.is_mounted:
            self.query_one("#ticket-meta", Static).update(plain(context, single_line=True))
        self._draw()

    def show_ticket(self, ticket: Ticket | None) -> None:
        """Fill in the ticket's details; None for a ticket the desk does not hold (a PSA reference)."""
        self.ticket = ticket
        if ticket is None:
            self.query_one("#ticket-meta", Static).update(
                plain(f"{self.context} · details are in the PSA", single_line=True)
            )
        else:
            facts = [
                ticket.requester or "no requester",
                ticket.category or "no category",
                f"{age(ticket.created_at)} old",
                self.context,
            ]
            self.query_one("#ticket-meta", Static).update(plain(" · ".join(facts), single_line=True))
        self._draw()

    def toggle(self) -> None:
        self.collapsed = not self.collapsed

    def watch_collapsed(self) -> None:
        self._draw()

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.id == "ticket-subject":
            self.toggle()

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        ticket = self.ticket
        marker = "▸" if self.collapsed else "▾"
        subject = f"{self.ticket_id} · {ticket.subject}" if ticket is not None else self.ticket_id
        self.query_one("#ticket-subject", Static).update(plain(f"{marker} {subject}", single_line=True))
        description = self.query_one("#ticket-description", Static)
        body = (ticket.body or "").strip() if ticket is not None else ""
        description.update(plain(body))
        description.display = bool(body) and not self.collapsed  # no empty line for a ticket without one
