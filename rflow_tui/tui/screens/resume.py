"""Resume: the tech's unfinished walks, offered first when the app starts."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from rflow_tui.domain.enums import WALK_KIND_NAMES
from rflow_tui.tui.format import plural, since
from rflow_tui.tui.safe import plain
from rflow_tui.tui.store_guard import StoreGuard


class ResumeDialog(StoreGuard, ModalScreen):
    """Dismisses with the walk session to reopen, or None."""

    BINDINGS = [Binding("escape", "cancel", "Not now")]

    def __init__(self, ctx, active=None) -> None:
        super().__init__()
        self.ctx = ctx
        self.given = active
        self.active: list | None = None  # set once the list is on screen, so Enter acts on what is shown

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Pick up where you left off", classes="dialog-title")
            yield OptionList(id="resume-options")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Resume", variant="primary", id="resume")
                yield Button("Not now (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True)
    async def load(self) -> None:
        from rflow_tui.services.walks.reads import active_sessions_for, walk_subjects

        walks = self.given if self.given is not None else await self.ctx.call(active_sessions_for)
        options = self.query_one(OptionList)
        if not walks:
            options.add_option(Option("No unfinished walks", disabled=True))
            return
        for walk in walks:  # shown and actionable at once; the subjects follow
            options.add_option(Option(self._label(walk, ""), id=str(walk.id)))
        options.highlighted = 0
        options.focus()
        self.active = walks
        subjects = await self.ctx.call(walk_subjects, walks=walks)
        if not options.is_attached:  # already resumed or dismissed
            return
        for walk in walks:
            options.replace_option_prompt(str(walk.id), self._label(walk, subjects.get(walk.id, "")))

    @staticmethod
    def _label(walk, subject: str):
        kind = WALK_KIND_NAMES.get(walk.session_kind, walk.session_kind)
        steps = plural(walk.step_count, "step")
        label = f"{walk.ticket_id} · {kind} · {steps} · {since(walk.last_step_at or walk.created_at)}"
        if subject:
            label += f" · {subject[:60]}"
        return plain(label, single_line=True)

    @on(OptionList.OptionSelected)
    @on(Button.Pressed, "#resume")
    def _resume(self) -> None:
        options = self.query_one(OptionList)
        if self.active and options.highlighted is not None:
            self.dismiss(self.active[options.highlighted])

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
