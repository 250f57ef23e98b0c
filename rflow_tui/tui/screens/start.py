"""Start dialog: the ways to walk one ticket, best match first."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, LoadingIndicator, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from rflow_tui.services.errors import ServiceError, WalkInProgress
from rflow_tui.services.tickets import problem_text
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import reads as walk_reads
from rflow_tui.services.walks import start as walk_start
from rflow_tui.tui.safe import clean, plain
from rflow_tui.tui.store_guard import StoreGuard


class StartDialog(StoreGuard, ModalScreen):
    """Dismisses with the started walk session, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, ctx, ticket) -> None:
        super().__init__()
        self.ctx = ctx
        self.ticket = ticket
        self.choices: dict[str, tuple[str, Any]] = {}
        self.escalate_draft: dict = {}  # kept if escalating fails, for the next try
        self.existing: WalkInProgress | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(
                plain(f"Start a walk · {self.ticket.ticket_id} · {self.ticket.subject}", single_line=True),
                classes="dialog-title",
            )
            yield LoadingIndicator(id="start-loading")
            yield OptionList(id="start-options")
            yield Static("", id="flow-description")
            yield Static("AI build: category and problem (editable)", classes="field-label ai-field")
            yield Input(
                clean(self.ticket.category, single_line=True), id="category", placeholder="category", classes="ai-field"
            )
            yield TextArea(clean(problem_text(self.ticket)), id="problem", soft_wrap=True, classes="ai-field")
            yield Static("", id="start-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start", variant="primary", id="start")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#start-options").display = False
        self.query_one("#flow-description").display = False
        self.load_options()

    @on(OptionList.OptionHighlighted)
    def _describe(self, event: OptionList.OptionHighlighted) -> None:
        """The highlighted flow's description, from its author: what the flow is for."""
        kind, target = self.choices.get(event.option.id or "", ("", None))
        about = (target.flow_data or {}).get("description") if kind == "flow" else None
        box = self.query_one("#flow-description", Static)
        box.update(plain(about) if isinstance(about, str) else "")
        box.display = bool(isinstance(about, str) and about.strip())

    @work(exclusive=True)
    async def load_options(self) -> None:
        from rflow_tui.services.library import match_flows
        from rflow_tui.services.proposals import match_proposals

        ticket = dict(subject=self.ticket.subject, body=self.ticket.body or "")
        matches = await self.ctx.call(match_flows, **ticket)
        proposals = await self.ctx.call(match_proposals, **ticket)
        busy = await self.ctx.call(
            walk_reads.walk_in_progress, ticket_id=self.ticket.ticket_id, ticket_kind=self.ticket.ticket_kind
        )
        generator_error = self.ctx.ai_error
        if not matches and not proposals and generator_error and busy is None:
            from rflow_tui.tui.screens.no_knowledge import NoKnowledgeScreen

            self.dismiss(None)
            self.app.push_screen(NoKnowledgeScreen(self.ctx, self.ticket, generator_error))
            return
        options: list[Option] = []
        for rank, (flow, _score) in enumerate(matches):
            key = f"flow-{flow.id}"
            self.choices[key] = ("flow", flow)
            best = "  · best match" if rank == 0 else ""
            options.append(Option(plain(f"Flow · {flow.title}{best}", single_line=True), id=key))
        for proposal, _score in proposals:
            key = f"proposal-{proposal.id}"
            self.choices[key] = ("proposal", proposal)
            checked = " · validated" if proposal.validated_by_outcome else ""
            options.append(Option(plain(f"Proposal · {proposal.title}{checked}", single_line=True), id=key))
        ai_label = (
            "AI build · the AI writes each next step"
            if not generator_error
            else f"AI build · unavailable: {generator_error}"
        )
        self.choices["ai"] = ("ai", None)
        options.append(Option(plain(ai_label, single_line=True), id="ai", disabled=bool(generator_error)))
        self.choices["adhoc"] = ("adhoc", None)
        options.append(Option("Ad-hoc · free-form notes only", id="adhoc"))
        self.choices["escalate"] = ("escalate", None)
        options.append(Option("Escalate without a walk", id="escalate"))
        option_list = self.query_one(OptionList)
        if generator_error:
            for widget in self.query(".ai-field"):
                widget.display = False
        option_list.add_options(options)
        option_list.highlighted = 0
        self.query_one("#start-loading").display = False
        option_list.display = True
        option_list.focus()
        if busy is not None:  # already walked: Resume (or take over) is offered at once, first
            await self._offer_existing(busy)

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self.start()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.start()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    def _error(self, message: str) -> None:
        self.query_one("#start-error", Static).update(plain(message))

    def store_failed(self, error) -> None:
        self.query_one("#start-loading").display = False
        self._error(f"{error} · Esc and open the ticket again")

    @work(exclusive=True, group="start")
    async def start(self) -> None:
        option_list = self.query_one(OptionList)
        if option_list.highlighted is None:
            return
        option = option_list.get_option_at_index(option_list.highlighted)
        if option.id is None:
            return
        kind, target = self.choices[option.id]
        ticket = dict(ticket_id=self.ticket.ticket_id, ticket_kind=self.ticket.ticket_kind)
        try:
            if kind == "escalate":
                from rflow_tui.tui.screens.dialogs import EscalateDialog

                reason = await self.app.push_screen_wait(
                    EscalateDialog(self.escalate_draft, title=f"Escalate {self.ticket.ticket_id} without a walk")
                )
                if reason is None:
                    return
                await self.ctx.call(
                    walk_endings.escalate_without_walk,
                    **ticket,
                    **reason,
                    problem_text=problem_text(self.ticket),
                    category=self.ticket.category or None,
                )
                self.app.notify(f"{self.ticket.ticket_id} escalated", markup=False)
                self.dismiss(None)
                return
            if kind == "flow":
                walk = await self.ctx.call(walk_start.start_flow_session, **ticket, flow_id=target.id)
            elif kind == "proposal":
                walk = await self.ctx.call(walk_start.start_proposal_session, **ticket, proposal_id=target.id)
            elif kind == "ai":
                walk = await self.ctx.call(
                    walk_start.start_ai_build_session,
                    **ticket,
                    category=self.query_one("#category", Input).value,
                    problem_text=self.query_one("#problem", TextArea).text,
                )
            else:
                walk = await self.ctx.call(walk_start.start_adhoc_session, **ticket)
        except WalkInProgress as exc:
            await self._offer_existing(exc)
            return
        except ServiceError as exc:
            self._error(str(exc))
            return
        self.dismiss(walk)

    async def _offer_existing(self, busy: WalkInProgress) -> None:
        """The ticket already has an active walk: offer it (resume, or take over), never a second."""
        self.existing = busy
        self._error(str(busy))
        label = "Resume it" if busy.yours else "Take it over"
        for old in self.query("#existing-walk"):
            await old.remove()
        await self.query_one(".dialog-buttons").mount(
            Button(label, variant="warning", id="existing-walk"), before=self.query_one("#cancel")
        )
        self.query_one("#existing-walk").focus()

    @on(Button.Pressed, "#existing-walk")
    def _existing_pressed(self) -> None:
        self.open_existing()

    @work(exclusive=True, group="start")
    async def open_existing(self) -> None:
        busy = self.existing
        if busy is None:
            return
        try:
            if busy.yours:
                walk = await self.ctx.call(walk_core.get_session, session_id=busy.session_id)
            else:
                walk = await self.ctx.call(walk_start.take_over, session_id=busy.session_id)
        except ServiceError as exc:
            self._error(str(exc))
            return
        self.dismiss(walk)
