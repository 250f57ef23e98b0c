"""No flow matches and no AI is available: escalate without a walk in two keystrokes."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from rflow_tui.services.errors import ServiceError
from rflow_tui.services.tickets import problem_text
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from rflow_tui.tui.safe import plain
from rflow_tui.tui.store_guard import StoreGuard

DEFAULT_REASON = "No flow matches this ticket and no AI generator is available."


class NoKnowledgeScreen(StoreGuard, ModalScreen):
    BINDINGS = [
        Binding("e", "escalate", "Escalate without a walk"),
        Binding("a", "adhoc", "Ad-hoc notes walk"),
        Binding("escape", "dismiss_screen", "Back"),
    ]

    def __init__(self, ctx, ticket, why: str) -> None:
        super().__init__(id="no-knowledge")
        self.ctx, self.ticket, self.why = ctx, ticket, why
        self.escalate_draft: dict = {}  # kept if escalating fails, for the next try

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(
                plain(f"Nothing to walk for {self.ticket.ticket_id}", single_line=True), classes="dialog-title"
            )
            yield Static(plain(f"No flow matches “{self.ticket.subject}”, and the AI is unavailable: {self.why}"))
            yield Static("Press e then Enter to escalate it now, or a for an ad-hoc notes walk.", classes="field-label")
            yield Static("", id="nk-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Escalate (e)", variant="warning", id="escalate", action="screen.escalate")
                yield Button("Ad-hoc (a)", id="adhoc", action="screen.adhoc")
                yield Button("Back (Esc)", id="back", action="screen.dismiss_screen")

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)

    @work(exclusive=True)
    async def action_escalate(self) -> None:
        from rflow_tui.tui.screens.dialogs import EscalateDialog

        reason = await self.app.push_screen_wait(
            EscalateDialog(
                self.escalate_draft,
                title=f"Escalate {self.ticket.ticket_id}",
                category="no_flow",
                reason=DEFAULT_REASON,
            )
        )
        if reason is None:
            return
        try:
            await self.ctx.call(
                walk_endings.escalate_without_walk,
                ticket_id=self.ticket.ticket_id,
                ticket_kind=self.ticket.ticket_kind,
                problem_text=problem_text(self.ticket),
                category=self.ticket.category or None,
                **reason,
            )
        except ServiceError as exc:
            self.query_one("#nk-error", Static).update(plain(str(exc)))
            return
        self.app.notify(f"{self.ticket.ticket_id} escalated", markup=False)
        self.dismiss(None)

    @work(exclusive=True)
    async def action_adhoc(self) -> None:
        try:
            walk = await self.ctx.call(
                walk_start.start_adhoc_session, ticket_id=self.ticket.ticket_id, ticket_kind=self.ticket.ticket_kind
            )
        except ServiceError as exc:
            self.query_one("#nk-error", Static).update(plain(str(exc)))
            return
        self.dismiss(None)
        from rflow_tui.tui.screens.walk import open_walk

        open_walk(self.app, self.ctx, walk)
